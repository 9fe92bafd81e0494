"""`rejected` deductions: once per rejection of the county's submissions for the
period (a file that failed validation, or a version staff sent back), resubmitted or not; the
same bytes again count once; `explain` lists each one with its file, time and reason."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from supervise.cli import cli
from supervise.workspace import Workspace

from .intake_corpus import HUANGHUA, filled
from .test_intake_inbox import MARCH

RULEBOOK = """
[rulebook]
id = "t-rej"
title = "退回扣分测试"
version = "T1"
period = "month"
data = "monthly"

[[indicators]]
code = "revenue"
label = "营业收入"
expr = "revenue_ytd"
weight = 100
method = "ratio_to_best"

[[deductions]]
on = "rejected"
points = 3
max = 8
"""


def invoke(ws: Workspace, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--home", str(ws.home), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_every_rejection_counts_once_resubmitted_or_not(ws: Workspace, tmp_path: Path) -> None:
    for f in ws.rules_dir.glob("*.toml"):
        f.unlink()
    (ws.rules_dir / "t-rej.toml").write_text(RULEBOOK, encoding="utf-8")
    settings = ws.settings_path.read_text(encoding="utf-8")  # one county is enough to rank here
    ws.settings_path.write_text(settings.replace("min_coverage = 0.5", "min_coverage = 0"), encoding="utf-8")
    bad = filled(ws, HUANGHUA, MARCH, tmp_path / "黄骅-3月.xlsx", CZ01__ent_total="很多")
    again = tmp_path / "黄骅-3月-再报.xlsx"
    shutil.copyfile(bad, again)                           # the same bytes under another name
    good = filled(ws, HUANGHUA, MARCH, tmp_path / "黄骅-3月-修正.xlsx")
    fixed = filled(ws, HUANGHUA, MARCH, tmp_path / "黄骅-3月-再修正.xlsx", CZ01__revenue_ytd=6000)

    def ingest(path: Path, when: str) -> None:
        invoke(ws, "ingest", "--county", HUANGHUA, "--received-at", when, str(path))

    ingest(bad, "2025-04-02T09:00+08:00")                 # rejection 1: fails validation
    ingest(again, "2025-04-02T10:00+08:00")               # the same bytes: not counted again
    ingest(good, "2025-04-03T09:00+08:00")                # accepted
    invoke(ws, "reject", "--county", HUANGHUA, "--month", "2025-03", "--reason", "营业收入与统计局数据不符")
    ingest(fixed, "2025-04-04T09:00+08:00")               # accepted again, in force

    doc = json.loads(invoke(ws, "explain", "--county", HUANGHUA, "--month", "2025-03", "--json"))
    [a] = doc["assessments"]
    [d] = [d for d in a["deductions"] if d["on"] == "rejected"]
    # two rejections (the invalid file, the 退回) × 3 points = 6, under the cap of 8
    assert (d["count"], d["points"]) == (2, 6)
    got = [(o["kind"], o["file"], o["at"][:16]) for o in d["occurrences"]]
    assert got[0] == ("invalid", "黄骅-3月.xlsx", "2025-04-02T09:00")
    assert got[1][0] == "returned" and got[1][1] == "黄骅-3月-修正.xlsx"
    assert "ent_total" in d["occurrences"][0]["reason"] or "很多" in d["occurrences"][0]["reason"]
    assert d["occurrences"][1]["reason"] == "营业收入与统计局数据不符"

    human = invoke(ws, "explain", "--county", HUANGHUA, "--month", "2025-03")
    assert "错报/退回2次，每次扣3分" in human
    assert "1. 校验未通过：黄骅-3月.xlsx，2025-04-02 09:00" in human
    assert "营业收入与统计局数据不符" in human


def test_a_rejection_the_server_caused_is_not_the_countys(ws: Workspace) -> None:
    from supervise.status import rejections
    from supervise.store.submissions import ProblemRow, SubmissionRow

    def row(i: int, sha: str) -> SubmissionRow:
        return SubmissionRow(i, HUANGHUA, HUANGHUA, "2025-03", "monthly", sha, f"f{i}.xlsx", "xlsx", 1,
                             f"2025-04-0{i}T10:00:00+08:00", f"2025-04-0{i}T10:00:00+08:00", "rejected",
                             "rejected", None, 0, "inbox")

    rows = [row(1, "a"), row(2, "b"), row(3, "a")]
    errors = {
        1: [ProblemRow(1, "error", "not_a_number", "填报表", "D6", "CZ01", "ent_total", "“很多”不是数字")],
        2: [ProblemRow(2, "error", "internal_error", None, None, None, None, "内部错误")],
        3: [ProblemRow(3, "error", "not_a_number", "填报表", "D6", "CZ01", "ent_total", "“很多”不是数字")],
    }
    got = rejections(rows, [], errors)
    assert [(r.file, r.reason) for r in got] == [("f1.xlsx", "“很多”不是数字")]
