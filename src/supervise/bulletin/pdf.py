"""The 通报 as a PDF for everyone: A4 in the GB/T 9704-2012 layout, CJK fonts embedded, charts as
vector graphics, page numbers "— 1 —" on the outer side.

WeasyPrint, from `bulletin_print.html` (the blocks of `official.outline`, the same the Word
document draws) and its print CSS (`@page` margin boxes for the page numbers, `:left`/`:right`
pages for the mirrored margins). Chosen over headless Chromium's print-to-PDF because:

- it embeds the Noto CJK fonts (OpenType/CFF, what Debian's fonts-noto-cjk ships) as CID fonts,
  subset, with their Unicode maps; Chromium's PDF backend (Skia) writes CFF fonts as Type 3
  glyph procedures, dozens of them, which print and copy less well and weigh 10× more;
- it takes the document's dates from the page's metadata and derives its file identifier from
  the content, so the same bulletin gives the same bytes; Chromium stamps the clock;
- it is a Python library (pip, plus Pango from the distribution), not a browser process to
  start, watch and kill on the bureau's server.

Its cost is speed: WeasyPrint lays out a table cell in ~0.5 ms, and a 2,844-county ranking of
nine columns took 20–40 s. So above `FULL_TABLE_MAX` (60) counties the PDF's ranking table shows
the first and last 20 in full, like the web page, followed by every county in a 名次一览 (rank,
county, score; one line each, in columns): every county is still there, in a tenth of the time.
The Word document and the workbook keep the full table. docs/performance.md has the figures.

The text of counties reaches the page only through the autoescaping template: shown, never run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

from ..templating import environment
from .build import EXCERPT_HEAD, EXCERPT_TAIL, FULL_TABLE_MAX
from .model import Bulletin
from .official import Block, DocumentHead, Outline, Row, Table, date_shift, head_of, mark_size, outline

TEMPLATE = "bulletin_print.html"


@dataclass
class Roll:
    """Every county of a long ranking, one line each: 名次, 县（市）, 综合得分."""

    title: str
    entries: list[tuple[str, str, str]]


def _fit(o: Outline) -> Outline:
    """The outline as the PDF prints it: a ranking above FULL_TABLE_MAX rows as its head and
    tail in full, then the 名次一览 of all."""
    blocks: list[Block | Roll] = []
    for blk in o.blocks:
        if isinstance(blk, Table) and blk.key == "ranking" and len(blk.rows) > FULL_TABLE_MAX:
            rows = blk.rows
            omitted = len(rows) - EXCERPT_HEAD - EXCERPT_TAIL
            gap = Row([f"……中间{omitted}个县（市）见下方名次一览……"] + [""] * (len(blk.columns) - 1), "gap")
            blocks.append(replace(blk, rows=rows[:EXCERPT_HEAD] + [gap] + rows[-EXCERPT_TAIL:]))
            blocks.append(Roll(f"全部{len(rows)}个县（市）名次一览（名次　县（市）　综合得分）",
                               [(r.cells[0], r.cells[1], r.cells[2]) for r in rows]))
        else:
            blocks.append(blk)
    return replace(o, blocks=blocks)  # type: ignore[arg-type]


def render_print(b: Bulletin, *, issuer_number: str | None = None, head: DocumentHead | None = None,
                 templates: Path | None = None) -> str:
    """The print page (HTML) the PDF is made from."""
    o = _fit(outline(b, head_of(b, issuer_number=issuer_number, head=head)))
    return environment(templates).get_template(TEMPLATE).render(
        b=b, o=o, stamp=f"{b.issued.isoformat()}T00:00:00+08:00", mark_pt=mark_size(o.head.mark),
        date_shift=date_shift(o.signature, o.date_line))


def write_pdf(b: Bulletin, *, issuer_number: str | None = None, head: DocumentHead | None = None,
              templates: Path | None = None) -> bytes:
    """The 通报 as PDF bytes (the same bulletin and head give the same bytes).

    `templates` is a workspace's reports/templates/ (a bureau's own print template wins)."""
    import weasyprint  # a second or so to import: only when a PDF is made

    page = render_print(b, issuer_number=issuer_number, head=head, templates=templates)
    # Nothing is fetched: the page has no links to follow, and a county's text cannot add one.
    document = weasyprint.HTML(string=page, base_url=None, url_fetcher=_no_fetch).render()
    return document.write_pdf(pdf_identifier=hashlib.md5(page.encode("utf-8"), usedforsecurity=False).digest())


def _no_fetch(url: str, *args: object, **kwargs: object) -> dict[str, object]:
    raise ValueError(f"the print page fetches nothing ({url[:80]})")
