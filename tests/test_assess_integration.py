"""A real workspace: submissions in SQLite → run_assessments → stored results → supervise explain.

Submissions are written straight into the submissions tables (the intake is tested elsewhere).
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from supervise.cli import cli
from supervise.jobs.assessment import explain, run_assessments
from supervise.jobs.results import load_result, previous_result
from supervise.periods import Year, parse_period
from supervise.workspace import Workspace

from .conftest import at, store_submission

RULEBOOK = """
[rulebook]
id = "t-year"
title = "入园进区测试考核"
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
code = "park_rate"
label = "入园进区率"
expr = "ent_in_park / ent_total * 100"
weight = 40
method = "rank"

[[deductions]]
on = "late"
per_day = 1
max = 3

[[deductions]]
on = "missing"
points = 10

[[deductions]]
on = "warning"
points = 0.5

[ranking]
precision = 2
tie_break = ["park_new"]

[settlement]
rewards = [500, 300, 100]
min_units = 6
"""


def december_row(in_park: float, park_new: float, total: float = 100) -> dict[str, float]:
    row = {
        "ent_total": total, "ent_above": 10, "ent_above_new_ytd": 1, "ent_above_upgraded_ytd": 2,
        "ent_in_park": in_park, "ent_in_park_new_ytd": park_new, "revenue_ytd": 1000,
        "revenue_ytd_ly": 900, "profit_ytd": 50, "tax_ytd": 30, "export_ytd": 0, "employees": 500,
        "tech_invest_ytd": 100, "rd_ytd": 20, "land_disposed_ytd": 100,
    }
    return row


ON_TIME = "2026-01-04T10:00:00+08:00"

# (county, 入园率 = ent_in_park of 100, ent_in_park_new_ytd, received_at); targets.park_new from
# reference/targets.csv for 2025. 海兴县 130924 sends nothing.
DECEMBER = [
    ("130982", 85, 45, "2026-01-07T10:00:00+08:00"),  # 任丘, 2 days late (due 2026-01-05)
    ("130984", 80, 37, ON_TIME),                      # 河间
    ("130981", 80, 29, ON_TIME),                      # 泊头, same rate as 河间
    ("130926", 70, 15, ON_TIME),                      # 肃宁, 15 of target 30
    ("130929", 65, 30, ON_TIME),                      # 献县
    ("130928", 60, 19, ON_TIME),                      # 吴桥
    ("130923", 55, 31, ON_TIME),                      # 东光
    ("130927", 50, 16, ON_TIME),                      # 南皮
    ("130922", 45, 25, ON_TIME),                      # 青县
    ("130921", 40, 43, ON_TIME),                      # 沧县
    ("130930", 35, 15, ON_TIME),                      # 孟村
    ("130925", 30, 17, "2026-01-10T09:00:00+08:00"),  # 盐山, 5 days late
]


@pytest.fixture
def year_ws(ws: Workspace) -> Workspace:
    (ws.rules_dir / "t-year.toml").write_text(RULEBOOK, encoding="utf-8")
    conn = ws.connect()
    try:
        # 黄骅 130983: two clusters, summed: in park 50 + 40 of 50 + 50 = 90 %; new 20 + 11 = 31
        # (its target); one data-quality warning.
        store_submission(
            conn, "130983", "2025-12",
            {"CZ01": december_row(50, 20, total=50), "CZ02": december_row(40, 11, total=50)},
            ON_TIME, warnings=[("CZ01", "ent_in_park", "环比变动过大")],
        )
        for county, in_park, new, received in DECEMBER:
            store_submission(conn, county, "2025-12", {f"X{county}": december_row(in_park, new)}, received)
    finally:
        conn.close()
    return ws


# Worked by hand. n = 14 ranked counties, rank step = 40 / 14 = 2.857142857.
# 入园率 places: 黄骅 90 → 1, 任丘 85 → 2, 河间 = 泊头 80 → 3, 肃宁 70 → 5, 献县 6, 吴桥 7, 东光 8,
# 南皮 9, 青县 10, 沧县 11, 孟村 12, 盐山 13; 海兴 has no place (missing = zero → 0).
# park_new: every county reaches its target (60) except 肃宁 15/30 → 30.
#   黄骅 60 + 40 − 0.5 (1 warning)              = 99.50
#   任丘 60 + 40 − 2.857143 − 2 (2 days late)   = 95.142857 → 95.14
#   河间 60 + 40 − 5.714286                     = 94.285714 → 94.29   } tie, tie-break park_new
#   泊头 the same                                = 94.29               } 60 = 60 → both rank 3
#   献县 60 + 40 − 5 × 2.857143                  = 85.714286 → 85.71  rank 5
#   吴桥 82.857143 → 82.86 (6), 东光 80 (7), 南皮 77.14 (8), 青县 74.29 (9), 沧县 71.43 (10),
#   孟村 68.571429 → 68.57 (11)
#   盐山 60 + 40 − 12 × 2.857143 − 3 (5 days late, max 3) = 62.714286 → 62.71 (12)
#   肃宁 30 + 40 − 4 × 2.857143                  = 58.571429 → 58.57 (13)
#   海兴 0 + 0 − 10 (missing)                    = −10 (14)
EXPECTED = {
    "130983": (99.5, 1), "130982": (95.14, 2), "130984": (94.29, 3), "130981": (94.29, 3),
    "130929": (85.71, 5), "130928": (82.86, 6), "130923": (80.0, 7), "130927": (77.14, 8),
    "130922": (74.29, 9), "130921": (71.43, 10), "130930": (68.57, 11), "130925": (62.71, 12),
    "130926": (58.57, 13), "130924": (-10.0, 14),
}
# Settlement: 海兴 (14) pays 黄骅 500; 肃宁 (13) pays 任丘 300; 盐山 (12) pays place 3's 100,
# shared by 泊头 and 河间 (places 3 and 4): 50 each.
LEDGER = [
    {"payer": "130924", "payee": "130983", "amount": 500.0},
    {"payer": "130926", "payee": "130982", "amount": 300.0},
    {"payer": "130925", "payee": "130981", "amount": 50.0},
    {"payer": "130925", "payee": "130984", "amount": 50.0},
]


def test_run_assessments_worked_by_hand(year_ws: Workspace) -> None:
    results = run_assessments(year_ws, parse_period("2025"), now=at("2026-01-20 09:00"))
    assert [r.rulebook for r in results] == ["cz-park-annual", "t-year"]
    doc = results[1].to_json()
    assert doc["rulebook"] == "t-year" and doc["version"] == "T1"
    got = {row["county_code"]: (row["score"], row["rank"]) for row in doc["ranking"]}
    assert got == EXPECTED
    assert [row["county_code"] for row in doc["ranking"]][:4] == ["130983", "130982", "130981", "130984"]
    row = next(r for r in doc["ranking"] if r["county_code"] == "130925")
    assert set(row) >= {"county_code", "county_name", "score", "rank", "points", "deductions"}
    assert row["county_name"] == "盐山县" and row["deductions"] == 3
    assert row["points"] == {"park_new": 60.0, "park_rate": pytest.approx(40 - 12 * 40 / 14)}
    assert doc["ledger"] == LEDGER
    assert doc["net"]["130983"] == 500 and doc["net"]["130981"] == 50 and doc["net"]["130925"] == -100
    assert doc["net"]["130929"] == 0 and sum(doc["net"].values()) == 0
    json.dumps(doc)  # plain JSON

    # the default annual rulebook ran on the same data too, and its ledger balances
    default = results[0].to_json()
    assert len(default["ranking"]) == 14 and len(default["ledger"]) >= 3
    assert round(sum(default["net"].values()), 6) == 0


def test_same_inputs_reuse_the_stored_result(year_ws: Workspace) -> None:
    first = run_assessments(year_ws, parse_period("2025"), now=at("2026-01-20 09:00"))[1]
    again = run_assessments(year_ws, parse_period("2025"), now=at("2026-01-21 09:00"))[1]
    assert again.assessment_id == first.assessment_id
    assert again.issued_at == first.issued_at == "2026-01-20T09:00:00+08:00"
    conn = year_ws.connect()
    try:
        assert conn.execute("SELECT COUNT(*) FROM assessments WHERE rulebook = 't-year'").fetchone()[0] == 1
        assert conn.execute(
            "SELECT COUNT(*) FROM assessment_points WHERE assessment_id = ?", (first.assessment_id,)
        ).fetchone()[0] == 14 * 2
        # 海兴 finally reports (late): new inputs → a new result, now the latest for the period.
        store_submission(conn, "130924", "2025-12", {"CZ44": december_row(95, 24)}, "2026-01-22T09:00:00+08:00")
    finally:
        conn.close()
    third = run_assessments(year_ws, parse_period("2025"), now=at("2026-01-22 10:00"))[1]
    assert third.assessment_id != first.assessment_id
    assert third.unit("130924").reporting_state == "late"
    conn = year_ws.connect()
    try:
        latest = load_result(conn, "t-year", Year(2025))
        assert latest is not None and latest.assessment_id == third.assessment_id
        assert latest.issued_at == "2026-01-22T10:00:00+08:00"
        assert latest.unit("130983").scores["park_rate"].reference["place"] == 2  # 海兴 95 % is first now
        previous = previous_result(conn, "t-year", Year(2026))
        assert previous is not None and previous.assessment_id == third.assessment_id
        assert previous_result(conn, "t-year", Year(2025)) is None
    finally:
        conn.close()


def test_a_run_reads_each_period_once(year_ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two rulebooks read December; the bulletin reads it again, and Q4 for its goals: each of
    those reads (reporting status, values in force) happens once in the run."""
    from supervise.jobs import reads
    from supervise.jobs.render import render_bulletins

    statuses: list[str] = []
    values: list[str] = []
    real_status, real_values = reads.reporting_status, reads.current_values
    monkeypatch.setattr(reads, "reporting_status", lambda c, r, p, d: statuses.append(str(p)) or real_status(c, r, p, d))
    monkeypatch.setattr(reads, "current_values", lambda c, p: values.append(p) or real_values(c, p))
    results = run_assessments(year_ws, parse_period("2025"), now=at("2026-01-20 09:00"))
    assert len(results) == 2 and statuses == ["2025-12"] and values == ["2025-12"]
    render_bulletins(year_ws, parse_period("2025"), results, now=at("2026-01-20 09:00"))
    assert statuses == ["2025-12"]
    assert values[0] == "2025-12" and len(values) == len(set(values)) and "2025Q4" in values


def test_explain_json_and_table(year_ws: Workspace) -> None:
    run_assessments(year_ws, parse_period("2025"), now=at("2026-01-20 09:00"))
    runner = CliRunner()
    res = runner.invoke(
        cli, ["--home", str(year_ws.home), "explain", "--county", "130981", "--year", "2025",
              "--rulebook", "t-year", "--json"],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    (a,) = doc["assessments"]
    assert a["issued_at"] == "2026-01-20T09:00:00+08:00"
    rate = a["indicators"][1]
    assert rate["code"] == "park_rate" and rate["inputs"] == {"ent_in_park": 80.0, "ent_total": 100.0}
    assert rate["value"] == 80.0
    assert rate["reference"]["place"] == 3 and rate["reference"]["n"] == 14
    assert rate["points"] == pytest.approx(40 - 2 * 40 / 14)
    park = a["indicators"][0]
    assert park["inputs"] == {"ent_in_park_new_ytd": 29.0, "targets.park_new": 29.0}
    assert park["reference"]["target"] == 29.0 and park["points"] == 60.0
    assert (a["score"], a["rank"], a["n"]) == (94.29, 3, 14)
    assert a["settlement"]["net"] == 50.0
    assert a["settlement"]["lines"] == [{"payer": "130925", "payee": "130981", "amount": 50.0}]

    res = runner.invoke(cli, ["--home", str(year_ws.home), "explain", "--county", "130924", "--year", "2025",
                              "--rulebook", "t-year"])
    assert res.exit_code == 0, res.output
    assert "海兴县（130924）" in res.output
    assert "漏报" in res.output and "missing=zero" in res.output
    assert "排名 第14名/共14个" in res.output
    assert "海兴县 → 黄骅市：500 万元" in res.output


def test_explain_refuses_unknown_county_and_rulebook(year_ws: Workspace) -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["--home", str(year_ws.home), "explain", "--county", "999999", "--year", "2025"])
    assert (res.exit_code, res.stderr) == (2, "错误 / error: 未知的县（市、区）代码 999999：--county 须为 "
                                               "reference/counties.csv 中的6位代码（见 --help）\n")
    res = runner.invoke(cli, ["--home", str(year_ws.home), "explain", "--county", "130981", "--month",
                              "2025-03", "--rulebook", "t-year"])
    assert res.exit_code == 1 and "--year" in res.output


def test_rules_command_lists_and_checks(ws: Workspace) -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["--home", str(ws.home), "rules", "--json"])
    assert res.exit_code == 0, res.output
    assert [b["id"] for b in json.loads(res.stdout)["rulebooks"]] == ["cz-monthly", "cz-park-annual", "cz-quarterly"]
    (ws.rules_dir / "bad.toml").write_text(RULEBOOK.replace("weight = 60", "weight = \"sixty\""), encoding="utf-8")
    res = runner.invoke(cli, ["--home", str(ws.home), "rules"])
    assert res.exit_code == 1
    assert "bad.toml: [[indicators]] #1 (park_new) weight: weight must be a number" in res.output


def test_fewer_than_six_units_no_settlement(ws: Workspace) -> None:
    # Only five counties assessed: the annual ledger does not apply and says why.
    counties = ws.reference_dir / "counties.csv"
    lines = counties.read_text(encoding="utf-8").splitlines()
    counties.write_text(
        "\n".join([lines[0]] + [ln.replace(",yes,", ",no,") if i > 5 else ln for i, ln in enumerate(lines[1:], 1)])
        + "\n",
        encoding="utf-8",
    )
    ws = Workspace(ws.home)
    conn = ws.connect()
    try:  # the five report December: there is something to rank, but too few to settle
        for county in ws.registry.assessed_counties():
            store_submission(conn, county.code, "2025-12", {f"X{county.code}": december_row(50, 20)}, ON_TIME)
    finally:
        conn.close()
    (result,) = [r for r in run_assessments(ws, parse_period("2025"), now=at("2026-01-20 09:00")) if r.rulebook == "cz-park-annual"]
    assert len(result.units) == 5
    assert result.settlement is not None and not result.settlement.applies
    assert "仅5个" in result.settlement.reason
    assert result.to_json()["ledger"] == [] and result.to_json()["net"] == {}
    assert all(u.net is None for u in result.units)


def test_monthly_default_rulebook_with_a_missing_county(ws: Workspace) -> None:
    conn = ws.connect()
    try:
        for county in [c.code for c in ws.registry.assessed_counties()][:-1]:
            store_submission(conn, county, "2025-03", {f"X{county}": december_row(50, 5)}, "2025-04-02T10:00:00+08:00")
    finally:
        conn.close()
    (result,) = run_assessments(ws, parse_period("2025-03"), now=at("2025-04-10 09:00"))
    assert result.rulebook == "cz-monthly"
    missing = result.unit("130924")
    assert missing.reporting_state == "missing" and missing.rank == 14
    # every indicator cannot be computed (missing = zero); 漏报 costs 10.
    assert missing.total == -10 and all(s.value is None for s in missing.scores.values())
    # The 13 others reported identical figures, so they differ only on above_new (their targets
    # differ). 黄骅: growth, tax, tech_invest, park_rate equal for all → full 25 + 15 + 15 + 20;
    # above_new = (1 + 2) / (20 × 3/12) = 0.6 of 25 = 15. Total 90.
    assert result.unit("130983").score == 90.0
    # tech_invest (rank): all 13 share place 1 → 15 each; 海兴 takes no place → 0.
    assert {u.scores["tech_invest"].points for u in result.units if u.county_code != "130924"} == {15.0}
    doc = explain(ws, "130983", parse_period("2025-03"))
    (a,) = doc["assessments"]
    growth = a["indicators"][0]
    # (1000 − 900) / 900 × 100 = 11.11…; everybody equal → minmax full weight 25
    assert growth["value"] == pytest.approx(100 / 9, rel=1e-12) and growth["points"] == 25
    above = a["indicators"][3]
    assert above["inputs"]["year_elapsed"] == 0.25 and above["reference"]["target"] == 5.0
    assert a["reward_tally"] == {"new_entered": 1.0, "upgraded": 2.0, "amount": 4.0, "note": ""}
