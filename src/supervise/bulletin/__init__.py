"""Bulletins (通报): one model, built from assessment results, rendered as xlsx and html.

    build_bulletin(...)            -> Bulletin        pure (build.py)
    write_workbook(bulletin)       -> bytes           .xlsx (excel.py)
    render_page(bulletin)          -> str             standalone page (html.py)
    render_email(bulletin)         -> str             mail body (html.py)

Pure: plain data in, plain data out. Reading the store and writing reports/<period>/ is
`jobs.render.render_bulletins`.
"""

from __future__ import annotations

from .build import build_bulletin, bulletin_title
from .excel import write_workbook
from .html import render_email, render_page
from .model import Bulletin

__all__ = [
    "Bulletin",
    "build_bulletin",
    "bulletin_title",
    "render_email",
    "render_page",
    "write_workbook",
]
