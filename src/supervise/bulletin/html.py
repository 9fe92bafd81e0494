"""The bulletin as a standalone HTML page and as an e-mail body (Jinja2 templates).

The page (`bulletin.html`) needs nothing else: CSS inline, charts as inline SVG drawn from the
model, no script, no fonts or images from the network; it prints on A4 with a page break before
each part and table headers repeated on every page.

The e-mail (`email.html`) is a table layout with inline styles only (mail clients drop <style>
and SVG): the overall situation, top and bottom three, the ranking and the reporting status;
the full bulletin travels as attachments.

Large registries: up to `build.FULL_TABLE_MAX` (60) counties every table lists every county.
Above that the page shows the first and last 20 of the ranking and of the points table, the 20
clusters with the highest revenue and the counties that did not report on time, and says where
the full tables are (the workbook, which always has every row). Charts follow the same excerpt.

Text from submissions reaches the page only through autoescaping: it is shown, never run.
"""

from __future__ import annotations

from pathlib import Path

from ..templating import environment
from .model import Bulletin


def render_page(b: Bulletin, templates: Path | None = None) -> str:
    return environment(templates).get_template("bulletin.html").render(b=b)


def render_email(b: Bulletin, templates: Path | None = None) -> str:
    return environment(templates).get_template("email.html").render(b=b)


def render_email_text(b: Bulletin, templates: Path | None = None) -> str:
    """The plain-text part of the bulletin mail, from the same model as its HTML."""
    return environment(templates).get_template("email.txt").render(b=b)
