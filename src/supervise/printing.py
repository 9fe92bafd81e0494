"""How a worksheet prints (openpyxl): A4, one page wide, header rows on every page.

Shared by the county templates (intake) and the bulletin workbook, which both must print the
way a bureau files paper: every column on one page width, however many rows.
"""

from __future__ import annotations

from typing import Any


def print_setup(ws: Any, title_rows: str, *, landscape: bool = False, margins: tuple[float, float, float] = (0.5, 0.7, 0.8),
                page_numbers: bool = False) -> None:
    """A4, fit all columns to one page wide, repeat `title_rows` on every page; `margins` are
    (left and right, top, bottom) in inches; `page_numbers` puts 第 N 页，共 M 页 in the footer."""
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = "landscape" if landscape else "portrait"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    side, top, bottom = margins
    ws.page_margins.left = ws.page_margins.right = side
    ws.page_margins.top = top
    ws.page_margins.bottom = bottom
    if title_rows:
        ws.print_title_rows = title_rows
    if page_numbers:
        ws.oddFooter.center.text = "第 &P 页，共 &N 页"
        ws.evenFooter.center.text = "第 &P 页，共 &N 页"
