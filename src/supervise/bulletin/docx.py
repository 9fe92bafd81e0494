"""The 通报 as a Word document laid out per GB/T 9704-2012 (党政机关公文格式), for staff to edit and sign.

python-docx, because the document is built in code from the one bulletin model (no template for
a bureau to keep in step with the model's fields) and it gives a real .docx that Word, WPS and
LibreOffice open as their own. It makes the package, the sections, footers and properties; the
styles, the body and its tables are written as WordprocessingML directly (a 2,844-row table
through python-docx's cell API takes minutes, as XML it takes a fraction of a second).

The layout: A4; margins 37 mm top, 35 mm bottom, 28 mm at the binding side (订口, mirrored on
even pages) and 26 mm at the other, giving the 156 × 225 mm 版心; a line grid of 22 lines (pitch
28.95 pt) and 28 characters a line in 3号 (16 pt, condensed a quarter point to fit); the 发文机关标志 in red above the 文号 and
the red rule; the title in 方正小标宋简体 2号 (22 pt); the body in 仿宋_GB2312 3号; headings in
the standard's order: 一、 黑体, （一） 楷体_GB2312, 1. 仿宋 bold; tables of the 版心's width in
五号 with their header rows repeated on every page; page numbers "— 1 —" in 4号 宋体 on the outer
side (odd pages right, even pages left); the signature (落款) and date; the 版记 with the
印发 date. The fonts are those of a Chinese office; fontTable.xml names each one's alternative
(仿宋, 楷体, the free Noto CJK faces) for a machine without them.

Text from counties is written as text (escaped XML; a line break is a break, a tab a tab,
control characters dropped): never a field, a formula or markup.
Determinism: core properties from the bulletin's date, no revision history, no thumbnail, zip
entries dated from the bulletin's date, so the same bulletin gives the same bytes.
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import UTC, datetime, time
from typing import cast
from xml.sax.saxutils import escape

from docx import Document
from docx.document import Document as DocxDocument
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.opc.phys_pkg import PhysPkgWriter
from docx.opc.pkgwriter import PackageWriter
from docx.oxml import parse_xml
from docx.oxml.ns import qn
from docx.shared import Mm

from ..periods import TZ
from .model import Bulletin
from .official import (
    CHARS,
    WIDTH_MM,
    Chart,
    DocumentHead,
    Heading,
    Outline,
    Para,
    Table,
    date_shift,
    head_of,
    mark_size,
    outline,
)

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
NS = f'xmlns:w="{W_NS}"'

# Fonts (w:rFonts eastAsia) and, in fontTable.xml, the alternative each falls back to.
TITLE_FONT = "方正小标宋简体"
BODY_FONT = "仿宋_GB2312"
HEI_FONT = "黑体"
KAI_FONT = "楷体_GB2312"
SONG_FONT = "宋体"
LATIN_FONT = "Times New Roman"
FONTS = {
    TITLE_FONT: ("Noto Serif CJK SC", "02010600030101010101", "script"),
    BODY_FONT: ("仿宋", "02010609030101010101", "modern"),
    HEI_FONT: ("Noto Sans CJK SC", "02010609060101010101", "modern"),
    KAI_FONT: ("楷体", "02010609030101010101", "modern"),
    SONG_FONT: ("Noto Serif CJK SC", "02010600030101010101", "auto"),
}

RED = "FF0000"
LINE_PITCH = 579                     # twips: 28.95 pt, 22 lines in the 225 mm 版心
BODY_HALF_POINTS = 32                # 3号, 16 pt
# 28 characters of 16 pt need 448 pt; the 版心 is 442.2 pt wide. The body's characters are
# condensed by a quarter point (in twentieths of a point) so that 28 fit, in Word as in
# LibreOffice and WPS: a character grid (docGrid linesAndChars with a negative charSpace) does
# it in Word, but LibreOffice then gives each character two cells of the grid.
CONDENSE = -5
assert CHARS * (16 + CONDENSE / 20) <= WIDTH_MM / 25.4 * 72
ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def twips(mm: float) -> int:
    return round(mm * 1440 / 25.4)


# --------------------------------------------------------------------------- runs and paragraphs


def _runs(text: str, rpr: str = "") -> str:
    """Literal text as runs: line breaks and tabs as Word's own, everything else escaped."""
    out = []
    for i, line in enumerate(ILLEGAL_XML.sub("", text).replace("\r\n", "\n").replace("\r", "\n").split("\n")):
        if i:
            out.append(f"<w:r>{rpr}<w:br/></w:r>")
        for j, part in enumerate(line.split("\t")):
            if j:
                out.append(f"<w:r>{rpr}<w:tab/></w:r>")
            if part:
                out.append(f'<w:r>{rpr}<w:t xml:space="preserve">{escape(part)}</w:t></w:r>')
    return "".join(out)


def _p(text: str, style: str, ppr: str = "", rpr: str = "") -> str:
    return f'<w:p><w:pPr><w:pStyle w:val="{style}"/>{ppr}</w:pPr>{_runs(text, rpr)}</w:p>'


def _fonts(east_asia: str, latin: str = LATIN_FONT) -> str:
    return (f'<w:rFonts w:ascii="{latin}" w:hAnsi="{latin}" w:eastAsia="{east_asia}" w:cs="{latin}"/>')


# --------------------------------------------------------------------------- styles


def _style(sid: str, name: str, *, ppr: str = "", rpr: str = "", based: str = "Normal", next_: str = "",
           extra: str = "") -> str:
    base = f'<w:basedOn w:val="{based}"/>' if based else ""
    nxt = f'<w:next w:val="{next_}"/>' if next_ else ""
    # Title and the headings are Word's own (its navigation pane lists them); the rest are ours.
    custom = "" if sid in ("Title", "Heading1", "Heading2", "Heading3") else ' w:customStyle="1"'
    return (f'<w:style w:type="paragraph"{custom} w:styleId="{sid}"><w:name w:val="{name}"/>{base}{nxt}'
            f'{extra}<w:qFormat/><w:pPr>{ppr}</w:pPr><w:rPr>{rpr}</w:rPr></w:style>')


def _size(half_points: int) -> str:
    return f'<w:sz w:val="{half_points}"/><w:szCs w:val="{half_points}"/>'


GRID_LINE = f'<w:spacing w:before="0" w:after="0" w:line="{LINE_PITCH}" w:lineRule="exact"/>'
SINGLE = '<w:snapToGrid w:val="0"/><w:spacing w:before="0" w:after="0" w:line="240" w:lineRule="auto"/>'


def _styles_xml() -> str:
    body_rpr = _fonts(BODY_FONT) + f'<w:spacing w:val="{CONDENSE}"/>' + _size(BODY_HALF_POINTS)
    plain = '<w:spacing w:val="0"/>'
    styles = [
        f'<w:docDefaults><w:rPrDefault><w:rPr>{_fonts(BODY_FONT)}<w:kern w:val="2"/>{_size(BODY_HALF_POINTS)}'
        '<w:lang w:val="en-US" w:eastAsia="zh-CN" w:bidi="ar-SA"/></w:rPr></w:rPrDefault>'
        f'<w:pPrDefault><w:pPr><w:widowControl w:val="0"/>{GRID_LINE}<w:jc w:val="both"/></w:pPr></w:pPrDefault>'
        '</w:docDefaults>',
        '<w:style w:type="paragraph" w:default="1" w:styleId="Normal"><w:name w:val="Normal"/><w:qFormat/>'
        f'<w:pPr>{GRID_LINE}<w:jc w:val="both"/></w:pPr><w:rPr>{body_rpr}</w:rPr></w:style>',
        '<w:style w:type="character" w:default="1" w:styleId="DefaultParagraphFont">'
        '<w:name w:val="Default Paragraph Font"/><w:uiPriority w:val="1"/><w:semiHidden/></w:style>',
        '<w:style w:type="table" w:default="1" w:styleId="TableNormal"><w:name w:val="Normal Table"/>'
        '<w:semiHidden/><w:tblPr><w:tblInd w:w="0" w:type="dxa"/><w:tblCellMar><w:top w:w="0" w:type="dxa"/>'
        '<w:left w:w="108" w:type="dxa"/><w:bottom w:w="0" w:type="dxa"/><w:right w:w="108" w:type="dxa"/>'
        '</w:tblCellMar></w:tblPr></w:style>',
        # The body: first line indented two characters.
        _style("GWBody", "公文正文", ppr='<w:ind w:firstLineChars="200" w:firstLine="640"/>'),
        _style("Title", "Title", based="Normal", next_="GWBody",
               ppr=f'<w:keepNext/><w:spacing w:before="0" w:after="0" w:line="{LINE_PITCH * 3 // 2}" '
                   'w:lineRule="exact"/><w:jc w:val="center"/>',
               rpr=_fonts(TITLE_FONT) + plain + _size(44)),
        _style("Heading1", "heading 1", next_="GWBody",
               ppr='<w:keepNext/><w:ind w:firstLineChars="200" w:firstLine="640"/><w:outlineLvl w:val="0"/>',
               rpr=_fonts(HEI_FONT) + _size(BODY_HALF_POINTS)),
        _style("Heading2", "heading 2", next_="GWBody",
               ppr='<w:keepNext/><w:ind w:firstLineChars="200" w:firstLine="640"/><w:outlineLvl w:val="1"/>',
               rpr=_fonts(KAI_FONT) + _size(BODY_HALF_POINTS)),
        _style("Heading3", "heading 3", next_="GWBody",
               ppr='<w:keepNext/><w:ind w:firstLineChars="200" w:firstLine="640"/><w:outlineLvl w:val="2"/>',
               rpr=_fonts(BODY_FONT) + "<w:b/><w:bCs/>" + _size(BODY_HALF_POINTS)),
        _style("GWMark", "发文机关标志", ppr=SINGLE + '<w:jc w:val="center"/>',
               rpr=_fonts(TITLE_FONT) + f'<w:color w:val="{RED}"/>' + plain + _size(72)),
        _style("GWNumber", "发文字号", ppr='<w:jc w:val="center"/>'),
        _style("GWRule", "版头分隔线",
               ppr=f'<w:pBdr><w:bottom w:val="single" w:sz="18" w:space="1" w:color="{RED}"/></w:pBdr>'
                   '<w:snapToGrid w:val="0"/><w:spacing w:before="0" w:after="0" w:line="120" w:lineRule="exact"/>',
               rpr=_size(8)),
        _style("GWAddressee", "主送机关"),
        _style("GWBanner", "提示", ppr='<w:jc w:val="center"/>', rpr=f'<w:b/><w:bCs/><w:color w:val="{RED}"/>'),
        _style("GWAlert", "提示正文", ppr='<w:ind w:firstLineChars="200" w:firstLine="640"/>',
               rpr=f'<w:color w:val="{RED}"/>'),
        _style("GWNote", "注释", ppr='<w:snapToGrid w:val="0"/><w:spacing w:before="60" w:after="60" w:line="300" '
               'w:lineRule="auto"/><w:ind w:firstLineChars="200" w:firstLine="560"/>', rpr=plain + _size(28)),
        _style("GWTableTitle", "表题", ppr='<w:keepNext/><w:jc w:val="center"/>',
               rpr=_fonts(HEI_FONT) + plain + _size(28)),
        _style("GWCell", "表格文字", ppr=SINGLE + '<w:jc w:val="center"/>', rpr=_fonts(BODY_FONT) + plain + _size(21)),
        _style("GWCellSmall", "表格文字（小）", based="GWCell", rpr=_size(18)),
        _style("GWHead", "表头", based="GWCell", rpr=_fonts(HEI_FONT) + _size(21)),
        _style("GWHeadSmall", "表头（小）", based="GWHead", rpr=_size(18)),
        _style("GWSignature", "发文机关署名", ppr='<w:jc w:val="right"/>'),
        _style("GWRecord", "版记", ppr='<w:snapToGrid w:val="0"/><w:spacing w:before="40" w:after="40" w:line="240" '
               'w:lineRule="auto"/><w:ind w:left="280" w:right="280"/>', rpr=plain + _size(28)),
        _style("GWFooter", "页码", ppr=SINGLE, rpr=_fonts(SONG_FONT, SONG_FONT) + plain + _size(28)),
    ]
    return f"<w:styles {NS}>{''.join(styles)}</w:styles>"


def _font_table() -> bytes:
    fonts = [f'<w:font w:name="{LATIN_FONT}"><w:panose1 w:val="02020603050405020304"/><w:charset w:val="00"/>'
             '<w:family w:val="roman"/><w:pitch w:val="variable"/></w:font>']
    for name, (alt, panose, family) in FONTS.items():
        fonts.append(f'<w:font w:name="{name}"><w:altName w:val="{alt}"/><w:panose1 w:val="{panose}"/>'
                     f'<w:charset w:val="86"/><w:family w:val="{family}"/><w:pitch w:val="variable"/></w:font>')
    xml = f"<?xml version='1.0' encoding='UTF-8' standalone='yes'?>\n<w:fonts {NS}>{''.join(fonts)}</w:fonts>"
    return xml.encode("utf-8")


# --------------------------------------------------------------------------- tables


BORDER = '<w:{0} w:val="single" w:sz="4" w:space="0" w:color="000000"/>'
TABLE_BORDERS = "<w:tblBorders>" + "".join(
    BORDER.format(s) for s in ("top", "left", "bottom", "right", "insideH", "insideV")) + "</w:tblBorders>"
ALIGN = {"left": "left", "center": "center", "right": "right"}
CENTER = '<w:jc w:val="center"/>'


def _table(t: Table) -> str:
    widths = [twips(c.width) for c in t.columns]
    widths[-1] += twips(WIDTH_MM) - sum(widths)
    small = t.size < 10
    cell_style, head_style = ("GWCellSmall", "GWHeadSmall") if small else ("GWCell", "GWHead")
    out = [_p(t.title, "GWTableTitle"),
           f'<w:tbl><w:tblPr><w:tblW w:w="{sum(widths)}" w:type="dxa"/><w:jc w:val="center"/>{TABLE_BORDERS}'
           '<w:tblLayout w:type="fixed"/><w:tblCellMar><w:left w:w="57" w:type="dxa"/><w:right w:w="57" w:type="dxa"/>'
           '</w:tblCellMar><w:tblLook w:val="04A0" w:firstRow="1" w:lastRow="0" w:firstColumn="0" w:lastColumn="0" '
           'w:noHBand="0" w:noVBand="1"/></w:tblPr><w:tblGrid>'
           + "".join(f'<w:gridCol w:w="{w}"/>' for w in widths) + "</w:tblGrid>"]
    # The header row, repeated at the top of every page the table runs onto.
    out.append("<w:tr><w:trPr><w:cantSplit/><w:tblHeader/></w:trPr>")
    for c, w in zip(t.columns, widths):
        out.append(f'<w:tc><w:tcPr><w:tcW w:w="{w}" w:type="dxa"/><w:vAlign w:val="center"/></w:tcPr>'
                   f"{_p(c.label, head_style, CENTER)}</w:tc>")
    out.append("</w:tr>")
    # Each column's cell up to its text, computed once (2,844 rows × 9 columns).
    opens = [f'<w:tc><w:tcPr><w:tcW w:w="{w}" w:type="dxa"/><w:vAlign w:val="center"/></w:tcPr>'
             f'<w:p><w:pPr><w:pStyle w:val="{cell_style}"/><w:jc w:val="{ALIGN[c.align]}"/></w:pPr>'
             for c, w in zip(t.columns, widths)]
    bold = "<w:rPr><w:b/><w:bCs/></w:rPr>"
    row_open = "<w:tr><w:trPr><w:cantSplit/></w:trPr>"
    for row in t.rows:
        if row.kind == "gap":
            out.append(f'{row_open}<w:tc><w:tcPr><w:tcW w:w="{sum(widths)}" w:type="dxa"/>'
                       f'<w:gridSpan w:val="{len(widths)}"/></w:tcPr>'
                       f"{_p(row.cells[0], cell_style, CENTER)}</w:tc></w:tr>")
            continue
        rpr = bold if row.kind == "total" else ""
        out.append(row_open)
        for opening, text in zip(opens, row.cells):
            out.append(f"{opening}{_runs(text, rpr) if text else ''}</w:p></w:tc>")
        out.append("</w:tr>")
    out.append("</w:tbl>")
    return "".join(out)


# --------------------------------------------------------------------------- the document


def _head(h: DocumentHead) -> list[str]:
    """版头: the 发文机关标志 35 mm below the top of the 版心, two lines, the 文号, the red rule."""
    out = [_p(h.mark, "GWMark", f'<w:spacing w:before="{twips(35) - LINE_PITCH}" w:after="0" w:line="240" '
                                  'w:lineRule="auto"/>', f'<w:rPr>{_size(2 * mark_size(h.mark))}</w:rPr>')]
    out += [_p("", "GWNumber")] * 2
    if h.number:
        out.append(_p(h.number, "GWNumber"))
    out.append(_p("", "GWRule"))
    out += [_p("", "GWBody", '<w:ind w:firstLine="0"/>')] * 2
    return out


def _body(o: Outline) -> str:
    h = o.head
    out = _head(h)
    for line in o.banner:
        out.append(_p(line, "GWBanner"))
    out.append(_p(o.title, "Title"))
    out.append(_p("", "GWBody"))
    if h.addressee:
        out.append(_p(h.addressee, "GWAddressee"))
    style = {1: "Heading1", 2: "Heading2", 3: "Heading3"}
    kinds = {"body": "GWBody", "note": "GWNote", "alert": "GWAlert"}
    for blk in o.blocks:
        if isinstance(blk, Heading):
            out.append(_p(blk.text, style[min(blk.level, 3)]))
        elif isinstance(blk, Para):
            out.append(_p(blk.text, kinds.get(blk.kind, "GWBody")))
        elif isinstance(blk, Table):
            out.append(_table(blk))
        elif isinstance(blk, Chart):
            continue              # the Word document has the table; the PDF draws the chart
    # 落款: the issuer two characters from the right, the date below it, its first character
    # two characters to the right of the issuer's first.
    out.append(_p("", "GWBody"))
    out.append(_p(o.signature, "GWSignature", '<w:ind w:rightChars="200" w:right="640"/>'))
    shift = date_shift(o.signature, o.date_line)
    out.append(_p(o.date_line, "GWSignature", f'<w:ind w:rightChars="{round(shift * 100)}" w:right="{round(shift * 320)}"/>'))
    out.append(_record(h, o.printed))
    return "".join(out)


def _record(h: DocumentHead, printed: str) -> str:
    """版记: 抄送 and 印发, between a heavy rule above and below (a light one between them)."""
    heavy = '<w:{0} w:val="single" w:sz="8" w:space="0" w:color="000000"/>'
    light = '<w:{0} w:val="single" w:sz="6" w:space="0" w:color="000000"/>'
    none = '<w:{0} w:val="nil"/>'
    borders = ("<w:tblBorders>" + heavy.format("top") + none.format("left") + heavy.format("bottom")
               + none.format("right") + light.format("insideH") + none.format("insideV") + "</w:tblBorders>")
    width = twips(WIDTH_MM)
    tab = f'<w:tabs><w:tab w:val="right" w:pos="{width - 2 * 280 - 2 * 57}"/></w:tabs>'
    rows = []
    if h.cc:
        rows.append(_p(f"抄送：{h.cc}。", "GWRecord"))
    rows.append(f'<w:p><w:pPr><w:pStyle w:val="GWRecord"/>{tab}</w:pPr>{_runs(h.printer)}'
                f'<w:r><w:tab/></w:r>{_runs(printed)}</w:p>')
    cells = "".join(f'<w:tr><w:trPr><w:cantSplit/></w:trPr><w:tc><w:tcPr><w:tcW w:w="{width}" w:type="dxa"/>'
                    f"</w:tcPr>{p}</w:tc></w:tr>" for p in rows)
    return (_p("", "GWBody") + f'<w:tbl><w:tblPr><w:tblW w:w="{width}" w:type="dxa"/><w:jc w:val="center"/>'
            f'{borders}<w:tblLayout w:type="fixed"/><w:tblCellMar><w:left w:w="57" w:type="dxa"/>'
            f'<w:right w:w="57" w:type="dxa"/></w:tblCellMar></w:tblPr><w:tblGrid><w:gridCol w:w="{width}"/></w:tblGrid>'
            f"{cells}</w:tbl>" + _p("", "GWRecord"))


def _page_number(align: str, indent: str) -> str:
    """— 1 — : the page number between two 一字线, one character in from the outer edge."""
    field = ('<w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText xml:space="preserve"> PAGE </w:instrText>'
             '</w:r><w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>1</w:t></w:r>'
             '<w:r><w:fldChar w:fldCharType="end"/></w:r>')
    return (f'<w:p {NS}><w:pPr><w:pStyle w:val="GWFooter"/>{indent}<w:jc w:val="{align}"/></w:pPr>'
            f'<w:r><w:t xml:space="preserve">— </w:t></w:r>{field}<w:r><w:t xml:space="preserve"> —</w:t></w:r></w:p>')


def _layout(doc: DocxDocument) -> None:
    """A4, the 版心's margins (mirrored: the 28 mm 订口 is always at the binding), the 22 × 28
    grid, page numbers in different odd and even footers."""
    s = doc.sections[0]
    s.page_width, s.page_height = Mm(210), Mm(297)
    s.top_margin, s.bottom_margin = Mm(37), Mm(35)
    s.left_margin, s.right_margin = Mm(28), Mm(26)
    s.header_distance, s.footer_distance = Mm(15), Mm(23)
    s.gutter = Mm(0)
    sect = s._sectPr
    for old in sect.findall(qn("w:docGrid")) + sect.findall(qn("w:cols")):
        sect.remove(old)
    sect.append(parse_xml(f'<w:cols {NS} w:space="425"/>'))
    sect.append(parse_xml(f'<w:docGrid {NS} w:type="lines" w:linePitch="{LINE_PITCH}"/>'))
    doc.settings.odd_and_even_pages_header_footer = True
    for footer, xml in ((s.footer, _page_number("right", '<w:ind w:right="280"/>')),
                        (s.even_page_footer, _page_number("left", '<w:ind w:left="280"/>'))):
        footer.is_linked_to_previous = False
        p = footer._element
        for child in list(p):
            p.remove(child)
        p.append(parse_xml(xml))
    settings = doc.settings.element
    for tag in ("w:savePreviewPicture", "w:rsids", "w:proofState", "w:attachedTemplate"):
        for el in settings.findall(qn(tag)):
            settings.remove(el)
    for el in settings.findall(qn("w:themeFontLang")):
        el.set(qn("w:eastAsia"), "zh-CN")
    zoom = settings.find(qn("w:zoom"))
    (zoom if zoom is not None else settings[0]).addnext(parse_xml(f"<w:mirrorMargins {NS}/>"))


def _strip_template(doc: DocxDocument) -> None:
    """Only what the document needs from python-docx's template: no thumbnail, no second styles part."""
    pkg = doc.part.package
    for rid, rel in list(pkg.rels.items()):
        if rel.reltype == RT.THUMBNAIL:
            pkg.rels.pop(rid)
    for rid, rel in list(doc.part.rels.items()):
        if rel.reltype.endswith("/stylesWithEffects"):
            doc.part.rels.pop(rid)
        elif rel.reltype == RT.FONT_TABLE:
            rel.target_part._blob = _font_table()
    for part in pkg.iter_parts():
        if part.partname == "/docProps/app.xml":
            part._blob = (
                b"<?xml version='1.0' encoding='UTF-8' standalone='yes'?>\n"
                b'<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
                b"<Application>supervise</Application><DocSecurity>0</DocSecurity></Properties>"
            )


def _properties(doc: DocxDocument, b: Bulletin, h: DocumentHead) -> None:
    # Midnight of the date of issue in Beijing time, stored as UTC (as Word does).
    stamp = datetime.combine(b.issued, time(0), TZ).astimezone(UTC).replace(tzinfo=None)
    p = doc.core_properties
    p.title = b.title
    p.subject = b.period_label
    p.author = h.signature
    p.last_modified_by = h.signature
    p.comments = ""
    p.keywords = "通报"
    p.category = "通报"
    p.language = "zh-CN"
    p.revision = 1
    p.created = stamp
    p.modified = stamp


def build_document(b: Bulletin, *, issuer_number: str | None = None, head: DocumentHead | None = None) -> DocxDocument:
    h = head_of(b, issuer_number=issuer_number, head=head)
    doc = Document()
    _strip_template(doc)
    styles = doc.styles.element
    for child in list(styles):
        styles.remove(child)
    for child in parse_xml(_styles_xml()):
        styles.append(child)
    # The body is parsed once, as one fragment, and put in place in one move (moving its
    # children one by one re-walks the fragment each time: 45 s for a 2,844-row table).
    body = doc.element.body
    sect = body.find(qn("w:sectPr"))
    assert sect is not None
    fragment = parse_xml(f"<w:body {NS}>{_body(outline(b, h))}</w:body>")
    fragment.append(sect)
    doc.element.replace(body, fragment)
    _layout(doc)
    _properties(doc, b, h)
    return doc


class _FixedZip:
    """python-docx's physical writer, with every entry dated `stamp` (zipfile dates them now)."""

    def __init__(self, stamp: tuple[int, int, int, int, int, int]) -> None:
        self.buffer = io.BytesIO()
        self.zip = zipfile.ZipFile(self.buffer, "w", zipfile.ZIP_DEFLATED)
        self.stamp = stamp

    def write(self, pack_uri: object, blob: bytes) -> None:
        entry = zipfile.ZipInfo(pack_uri.membername, date_time=self.stamp)  # type: ignore[attr-defined]
        entry.compress_type = zipfile.ZIP_DEFLATED
        entry.external_attr = 0o600 << 16
        self.zip.writestr(entry, blob)

    def close(self) -> None:
        self.zip.close()


def document_bytes(doc: DocxDocument, b: Bulletin) -> bytes:
    """Save with fixed zip dates (the bulletin's date), in python-docx's part order."""
    pkg = doc.part.package
    for part in pkg.parts:
        part.before_marshal()
    d = b.issued
    out = _FixedZip((max(d.year, 1980), d.month, d.day, 0, 0, 0))
    writer = cast(PhysPkgWriter, out)         # the same two methods, write and close
    parts = list(pkg.parts)
    PackageWriter._write_content_types_stream(writer, parts)
    PackageWriter._write_pkg_rels(writer, pkg.rels)
    PackageWriter._write_parts(writer, parts)
    out.close()
    return out.buffer.getvalue()


def write_docx(b: Bulletin, *, issuer_number: str | None = None, head: DocumentHead | None = None) -> bytes:
    """The 通报 as .docx bytes (the same bulletin and head give the same bytes).

    `head` is what the settings add (`DocumentHead.of`); `issuer_number` the 文号,
    over the head's."""
    return document_bytes(build_document(b, issuer_number=issuer_number, head=head), b)
