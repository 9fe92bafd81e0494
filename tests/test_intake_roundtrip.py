"""Round trips through real files: template -> filled -> (LibreOffice .xls/.ods, CSV) -> SQLite."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from supervise.intake.ingest import collect_inbox, ingest_files
from supervise.intake.templates import TEMPLATE_VERSION, write_templates
from supervise.periods import Month, Quarter
from supervise.store.submissions import current_values
from supervise.workspace import Workspace, init_workspace

from .conftest import require_peer
from .intake_corpus import (
    HUANGHUA,
    at,
    convert,
    csv_rows,
    edit,
    filled,
    long_csv,
    monthly_values,
    quarterly_values,
    rewrite_part,
    soffice,
)

MARCH = Month(2025, 3)
Q1 = Quarter(2025, 1)
NOW = at("2025-04-03 10:00")


def stored(ws: Workspace, period: str) -> dict[str, dict[str, Any]]:
    conn = ws.connect()
    try:
        return current_values(conn, period).get(HUANGHUA, {})
    finally:
        conn.close()


def as_stored(values: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What the database should hold: numbers as floats, text as text."""
    return {cl: {k: (float(v) if isinstance(v, (int, float)) else v) for k, v in row.items()}
            for cl, row in values.items()}


# ------------------------------------------------------------------ templates


def test_templates_one_per_county_with_locked_metadata_and_codes(ws: Workspace) -> None:
    written = write_templates(ws, MARCH)
    assert len(written) == 14
    t = next(x for x in written if x["county_code"] == HUANGHUA)
    assert t["period"] == "2025-03"
    assert Path(t["path"]).parent == ws.outbox_dir / "templates" / "2025-03"
    wb = load_workbook(t["path"])
    assert wb.sheetnames == ["填报表", "填报说明"]
    sh = wb["填报表"]
    assert (sh["A2"].value, sh["B2"].value) == ("县（市）代码", "130983")
    assert (sh["C2"].value, sh["D2"].value) == ("县（市）名称", "黄骅市")
    assert (sh["E2"].value, sh["F2"].value) == ("报告期", "2025-03")
    assert (sh["G2"].value, sh["H2"].value) == ("模板版本", TEMPLATE_VERSION)
    assert sh["I4"].value == "营业收入（本年累计）（万元）"
    codes = [sh.cell(5, c).value for c in range(1, 18)]
    assert codes[:4] == ["cluster_code", "cluster_name", "ent_total", "ent_above"]
    assert codes[-1] == "land_disposed_ytd" and len(set(codes)) == 17
    assert [sh.cell(r, 1).value for r in range(6, 10)] == ["CZ01", "CZ02", "CZ03", "CZ04"]
    assert sh.cell(6, 2).value == "化工" and sh.cell(10, 1).value is None
    # Protection: sheet protected without password, metadata/labels locked, inputs unlocked.
    assert sh.protection.sheet and not sh.protection.password
    assert sh["B2"].protection.locked and sh["C5"].protection.locked and sh["A6"].protection.locked
    assert not sh["C6"].protection.locked and not sh["Q9"].protection.locked
    assert sh.freeze_panes == "C6"
    assert sh.column_dimensions["I"].width > 10
    rules = {str(dv.sqref): (dv.type, dv.operator, dv.formula1) for dv in sh.data_validations.dataValidation}
    assert rules["C6:C9"] == ("whole", "greaterThanOrEqual", "0")
    assert rules["I6:I9"] == ("decimal", "greaterThanOrEqual", "0")
    assert rules["K6:K9"][0] == "decimal"          # profit may be negative
    help_rows = [[c.value for c in r] for r in wb["填报说明"].iter_rows()]
    flat = "\n".join(str(v) for r in help_rows for v in r if v is not None)
    assert "2025年4月5日24时前" in flat
    for code in ("ent_total", "revenue_ytd", "land_disposed_ytd"):
        assert code in flat


def test_quarterly_template_and_one_county(ws: Workspace) -> None:
    [t] = write_templates(ws, Q1, HUANGHUA)
    sh = load_workbook(t["path"])["填报表"]
    codes = [sh.cell(5, c).value for c in range(3, 16)]
    assert codes[:6] == ["hitech_ent", "srdi_ent", "little_giant", "platforms", "invention_patents",
                         "digital_rate"]
    assert codes[-3:] == ["progress", "problems", "next_steps"]
    rules = {str(dv.sqref): (dv.type, dv.formula1, dv.formula2) for dv in sh.data_validations.dataValidation}
    assert rules["H6:H9"] == ("decimal", "0", "100")
    assert sh["F2"].value == "2025Q1"


# ------------------------------------------------------------------ xlsx and CSV


def test_xlsx_round_trip(ws: Workspace, tmp_path: Path) -> None:
    values = monthly_values(ws.registry, HUANGHUA)
    path = filled(ws, HUANGHUA, MARCH, tmp_path / "a.xlsx", values)
    report = ingest_files(ws, [path], county=HUANGHUA, now=NOW)
    f = report.files[0]
    assert (f.verdict, f.county_code, f.period, f.format, f.values) == ("accepted", HUANGHUA, "2025-03", "xlsx", 60)
    assert stored(ws, "2025-03") == as_stored(values)
    assert report.summary == {"files": 1, "accepted": 1, "warning": 0, "rejected": 0, "unchanged": 0, "values": 60}
    conn = ws.connect()
    assert conn.execute("SELECT cell FROM submission_values WHERE cluster_code='CZ02' AND indicator='revenue_ytd'"
                        ).fetchone()[0] == "填报表!I7"
    conn.close()


def test_formula_with_cached_value_is_read_as_its_value(ws: Workspace, tmp_path: Path) -> None:
    path = filled(ws, HUANGHUA, MARCH, tmp_path / "a.xlsx")
    wb = load_workbook(path)
    wb["填报表"]["M6"] = "=1+2"           # CZ01 export_ytd
    wb.save(path)
    # What Excel writes after calculating: the formula and its cached result.
    fixed = rewrite_part(path, "xl/worksheets/sheet1.xml",
                         lambda x: x.replace(b"<f>1+2</f><v></v>", b"<f>1+2</f><v>3</v>")
                         .replace(b"<f>1+2</f><v /></c>", b"<f>1+2</f><v>3</v></c>"),
                         tmp_path / "b.xlsx")
    f = ingest_files(ws, [fixed], county=HUANGHUA, now=NOW).files[0]
    assert f.verdict == "accepted", [p.message for p in f.problems]
    assert stored(ws, "2025-03")["CZ01"]["export_ytd"] == 3.0


def test_numbers_typed_as_text_are_numbers(ws: Workspace, tmp_path: Path) -> None:
    path = filled(ws, HUANGHUA, MARCH, tmp_path / "a.xlsx", CZ01__revenue_ytd="12,345.5", CZ02__ent_total=" 102 ")
    f = ingest_files(ws, [path], county=HUANGHUA, now=NOW).files[0]
    assert f.verdict == "accepted"
    got = stored(ws, "2025-03")
    assert (got["CZ01"]["revenue_ytd"], got["CZ02"]["ent_total"]) == (12345.5, 102.0)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_long_csv(ws: Workspace, tmp_path: Path, encoding: str) -> None:
    values = quarterly_values(ws.registry, HUANGHUA)
    path = long_csv(csv_rows(HUANGHUA, "2025Q1", values), tmp_path / "q.txt", encoding)
    f = ingest_files(ws, [path], county=HUANGHUA, now=NOW).files[0]
    assert (f.verdict, f.format, f.period, f.values) == ("accepted", "csv", "2025Q1", 52)
    got = stored(ws, "2025Q1")
    assert got["CZ03"]["progress"] == "完成技改项目3个"
    assert got["CZ02"]["digital_rate"] == 62.5


def test_format_is_taken_from_content_not_name(ws: Workspace, tmp_path: Path) -> None:
    path = filled(ws, HUANGHUA, MARCH, tmp_path / "a.xlsx")
    disguised = tmp_path / "data.csv"
    shutil.copyfile(path, disguised)
    f = ingest_files(ws, [disguised], county=HUANGHUA, now=NOW).files[0]
    assert (f.verdict, f.format) == ("accepted", "xlsx")
    assert (ws.home / "archive" / f.sha256[:2] / f"{f.sha256}.xlsx").read_bytes() == path.read_bytes()


def test_rows_shifted_by_a_resave_still_read(ws: Workspace, tmp_path: Path) -> None:
    path = filled(ws, HUANGHUA, MARCH, tmp_path / "a.xlsx", CZ04__employees=4321)
    wb = load_workbook(path)
    wb["填报表"].insert_rows(2, 2)       # metadata now on row 4, codes on row 7, data from row 8
    wb.save(path)
    f = ingest_files(ws, [path], county=HUANGHUA, now=NOW).files[0]
    assert f.verdict == "accepted", [p.message for p in f.problems]
    assert stored(ws, "2025-03")["CZ04"]["employees"] == 4321.0


# ------------------------------------------------------------------ LibreOffice (.xls, .ods)


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Filled templates converted by LibreOffice once per module: {kind: {fmt: path}}."""
    require_peer("LibreOffice (soffice)", soffice())
    root = tmp_path_factory.mktemp("lo")
    ws = init_workspace(root / "home")
    month = monthly_values(ws.registry, HUANGHUA)
    quarter = quarterly_values(ws.registry, HUANGHUA)
    m = filled(ws, HUANGHUA, MARCH, root / "src" / "monthly.xlsx", month)
    q = filled(ws, HUANGHUA, Q1, root / "src" / "quarterly.xlsx", quarter)
    bad = filled(ws, HUANGHUA, MARCH, root / "src" / "bad.xlsx", month, CZ02__revenue_ytd="约三千")
    return {"month": month, "quarter": quarter, "files": convert([m, q, bad], ["xls", "ods", "csv"], root)}


@pytest.mark.libreoffice
@pytest.mark.parametrize("fmt", ["xls", "ods"])
def test_libreoffice_round_trip(converted: dict[str, Any], tmp_path: Path, fmt: str) -> None:
    ws = init_workspace(tmp_path / "home")
    m, q, bad = converted["files"][fmt]
    report = ingest_files(ws, [m, q, bad], county=HUANGHUA, now=NOW)
    verdicts = [(f.format, f.period, f.verdict) for f in report.files]
    assert verdicts == [(fmt, "2025-03", "accepted"), (fmt, "2025Q1", "accepted"), (fmt, "2025-03", "rejected")]
    assert stored(ws, "2025-03") == as_stored(converted["month"])
    assert stored(ws, "2025Q1") == as_stored(converted["quarter"])
    p = report.files[2].problems[0]
    assert (p.code, p.where, p.cluster_code, p.indicator) == ("not_a_number", "填报表!I7 / CZ02 / revenue_ytd", "CZ02", "revenue_ytd")


@pytest.mark.libreoffice
def test_a_template_saved_as_csv_is_read_like_the_workbook(converted: dict[str, Any], tmp_path: Path) -> None:
    """另存为 CSV (LibreOffice here; Excel on a Chinese Windows writes GB18030): the same values,
    and a mistake located at the same cell as in the workbook."""
    ws = init_workspace(tmp_path / "home")
    m, q, bad = converted["files"]["csv"]
    report = ingest_files(ws, [m, q, bad], county=HUANGHUA, now=NOW)
    assert [(f.format, f.period, f.verdict) for f in report.files] == [
        ("csv", "2025-03", "accepted"), ("csv", "2025Q1", "accepted"), ("csv", "2025-03", "rejected")]
    assert stored(ws, "2025-03") == as_stored(converted["month"])
    assert stored(ws, "2025Q1") == as_stored(converted["quarter"])
    p = report.files[2].problems[0]
    assert (p.code, p.where) == ("not_a_number", "CSV!I7 / CZ02 / revenue_ytd")
    gb = tmp_path / "gb18030.csv"
    gb.write_bytes(m.read_text(encoding="utf-8").encode("gb18030"))
    [f] = ingest_files(ws, [gb], county=HUANGHUA, now=NOW).files
    assert (f.verdict, f.values) == ("accepted", 4 * 15)
    assert stored(ws, "2025-03") == as_stored(converted["month"])


@pytest.mark.libreoffice
def test_ods_formula_without_value(converted: dict[str, Any], tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "home")
    src = converted["files"]["ods"][0]
    # Make I7 a formula cell with no computed value, as a program that never recalculates would.
    def fn(xml: bytes) -> bytes:
        import re
        rows = re.split(rb"(<table:table-row\b)", xml)
        # rows: [before, tag, body, tag, body, ...]; data row 7 is the 7th row of the first table
        i = 2 * 7
        body = rows[i]
        cells = re.findall(rb"<table:table-cell\b[^>]*?(?:/>|>.*?</table:table-cell>)", body, re.DOTALL)
        target = cells[8]   # column I
        rows[i] = body.replace(target, b'<table:table-cell table:formula="of:=[.C7]*2"/>', 1)
        return b"".join(rows)
    out = rewrite_part(src, "content.xml", fn, tmp_path / "f.ods")
    f = ingest_files(ws, [out], county=HUANGHUA, now=NOW).files[0]
    assert f.verdict == "rejected"
    assert [(p.code, p.where) for p in f.problems] == [("formula_without_value", "填报表!I7 / CZ02 / revenue_ytd")]


def test_inbox_collects_every_county_folder_and_skips_temp_files(ws: Workspace, tmp_path: Path) -> None:
    good = filled(ws, HUANGHUA, MARCH, tmp_path / "a.xlsx")
    folder = ws.inbox_dir / HUANGHUA
    folder.mkdir(parents=True)
    shutil.copyfile(good, folder / "三月.xlsx")
    shutil.copyfile(good, folder / "~黄骅市三月.xlsx")  # a leading ~ alone is a name, not a lock file
    (folder / "~$三月.xlsx").write_bytes(b"lock")
    (folder / ".hidden.xlsx").write_bytes(b"x")
    os.utime(folder / "三月.xlsx", (1_700_000_000, 1_700_000_000))          # arrived first
    os.utime(folder / "~黄骅市三月.xlsx", (1_700_000_060, 1_700_000_060))   # a minute later
    report = collect_inbox(ws, now=NOW)
    assert [(Path(f.file).name, f.verdict) for f in report.files] == [
        ("三月.xlsx", "accepted"), ("~黄骅市三月.xlsx", "accepted")]
    assert sorted(p.name for p in folder.iterdir()) == [".hidden.xlsx", "~$三月.xlsx"]
    # the hidden file is left, and said so; Excel's own lock file is not worth a word
    doc = report.to_json()
    assert [Path(s["file"]).name for s in doc["skipped"]] == [".hidden.xlsx"]
    assert doc["summary"]["skipped"] == 1
    conn = ws.connect()
    # the same bytes twice: stored once, the second copy reported unchanged
    assert [tuple(r) for r in conn.execute("SELECT sender_code, source FROM submissions")] == [(HUANGHUA, "inbox")]
    assert [f.unchanged for f in report.files] == [False, True]
    conn.close()


def _column_of(sh: Any, code: str) -> str:
    from openpyxl.utils import get_column_letter

    return next(get_column_letter(c.column) for c in sh[5] if c.value == code)


def test_text_indicator_formula_without_value_is_its_own_text(ws: Workspace, tmp_path: Path) -> None:
    """openpyxl writes formulas without a cached value: in a text cell the formula is the text."""
    q1 = Quarter(2025, 1)
    link = '=HYPERLINK("http://x.example/a?b=1&c=2","见附件")'

    def text_formulas(sh: Any) -> None:
        sh[f"{_column_of(sh, 'progress')}6"] = link
        sh[f"{_column_of(sh, 'next_steps')}7"] = '="推进"&"入园"'

    path = edit(filled(ws, HUANGHUA, q1, tmp_path / "q.xlsx"), text_formulas)
    f = ingest_files(ws, [path], county=HUANGHUA, now=at("2025-04-08 10:00")).files[0]
    assert (f.verdict, f.problems) == ("accepted", [])
    conn = ws.connect()
    got = {(r[0], r[1]): r[2] for r in conn.execute(
        "SELECT cluster_code, indicator, text FROM submission_values WHERE submission_id = ?",
        (f.submission_id,))}
    conn.close()
    assert got[("CZ01", "progress")] == link
    assert got[("CZ02", "next_steps")] == '="推进"&"入园"'

    # A numeric cell with a formula and no value stays an error, not a zero.
    def number_formula(sh: Any) -> None:
        sh[f"{_column_of(sh, 'hitech_ent')}6"] = "=SUM(D6:E6)"

    bad = edit(filled(ws, HUANGHUA, q1, tmp_path / "q2.xlsx", CZ01__progress="x"), number_formula)
    f = ingest_files(ws, [bad], county=HUANGHUA, now=at("2025-04-08 10:00")).files[0]
    assert [(p.code, p.where) for p in f.problems] == [("formula_without_value", "填报表!C6 / CZ01 / hitech_ent")]
