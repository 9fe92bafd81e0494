"""Nothing is ranked or settled on data that are not there (#9): a period without submissions, a
rulebook whose targets are missing, an indicator nobody can compute. The run fails loudly,
`supervise rules check` warns before, a provisional preview says why there is no ranking."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openpyxl
import pytest
from click.testing import CliRunner, Result

from supervise.assess.coverage import check
from supervise.assess.engine import UnitInput
from supervise.assess.loading import parse_rulebook
from supervise.cli import cli
from supervise.store import runs
from supervise.workspace import Workspace

from .conftest import at, store_submission
from .smtp_server import ADMIN, SmtpServer, configure, running_smtp
from .test_assess_integration import december_row

ON_TIME_2024 = "2025-01-03T10:00:00+08:00"
ON_TIME_MARCH = "2025-04-02T10:00:00+08:00"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    yield from running_smtp()


def invoke(ws: Workspace, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--home", str(ws.home), *args], env={"COLUMNS": "400"})  # rows unwrapped


def report(ws: Workspace, period: str, received: str, counties: list[str] | None = None,
           **overrides: float | str) -> None:
    """These counties (default: all 14) send the same figures for `period`, on time."""
    codes = counties if counties is not None else [c.code for c in ws.registry.assessed_counties()]
    conn = ws.connect()
    try:
        for code in codes:
            store_submission(conn, code, period, {f"X{code}": {**december_row(50, 5), **overrides}}, received)
    finally:
        conn.close()


def history(ws: Workspace) -> list[tuple[str, str | None, str, str | None]]:
    conn = ws.connect()
    try:
        return [(r.job, r.period, r.state, r.error) for r in reversed(runs.recent_runs(conn, limit=100))]
    finally:
        conn.close()


def stored_assessments(ws: Workspace) -> int:
    conn = ws.connect()
    try:
        return int(conn.execute("SELECT COUNT(*) FROM assessments").fetchone()[0])
    finally:
        conn.close()


def set_min_coverage(ws: Workspace, share: str) -> None:
    text = ws.settings_path.read_text(encoding="utf-8")
    if "min_coverage" in text:
        text = text.replace("min_coverage = 0.5", f"min_coverage = {share}")
    else:  # a supervise.toml written by `configure` holds only its own sections
        text += f"\n[assessment]\nmin_coverage = {share}\n"
    ws.settings_path.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------- no data at all


def test_a_run_with_no_data_at_all_fails_loudly_and_ranks_nobody(ws: Workspace, smtp: SmtpServer) -> None:
    ws = configure(ws, smtp)
    result = invoke(ws, "run", "--month", "2025-03", "--json")
    assert result.exit_code == 1
    assert result.stdout == ""  # nothing to print: nothing was ranked
    reason = ("2025年3月集群发展月报：参加考核的14个县（市）均没有可用的报送数据（漏报14个），无法排名")
    assert reason in result.stderr and "2025年3月不具备考核条件，未排名、未结算、未发布通报" in result.stderr
    [(job, period, state, error)] = history(ws)
    assert (job, period, state) == ("run_month", "2025-03", "error") and reason in (error or "")
    [alert] = smtp.to(ADMIN)  # loud, as every failed job is
    assert "任务失败：run_month 2025-03" in alert.message["Subject"] and reason in alert.message.get_content()
    assert len(smtp.received) == 1  # the alert, no bulletin
    assert not ws.report_dir("2025-03").exists() and stored_assessments(ws) == 0


def test_half_of_the_counties_is_enough_and_fewer_is_not(ws: Workspace) -> None:
    codes = [c.code for c in ws.registry.assessed_counties()]
    report(ws, "2025-03", ON_TIME_MARCH, codes[:6])
    result = invoke(ws, "run", "--month", "2025-03", "--no-deliver")
    assert result.exit_code == 1
    # 6 of 14 = 43 % < 50 %. The first six of counties.csv reported (黄骅 … 献县); the 8 others are
    # listed in county-code order: 130921 沧县, 130922 青县, 130923 东光县, 130924 海兴县, 130925 盐山县,
    # 130927 南皮县, 130928 吴桥县, 130930 孟村回族自治县.
    assert ("2025年3月集群发展月报：参加考核的14个县（市）中仅6个有可用的报送数据（43%，低于supervise.toml [assessment] "
            "min_coverage 要求的50%），无法排名；缺少数据的：沧县、青县、东光县、海兴县、盐山县、南皮县、吴桥县、孟村回族自治县（漏报8个）"
            ) in result.stderr

    set_min_coverage(ws, "0.4")  # the bureau's choice: 6 of 14 will do
    result = invoke(ws, "run", "--month", "2025-03", "--no-deliver", "--json")
    assert result.exit_code == 0, result.output
    [a] = json.loads(result.stdout)["assessments"]
    assert a["assessable"] is True and len(a["ranking"]) == 14

    set_min_coverage(ws, "0.5")
    report(ws, "2025-03", ON_TIME_MARCH, codes[6:7])  # 7 of 14 = 50 %: enough
    assert invoke(ws, "run", "--month", "2025-03", "--no-deliver").exit_code == 0


def test_min_coverage_outside_0_to_1_is_refused_naming_the_key(ws: Workspace) -> None:
    set_min_coverage(ws, "1.5")
    result = invoke(ws, "status", "--month", "2025-03")
    assert result.exit_code == 1
    assert "[assessment] min_coverage must be a share from 0 to 1" in result.stderr


def test_an_indicator_most_counties_cannot_compute_stops_the_ranking(ws: Workspace) -> None:
    codes = [c.code for c in ws.registry.assessed_counties()]
    report(ws, "2025-03", ON_TIME_MARCH, codes[:4])
    report(ws, "2025-03", ON_TIME_MARCH, codes[4:], revenue_ytd_ly="—")  # a dash typed for last year
    result = invoke(ws, "run", "--month", "2025-03", "--no-deliver")
    assert result.exit_code == 1
    # 4 of the 14 that reported can compute (revenue_ytd − revenue_ytd_ly) / revenue_ytd_ly: 29 %.
    assert ("指标 revenue_growth（营业收入同比增速，25分）：有数据的14个县（市）中仅4个可以计算（29%，低于supervise.toml "
            "[assessment] min_coverage 要求的50%；缺少 revenue_ytd_ly）") in result.stderr


# --------------------------------------------------------------------------- targets


def test_the_annual_rulebook_without_targets_for_the_year_settles_nothing(ws: Workspace, smtp: SmtpServer) -> None:
    """reference/targets.csv has no 2024 rows: 70 of the 100 points could not be computed for
    anyone, and the 900万 of rewards would have moved on the 30 that remain."""
    ws = configure(ws, smtp)
    report(ws, "2024-12", ON_TIME_2024)
    park = ("reference/targets.csv 没有2024年的年度目标 park_new（新增入园企业）：参加考核的14个县（市）均缺少，"
            "依赖它的指标 park_new（新增入园企业目标完成率，40分）无法计算")
    land = ("reference/targets.csv 没有2024年的年度目标 land_disposed（低效用地处置）：参加考核的14个县（市）均缺少，"
            "依赖它的指标 land（低效用地处置目标完成率，30分）无法计算")

    checked = invoke(ws, "rules", "check", "--year", "2024")  # before the run
    assert checked.exit_code == 1
    assert "考核规则（均已通过校验" not in checked.stdout and "格式均已通过校验；1个规则不具备考核条件" in checked.stdout
    assert f"不具备考核条件（2024）：cz-park-annual：{park}" in checked.stdout
    assert f"不具备考核条件（2024）：cz-park-annual：{land}" in checked.stdout
    assert "考核规则 cz-park-annual 不具备考核条件，运行将失败" in checked.stderr
    doc = json.loads(invoke(ws, "rules", "check", "--year", "2024", "--json").stdout)
    annual = next(b for b in doc["rulebooks"] if b["id"] == "cz-park-annual")
    assert annual["checks"] == [{"period": "2024", "scope": "all", "assessable": False, "reasons": [park, land]}]

    result = invoke(ws, "run", "--year", "2024")
    assert result.exit_code == 1
    assert park in result.stderr and land in result.stderr
    assert [(j, p, s) for j, p, s, _ in history(ws)] == [("run_year", "2024", "error")]
    assert [m.message["Subject"] for m in smtp.received] == ["【supervise】任务失败：run_year 2024"]
    assert stored_assessments(ws) == 0 and not ws.report_dir("2024").exists()

    explained = invoke(ws, "explain", "--county", "130983", "--year", "2024", "--json")
    assert explained.exit_code == 0, explained.output
    [a] = json.loads(explained.stdout)["assessments"]
    assert (a["assessable"], a["rank"], a["score"], a["reasons"]) == (False, None, None, [park, land])
    text = invoke(ws, "explain", "--county", "130983", "--year", "2024").stdout
    assert "本期不予排名，不进行奖惩结算：" in text and park in text and "排名 第" not in text


def test_a_preview_without_enough_to_rank_says_why_instead_of_ranking(ws: Workspace) -> None:
    report(ws, "2024-12", ON_TIME_2024)
    result = invoke(ws, "run", "--year", "2024", "--provisional", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    mark = "预览（数据不全，不予排名）"
    assert (doc["provisional"], doc["preview"]) == (True, mark)
    [a] = doc["assessments"]
    assert (a["assessable"], a["ranking"], a["ledger"], a["net"], a["settlement"]) == (False, [], [], {}, None)
    assert len(a["reasons"]) == 2

    page = (ws.report_dir("2024") / "bulletin-2024-provisional.html").read_text(encoding="utf-8")
    assert "本期不予排名，不进行奖惩结算。" in page and "没有2024年的年度目标 park_new" in page
    for praise in ("位列前三", "鼓励先进：排名前三", "<table class=\"ranking\">", "<table class=\"ledger\">"):
        assert praise not in page
    book = openpyxl.load_workbook(ws.report_dir("2024") / "bulletin-2024-provisional.xlsx")
    ranking = [c for row in book["综合排名"].iter_rows(values_only=True) for c in row if c]
    assert any(str(c).startswith("本期不予排名，不进行奖惩结算：reference/targets.csv 没有2024年") for c in ranking)
    settlement = [c for row in book["奖惩结算"].iter_rows(values_only=True) for c in row if c]
    assert not any("付款县" in str(c) for c in settlement)
    assert stored_assessments(ws) == 0


def test_rules_without_a_period_warns_about_the_targets_the_next_runs_need(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("supervise.cli_assess.now", lambda: at("2025-06-01 09:00"))  # 2024 is the year due
    result = invoke(ws, "rules")
    assert result.exit_code == 0, result.output  # warnings: nothing is run
    assert "格式均已通过校验；1个规则不具备考核条件" in result.stdout
    assert "不具备考核条件（2024）：cz-park-annual：reference/targets.csv 没有2024年的年度目标 park_new" in result.stdout

    monkeypatch.setattr("supervise.cli_assess.now", lambda: at("2026-12-02 09:00"))  # 2025 and 2026 are there
    result = invoke(ws, "rules")
    assert result.exit_code == 0 and "考核规则（均已通过校验）" in result.stdout and "不具备考核条件" not in result.stdout


# --------------------------------------------------------------------------- the pure core


BOOK = """
[rulebook]
id = "t-cov"
title = "覆盖测试"
version = "T1"
period = "year"
data = "monthly"

[[indicators]]
code = "park_new"
expr = "ent_in_park_new_ytd"
weight = 60
method = "completion"
target = "targets.park_new"

[[indicators]]
code = "rate"
expr = "ent_in_park / ent_total * 100"
weight = 40
method = "rank"
"""


def test_check_is_plain_data_in_and_the_same_verdict_whatever_the_order(ws: Workspace) -> None:
    book = parse_rulebook(BOOK, ws.registry.indicators)
    row = {"ent_in_park_new_ytd": 3.0, "ent_in_park": 5.0, "ent_total": 10.0}
    units = [
        UnitInput("C3", "丙县", dict(row), targets={"park_new": 4.0}),
        UnitInput("C1", "甲县", None, targets={"park_new": 5.0}, state="missing"),
        UnitInput("C2", "乙县", None, state="rejected"),
        UnitInput("C4", "丁县", dict(row), targets={"park_new": None}),
    ]

    def verdict(us: list[UnitInput], share: float) -> tuple[bool, tuple[str, ...]]:
        v = check(book, us, data_label="2025年12月集群发展月报", year=2025, elapsed=1.0, min_coverage=share)
        return v.assessable, v.reasons

    # 2 of 4 with data (丙, 丁), 2 of 4 with the target (丙, 甲), and of the two with data 1 can
    # compute park_new (丁 has no target) and both the rate: half each time, exactly enough.
    ok, reasons = verdict(units, 0.5)
    assert ok and reasons == ()
    assert verdict(list(reversed(units)), 0.5) == (True, ())
    ok, reasons = verdict(units, 0.75)  # the label is the dictionary's: expr is one code
    assert not ok and reasons == (
        "2025年12月集群发展月报：参加考核的4个县（市）中仅2个有可用的报送数据（50%，低于supervise.toml [assessment] "
        "min_coverage 要求的75%），无法排名；缺少数据的：甲县、乙县（漏报1个、退回1个）",
        "reference/targets.csv 中2025年的年度目标 park_new（新增入园企业）仅2个县（市）有（50%，低于supervise.toml "
        "[assessment] min_coverage 要求的75%），缺少的：乙县、丁县；依赖它的指标 park_new（本年新增入园企业数，60分）无法计算",
    )
    assert verdict(list(reversed(units)), 0.75) == (ok, reasons)
    # None at all is never enough, whatever the setting.
    nobody = [UnitInput(u.county_code, u.county_name, None, state="missing") for u in units]
    ok, reasons = verdict(nobody, 0.0)
    assert not ok and reasons[0].endswith("均没有可用的报送数据（漏报4个），无法排名")
    assert verdict([], 0.0)[0] is False
