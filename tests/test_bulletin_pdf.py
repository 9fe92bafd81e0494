"""The 通报 as PDF, read back with poppler: fonts embedded, the text there as text, A4, page numbers.

The bulletin is the hand-made one of tests/bulletin_support.py (see tests/test_bulletin_docx.py
for its figures, worked out by hand in `hand_ranking`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from supervise.assess.model import UnitResult
from supervise.bulletin.official import DocumentHead
from supervise.bulletin.pdf import write_pdf
from supervise.registry import County, Registry, load_registry

from .bulletin_support import ATTACK, make_bulletin, make_result, make_values
from .conftest import require_peer
from .test_bulletin_docx import COUNTIES, SCRIPT, hand_ranking

HEAD = DocumentHead("沧州市民营经济领导小组办公室", "沧工信字〔2025〕12号", "各县（市）：")


def poppler(*args: str) -> str:
    require_peer(f"poppler ({args[0]})", shutil.which(args[0]))
    return subprocess.run(list(args), capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pdf") / "bulletin.pdf"
    path.write_bytes(write_pdf(make_bulletin(), head=HEAD))
    return path


def pages(path: Path) -> list[str]:
    """The text of each page as laid out (a table's row on one line)."""
    return poppler("pdftotext", "-layout", str(path), "-").split("\f")


def drawn(path: Path) -> str:
    """The text in the order it is drawn (a cell's lines one after the other)."""
    return poppler("pdftotext", "-raw", str(path), "-")


def words(path: Path, page: int) -> list[tuple[str, float, float, float]]:
    """(text, xMin, xMax, yMin) in points of each word on a page."""
    xml = poppler("pdftotext", "-bbox", "-f", str(page), "-l", str(page), str(path), "-")
    return [(m[3], float(m[0]), float(m[2]), float(m[1])) for m in
            re.findall(r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="[\d.]+">([^<]*)</word>', xml)]


def test_every_font_is_embedded(pdf: Path) -> None:
    lines = poppler("pdffonts", str(pdf)).splitlines()[2:]
    fonts = [(line[:37].strip(), line.split()[-5]) for line in lines]      # name, emb
    assert fonts and all(emb == "yes" for _, emb in fonts), fonts
    assert any("CJK" in name for name, _ in fonts)
    assert not any("Type 3" in line for line in lines)


def test_a4_with_fixed_dates(pdf: Path) -> None:
    info = poppler("pdfinfo", "-isodates", str(pdf))
    assert re.search(r"Page size:\s+595\.\d+ x 841\.\d+ pts \(A4\)", info)
    # Midnight of the date of issue, Beijing time, whenever it is rendered.
    assert re.search(r"CreationDate:\s+2025-04-08T00:00:00\+08", info) or "2025-04-07T16:00:00Z" in info
    assert "Title:           关于2025年3月全市县域特色产业集群发展情况的通报" in info


def test_title_head_and_every_county_and_score_as_text(pdf: Path) -> None:
    text = "\n".join(pages(pdf))
    flat = re.sub(r"\s+", "", text)
    assert "关于2025年3月全市县域特色产业集群发展情况的通报" in flat
    assert "沧州市民营经济领导小组办公室" in text and "沧工信字〔2025〕12号" in text and "各县（市）：" in text
    # The ranking table, row by row as drawn: the hand-worked figures in their columns.
    for rank, name, score, points, deduction, previous, change, reporting, remark in hand_ranking():
        row = r"\s+".join(re.escape(x) for x in (rank, name, score, points, deduction, previous, change, reporting, remark)
                          if x)
        assert re.search(rf"^\s*{row}\s*$", text, re.M), (rank, name)
    assert "2025年4月8日印发" in flat


def test_page_numbers_on_the_outer_side(pdf: Path) -> None:
    """— 1 — one character (4号, 14 pt) in from the outer edge of the 版心: odd pages right, even
    pages left (the margins mirror: 订口 28 mm at the binding); 7 mm below the 版心."""
    mm = 72 / 25.4
    for n in (1, 2, 3, 4):
        found = words(pdf, n)
        i = next(i for i, w in enumerate(found) if w[0] == str(n) and found[i - 1][0] == "—" == found[i + 1][0])
        left, right = found[i - 1][1], found[i + 1][2]
        if n % 2:
            assert right == pytest.approx((210 - 26) * mm - 14, abs=2), n
        else:
            assert left == pytest.approx(26 * mm + 14, abs=2), n
        top = found[i][3]
        assert (297 - 35 + 7) * mm - 6 < top < (297 - 35 + 7) * mm + 2, n

def test_charts_are_vector_graphics(pdf: Path) -> None:
    # No raster images at all; the bars' labels are text.
    assert poppler("pdfimages", "-list", str(pdf)).splitlines()[2:] == []
    text = "\n".join(pages(pdf))
    assert "1. 黄骅市" in text and "14. 海兴县" in text          # the score chart's bars, in rank order
    assert text.index("1. 黄骅市") < text.index("14. 海兴县")


def test_submitted_text_stays_text(tmp_path: Path) -> None:
    values = make_values()
    values["130983"]["CZ01"].update(progress=SCRIPT, problems=ATTACK)
    path = tmp_path / "q.pdf"
    data = write_pdf(make_bulletin("2025Q1", values=values), head=HEAD)
    path.write_bytes(data)
    flat = re.sub(r"\s+", "", drawn(path))
    assert SCRIPT in flat and ATTACK in flat
    assert b"/JavaScript" not in data and b"/URI" not in data and b"/Annots" not in data


def test_the_same_bulletin_gives_the_same_bytes() -> None:
    assert write_pdf(make_bulletin(), head=HEAD) == write_pdf(make_bulletin(), head=HEAD)


def test_a_long_ranking_still_lists_every_county(tmp_path: Path) -> None:
    """Above 60 counties the table shows the first and last 20 in full and every county is in the 名次一览."""
    n = 150
    counties = {f"{200000 + i}": County(f"{200000 + i}", f"试{i + 1:03d}县") for i in range(n)}
    reg = Registry(counties, {}, load_registry().indicators)
    codes = list(counties)
    result = make_result(reg, order=codes[:14])
    result.units += [UnitResult(code, counties[code].name, result.units[0].scores, [], 30.0 - i * 0.1,
                                round(30.0 - i * 0.1, 2), 15 + i, "on_time") for i, code in enumerate(codes[14:])]
    path = tmp_path / "long.pdf"
    path.write_bytes(write_pdf(make_bulletin(reg=reg, results=[result], statuses=[], values={}, goal_values={})))
    text = drawn(path)
    assert "全部150个县（市）名次一览" in text and "中间110个县（市）见下方名次一览" in text
    roll = text[text.index("名次一览（"):].replace("\f", "\n")
    for i in range(n):
        score = 100 - 5 * i if i < 14 else 30.0 - (i - 14) * 0.1
        assert re.search(rf"^{i + 1}\s+试{i + 1:03d}县\s+{score:.2f}$", roll, re.M), i + 1
    assert all(name not in text for name in COUNTIES)     # the registry is the one made here
