"""The 通报 as a Word document (GB/T 9704-2012), read back with python-docx and opened by LibreOffice.

The bulletin is the hand-made one of tests/bulletin_support.py: 14 counties in registry order,
the i-th (from 0) scoring 100 − 5i; 肃宁县 (5th) has 2 points deducted for reporting late, so its
indicator points are 82.00 for a score of 80.00; no previous period (上期名次 and 名次变化 “—”).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile
from datetime import datetime
from pathlib import Path

import docx
import pytest
from docx.oxml.ns import qn
from docx.shared import Mm, Pt

from supervise.bulletin.docx import write_docx
from supervise.bulletin.official import DocumentHead, document_number
from supervise.periods import TZ
from supervise.workspace import WorkspaceError, load_settings

from .bulletin_support import ATTACK, make_bulletin, make_values
from .conftest import require_peer
from .intake_corpus import convert, soffice

COUNTIES = ["黄骅市", "任丘市", "河间市", "泊头市", "肃宁县", "献县", "吴桥县", "东光县", "南皮县", "青县", "沧县",
            "孟村回族自治县", "盐山县", "海兴县"]
SCRIPT = "<script>alert(1)</script>"


def hand_ranking() -> list[list[str]]:
    """名次, 县（市）, 综合得分, 指标得分, 扣分, 上期名次, 名次变化, 报送情况, 备注 — worked out by hand."""
    rows = []
    for i, name in enumerate(COUNTIES):
        score = 100 - 5 * i
        deduction = 2 if i == 4 else 0
        remark = "前三" if i < 3 else "后三" if i >= 11 else ""
        rows.append([str(i + 1), name, f"{score:.2f}", f"{score + deduction:.2f}", f"{deduction:.2f}", "—", "—",
                     "迟报" if i == 4 else "按时报送", remark])
    return rows


def head() -> DocumentHead:
    return DocumentHead("沧州市民营经济领导小组办公室", "沧工信字〔2025〕12号", "各县（市）：")


@pytest.fixture(scope="module")
def document() -> docx.document.Document:
    return docx.Document(io.BytesIO(write_docx(make_bulletin(), head=head())))


def table_rows(table: docx.table.Table) -> list[list[str]]:
    return [[c.text for c in row.cells] for row in table.rows]


def test_a4_with_the_standard_margins_and_grid(document) -> None:  # type: ignore[no-untyped-def]
    s = document.sections[0]
    assert (round(s.page_width.mm), round(s.page_height.mm)) == (210, 297)
    # 版心 156 × 225 mm: 210 − 28 − 26 and 297 − 37 − 35.
    assert [round(x.mm) for x in (s.top_margin, s.bottom_margin, s.left_margin, s.right_margin)] == [37, 35, 28, 26]
    assert document.settings.element.find(qn("w:mirrorMargins")) is not None   # 订口 at the binding
    grid = s._sectPr.find(qn("w:docGrid"))
    pitch = int(grid.get(qn("w:linePitch"))) / 20                              # pt
    assert int(Mm(225).pt // pitch) == 22
    # 28 characters of 3号 in the 156 mm line: the body is condensed so that 28 fit and 29 do not.
    normal = document.styles["Normal"].font
    condensed = int(document.styles["Normal"].element.rPr.find(qn("w:spacing")).get(qn("w:val"))) / 20
    per_char = normal.size.pt + condensed
    assert int(Mm(156).pt // per_char) == 28


def _east_asia(style) -> str:  # type: ignore[no-untyped-def]
    return style.element.rPr.rFonts.get(qn("w:eastAsia"))


def test_title_and_body_fonts(document) -> None:  # type: ignore[no-untyped-def]
    b = make_bulletin()
    title = next(p for p in document.paragraphs if p.style.name == "Title")
    assert title.text == b.title
    assert (_east_asia(title.style), title.style.font.size) == ("方正小标宋简体", Pt(22))       # 2号
    body = document.styles["公文正文"]
    assert (_east_asia(document.styles["Normal"]), document.styles["Normal"].font.size) == ("仿宋_GB2312", Pt(16))
    assert body.base_style.name == "Normal" and body.paragraph_format.first_line_indent is not None
    assert _east_asia(document.styles["Heading 1"]) == "黑体"
    assert _east_asia(document.styles["Heading 2"]) == "楷体_GB2312"
    headings = [(p.style.name, p.text) for p in document.paragraphs if p.style.name.startswith("Heading")]
    assert headings[:4] == [("Heading 1", "一、总体情况"), ("Heading 1", "二、考核排名"),
                            ("Heading 2", "（一）县域特色产业集群发展月度督导考核"), ("Heading 3", "1.综合排名")]
    # Free fallbacks for a machine without the office fonts, in the font table.
    fonts = document.part.part_related_by(docx.opc.constants.RELATIONSHIP_TYPE.FONT_TABLE).blob.decode()
    assert '<w:font w:name="方正小标宋简体"><w:altName w:val="Noto Serif CJK SC"/>' in fonts


def test_head_number_and_signature(document) -> None:  # type: ignore[no-untyped-def]
    texts = [p.text for p in document.paragraphs]
    mark = document.paragraphs[0]
    assert mark.text == "沧州市民营经济领导小组办公室" and mark.style.font.color.rgb == docx.shared.RGBColor(0xFF, 0, 0)
    assert "沧工信字〔2025〕12号" in texts and "各县（市）：" in texts
    assert texts.index("沧工信字〔2025〕12号") < texts.index(make_bulletin().title) < texts.index("各县（市）：")
    signed = len(texts) - 1 - texts[::-1].index("沧州市民营经济领导小组办公室")
    assert texts[signed + 1] == "2025年4月8日"
    record = document.tables[-1]
    assert record.rows[-1].cells[0].text == "沧州市民营经济领导小组办公室\t2025年4月8日印发"


def test_ranking_table_is_the_hand_worked_one(document) -> None:  # type: ignore[no-untyped-def]
    ranking = document.tables[0]
    rows = table_rows(ranking)
    assert rows[0] == ["名次", "县（市）", "综合得分", "指标得分", "扣分", "上期名次", "名次变化", "报送情况", "备注"]
    assert rows[1:] == hand_ranking()


def test_every_table_fits_the_page_and_repeats_its_header(document) -> None:  # type: ignore[no-untyped-def]
    width = round(Mm(156).twips)
    for table in document.tables:
        grid = [int(c.get(qn("w:w"))) for c in table._tbl.tblGrid.findall(qn("w:gridCol"))]
        assert sum(grid) == width
    for table in document.tables[:-1]:                    # the last is the 版记, no header
        first = table.rows[0]._tr
        assert first.trPr is not None and first.trPr.find(qn("w:tblHeader")) is not None
        assert all(r._tr.trPr is None or r._tr.trPr.find(qn("w:tblHeader")) is None for r in table.rows[1:])


def test_page_numbers_outside_odd_right_even_left(document) -> None:  # type: ignore[no-untyped-def]
    s = document.sections[0]
    assert document.settings.odd_and_even_pages_header_footer
    for footer, side in ((s.footer, "right"), (s.even_page_footer, "left")):
        (p,) = footer.paragraphs
        assert p.text == "— 1 —"                           # the PAGE field's placeholder
        assert p._p.pPr.jc.get(qn("w:val")) == side
        assert " PAGE " in [t.text for t in p._p.iter(qn("w:instrText"))]


def test_submitted_text_stays_text() -> None:
    values = make_values()
    values["130983"]["CZ01"].update(progress=f"{SCRIPT}\n第二行\x01", problems=ATTACK, next_steps="\tcmd")
    data = write_docx(make_bulletin("2025Q1", values=values), head=head())
    document = docx.Document(io.BytesIO(data))
    texts = document.tables[-2]
    row = table_rows(texts)[1]
    assert row[:3] == ["黄骅市", "化工", f"{SCRIPT}\n第二行"] and row[3:] == [ATTACK, "\tcmd"]
    xml = zipfile.ZipFile(io.BytesIO(data)).read("word/document.xml").decode()
    assert "&lt;script&gt;" in xml and "<script" not in xml
    # The only field in the document is the page number (in the footers): no HYPERLINK field.
    assert "instrText" not in xml and "fldSimple" not in xml and "w:hyperlink" not in xml


def test_the_same_bulletin_gives_the_same_bytes() -> None:
    first = write_docx(make_bulletin(), head=head())
    assert write_docx(make_bulletin(), head=head()) == first
    archive = zipfile.ZipFile(io.BytesIO(first))
    assert {i.date_time for i in archive.infolist()} == {(2025, 4, 8, 0, 0, 0)}
    assert "docProps/thumbnail.jpeg" not in archive.namelist()
    p = docx.Document(io.BytesIO(first)).core_properties
    issued = datetime(2025, 4, 8, tzinfo=TZ)                  # midnight, Beijing time
    assert (p.created, p.modified, p.revision, p.last_printed) == (issued, issued, 1, None)
    assert (p.title, p.author) == (make_bulletin().title, "沧州市民营经济领导小组办公室")


def test_document_number_from_the_pattern() -> None:
    b = make_bulletin()
    assert document_number("沧工信字〔{year}〕{seq}号", b, 12) == "沧工信字〔2025〕12号"
    assert document_number("沧工信字〔{year}〕{seq}号", b) == "沧工信字〔2025〕　　号"   # the clerk fills it in
    h = DocumentHead.of(b, issuer="", number="", addressee="各县（市）：")
    assert (h.mark, h.number, h.signature, h.printer) == (b.issuer, "", b.issuer, b.issuer)


def test_bulletin_settings(tmp_path: Path) -> None:
    path = tmp_path / "supervise.toml"
    path.write_text('[bulletin]\nissuer = ""\nnumber = "沧政办〔{year}〕{seq}号"\nattach = ["xlsx", "pdf"]\n',
                    encoding="utf-8")
    s = load_settings(path).bulletin
    assert (s.issuer, s.number, s.attach) == ("沧州市民营经济领导小组办公室（沧州市工业和信息化局）", "沧政办〔{year}〕{seq}号",
                                              ("xlsx", "pdf"))
    path.write_text('[bulletin]\nnumber = "〔{month}〕号"\n', encoding="utf-8")
    with pytest.raises(WorkspaceError, match=r"\[bulletin\] number"):
        load_settings(path)
    path.write_text('[bulletin]\nattach = ["doc"]\n', encoding="utf-8")
    with pytest.raises(WorkspaceError, match=r"\[bulletin\] attach: 'doc'"):
        load_settings(path)


@pytest.mark.libreoffice
def test_libreoffice_opens_the_document(tmp_path: Path) -> None:
    """A county office's Word or WPS, stood in for by LibreOffice: it converts the .docx to PDF."""
    require_peer("LibreOffice (soffice)", soffice())
    require_peer("poppler (pdftotext)", shutil.which("pdftotext"))
    path = tmp_path / "bulletin.docx"
    path.write_bytes(write_docx(make_bulletin(), head=head()))
    (pdf,) = convert([path], ["pdf"], tmp_path)["pdf"]
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert make_bulletin().title in text.replace("\n", "").replace(" ", "")
    for name in COUNTIES:
        assert name in text
