"""Numbers as clerks type them: read exactly, refused when ambiguous, flagged when suspicious."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from supervise.cli import cli
from supervise.intake.ingest import ingest_files
from supervise.intake.validate import to_number
from supervise.periods import Month, Quarter
from supervise.workspace import Workspace

from .intake_corpus import HUANGHUA, at, filled  # 黄骅市: CZ01..CZ04

MARCH, Q1 = Month(2025, 3), Quarter(2025, 1)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("1,234.5", 1234.5), ("1,234,567", 1234567.0), ("1，234", 1234.0),  # thousands separators
        (" 123 ", 123.0), ("１２３．５", 123.5), (12.0, 12.0),
        # a comma that is not a thousands separator is not guessed at: "12,5" is not 125
        ("12,5", None), ("1.234,5", None), ("1,2,3", None), ("1,23", None), (",123", None),
        ("12万", None), ("(123)", None), ("nan", None), (True, None),
    ],
)
def test_to_number(raw: Any, expected: float | None) -> None:
    assert to_number(raw) == expected


def test_percent_sign_in_a_percent_cell() -> None:
    assert to_number("62%", percent=True) == 62.0
    assert to_number("62%") is None  # a percent sign in a 万元 cell is a mistake, not 0.62


def _ingest(ws: Workspace, path: Path, when: str) -> Any:
    return ingest_files(ws, [path], county=HUANGHUA, now=at(when)).files[0]


def test_a_comma_that_is_not_a_thousands_separator_is_refused(ws: Workspace, tmp_path: Path) -> None:
    f = _ingest(ws, filled(ws, HUANGHUA, MARCH, tmp_path / "m.xlsx", CZ01__revenue_ytd="12,5"), "2025-04-03 10:00")
    assert f.verdict == "rejected"
    assert [(p.code, p.cluster_code, p.indicator) for p in f.problems] == [("not_a_number", "CZ01", "revenue_ytd")]


def test_an_absurd_magnitude_is_refused_and_cannot_break_the_run(ws: Workspace, tmp_path: Path) -> None:
    path = filled(ws, HUANGHUA, MARCH, tmp_path / "m.xlsx", CZ01__revenue_ytd=1e308, CZ02__revenue_ytd=1e13)
    f = _ingest(ws, path, "2025-04-03 10:00")
    assert f.verdict == "rejected"
    assert sorted((p.code, p.cluster_code) for p in f.problems) == [("out_of_range", "CZ01"), ("out_of_range", "CZ02")]
    # 1万亿 (1e12) of a unit is the largest value accepted
    ok = _ingest(ws, filled(ws, HUANGHUA, MARCH, tmp_path / "ok.xlsx", CZ01__revenue_ytd=1e12), "2025-04-03 11:00")
    assert ok.verdict in ("accepted", "warning")
    settings = ws.settings_path.read_text(encoding="utf-8")  # one county is enough to rank here
    ws.settings_path.write_text(settings.replace("min_coverage = 0.5", "min_coverage = 0"), encoding="utf-8")
    result = CliRunner().invoke(cli, ["--home", str(ws.home), "run", "--month", "2025-03", "--no-deliver", "--json"])
    assert result.exit_code == 0, result.output
    [a] = json.loads(result.stdout)["assessments"]
    assert a["assessable"] and a["ranking"][0]["county_code"] == HUANGHUA


def test_a_percentage_stored_as_a_fraction_is_flagged(ws: Workspace, tmp_path: Path) -> None:
    """Excel stores 62% typed into a cell as 0.62: accepted, but with a warning the bureau sees."""
    f = _ingest(ws, filled(ws, HUANGHUA, Q1, tmp_path / "q.xlsx", CZ03__digital_rate=0.62), "2025-04-08 10:00")
    assert f.verdict == "warning"
    assert [(p.code, p.severity, p.cluster_code, p.indicator) for p in f.problems] == [
        ("percent_as_fraction", "warning", "CZ03", "digital_rate")]
    assert "62%" in f.problems[0].message


def test_an_unexpected_failure_is_one_line_not_a_traceback(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    import supervise.jobs.assessment as runner

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(runner, "explain", broken, raising=False)
    result = CliRunner().invoke(cli, ["--home", str(ws.home), "explain", "--county", HUANGHUA, "--month", "2025-03"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines == ["错误 / error: internal error ZeroDivisionError: float division by zero (rerun with -v for the traceback)"]


def test_an_error_cell_is_named_as_such(ws: Workspace, tmp_path: Path) -> None:
    """A cell holding #DIV/0! is not 'empty': the clerk is told what the cell holds."""
    from openpyxl import load_workbook

    path = filled(ws, HUANGHUA, MARCH, tmp_path / "m.xlsx")
    wb = load_workbook(path)
    sheet = wb.worksheets[0]
    codes = [c.value for c in sheet[5]]
    row = next(r for r in range(6, sheet.max_row + 1) if sheet.cell(r, 1).value == "CZ02")
    sheet.cell(row, codes.index("tax_ytd") + 1).value = "#DIV/0!"  # openpyxl stores it as an error cell
    assert sheet.cell(row, codes.index("tax_ytd") + 1).data_type == "e"
    wb.save(path)
    f = _ingest(ws, path, "2025-04-03 10:00")
    assert f.verdict == "rejected"
    [p] = f.problems
    assert (p.code, p.cluster_code, p.indicator) == ("not_a_number", "CZ02", "tax_ytd")
    assert "#DIV/0!" in p.message


def test_a_deleted_code_row_is_told_once_on_the_data_sheet(ws: Workspace, tmp_path: Path) -> None:
    """The 填报说明 sheet lists every code; it must not be read as the table when row 5 is gone."""
    from openpyxl import load_workbook

    path = filled(ws, HUANGHUA, MARCH, tmp_path / "m.xlsx")
    wb = load_workbook(path)
    wb.worksheets[0].delete_rows(5)  # the clerk deletes the indicator-code row
    wb.save(path)
    f = _ingest(ws, path, "2025-04-03 10:00")
    assert f.verdict == "rejected"
    assert [p.code for p in f.problems] == ["header_not_found"]
    assert "填报表" in f.problems[0].message and "第5行" in f.problems[0].message
