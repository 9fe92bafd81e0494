"""`supervise export`: the stored values come back out, one row per cluster, text stays text."""

from __future__ import annotations

import csv
from pathlib import Path

from click.testing import CliRunner
from openpyxl import load_workbook

from supervise.cli import cli
from supervise.intake.ingest import ingest_files
from supervise.intake.templates import fill_template, write_templates
from supervise.periods import Quarter
from tests.conftest import at

HOSTILE = '=HYPERLINK("http://evil.example","点我")'


def quarterly_row(n: int, progress: str = "进展顺利") -> dict[str, float | str]:
    return {"hitech_ent": n, "srdi_ent": 2, "little_giant": 0, "platforms": 1, "invention_patents": 30,
            "digital_rate": 55.5, "listed_ent": 0, "ipo_pipeline": 1, "standards_ytd": 0,
            "green_factories": 1, "progress": progress, "problems": "无", "next_steps": "继续推进"}


def test_export_quarter_round_trip(ws, tmp_path: Path):
    q = Quarter(2025, 1)
    template = next(t for t in write_templates(ws, q, "130924"))  # 海兴县: CZ44, CZ45
    filled = fill_template(Path(template["path"]),
                           {"CZ44": quarterly_row(7, HOSTILE), "CZ45": quarterly_row(3)}, tmp_path / "hx.xlsx")
    report = ingest_files(ws, [filled], county="130924", received_at=at("2025-04-09 10:00"), now=at("2025-04-09 10:00"))
    assert report.to_json()["files"][0]["verdict"] == "accepted"

    result = CliRunner().invoke(cli, ["--home", str(ws.home), "export", "--quarter", "2025Q1"])
    assert result.exit_code == 0, result.output
    path = Path(result.output.strip())
    sheet = load_workbook(path).active
    codes = [c.value for c in sheet[2]]
    rows = {sheet.cell(r, 3).value: r for r in range(3, sheet.max_row + 1)}
    assert len(rows) == 45  # every registered cluster, reported or not
    hx = rows["CZ44"]
    assert sheet.cell(hx, codes.index("hitech_ent") + 1).value == 7
    assert sheet.cell(hx, codes.index("digital_rate") + 1).value == 55.5
    assert sheet.cell(hx, codes.index("state") + 1).value == "按时报送"
    progress = sheet.cell(hx, codes.index("progress") + 1)
    assert progress.value == HOSTILE and progress.data_type == "s"
    # 黄骅市 sent nothing: its clusters are listed, empty, and say so.
    hh = rows["CZ01"]
    assert sheet.cell(hh, codes.index("state") + 1).value == "漏报"
    assert sheet.cell(hh, codes.index("hitech_ent") + 1).value is None

    out = tmp_path / "q1.csv"
    result = CliRunner().invoke(cli, ["--home", str(ws.home), "export", "--quarter", "2025Q1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with open(out, encoding="utf-8-sig", newline="") as f:
        table = list(csv.reader(f))
    assert table[0][:3] == ["county_code", "county_name", "cluster_code"]
    row = next(r for r in table if r[2] == "CZ44")
    assert row[table[0].index("progress")] == "'" + HOSTILE  # a spreadsheet shows it as text
    assert row[table[0].index("hitech_ent")] == "7"
