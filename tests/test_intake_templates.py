"""Blank templates: the title, registry text kept as text, written atomically."""

from __future__ import annotations

import csv
from pathlib import Path

from openpyxl import load_workbook

from supervise.intake.templates import write_templates
from supervise.periods import Month, Quarter
from supervise.registry import default_data_dir
from supervise.workspace import Workspace

from .intake_corpus import HUANGHUA


def test_title_names_the_report_once(ws: Workspace) -> None:
    [m] = write_templates(ws, Month(2025, 3), HUANGHUA)
    [q] = write_templates(ws, Quarter(2025, 1), HUANGHUA)
    assert load_workbook(m["path"])["填报表"]["A1"].value == "2025年3月县域特色产业集群发展月报"
    assert load_workbook(q["path"])["填报表"]["A1"].value == "2025年第一季度县域特色产业集群季度更新"
    help_sheet = load_workbook(m["path"])["填报说明"]
    assert help_sheet["A1"].value == "2025年3月县域特色产业集群发展月报 填报说明"


def test_registry_text_is_written_as_text_not_formulas(ws: Workspace) -> None:
    src = default_data_dir() / "indicators.csv"
    with open(src, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        if r["code"] == "ent_total":
            r["label"] = "=1+1"
            r["help"] = '=HYPERLINK("http://x","y")'
    with open(ws.reference_dir / "indicators.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    ws = Workspace(ws.home)   # registry reloaded
    [t] = write_templates(ws, Month(2025, 3), HUANGHUA)
    wb = load_workbook(t["path"])
    header = wb["填报表"]["C4"]
    assert header.data_type == "s" and header.value.startswith("=1+1")
    cells = [c for row in wb["填报说明"].iter_rows() for c in row if isinstance(c.value, str)]
    helps = [c for c in cells if c.value == '=HYPERLINK("http://x","y")']
    labels = [c for c in cells if c.value == "=1+1"]
    assert helps and labels
    assert all(c.data_type == "s" for c in helps + labels)
    assert not any(c.data_type == "f" for c in cells)


def test_templates_leave_no_temporary_files(ws: Workspace) -> None:
    written = write_templates(ws, Month(2025, 3))
    folder = Path(written[0]["path"]).parent
    assert sorted(p.name for p in folder.iterdir()) == sorted(Path(t["path"]).name for t in written)


def test_the_template_prints_on_a4_landscape_one_page_wide(ws: Workspace) -> None:
    """A clerk prints the form to check it: every column on one page width, the header rows
    (title, county, period, labels, codes) on every page, page numbers in the footer."""
    [t] = write_templates(ws, Month(2025, 3), "130983")
    wb = load_workbook(t["path"])
    for name in ("填报表", "填报说明"):
        sh = wb[name]
        setup = sh.page_setup
        assert (setup.paperSize, setup.orientation, setup.fitToWidth, setup.fitToHeight) == (9, "landscape", 1, 0), name
        assert sh.sheet_properties.pageSetUpPr.fitToPage is True
        assert "&P" in sh.oddFooter.center.text and "&N" in sh.oddFooter.center.text
    data = wb["填报表"]
    code_row = next(r for r in range(1, 10) if data.cell(r, 1).value == "cluster_code")
    assert data.print_title_rows == f"$1:${code_row}"
