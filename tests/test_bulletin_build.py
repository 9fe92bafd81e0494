"""The bulletin model, built from results written out by hand (tests/bulletin_support.py), not by
the assessment engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervise.assess.model import (
    RewardTally,
    Settlement,
    UnitResult,
)
from supervise.bulletin import bulletin_title
from supervise.bulletin.build import FULL_TABLE_MAX, tier_of
from supervise.periods import parse_period
from supervise.registry import County, Registry, load_registry
from supervise.workspace import Workspace

from .bulletin_support import (
    ATTACK,
    annual_settlement,
    make_bulletin,
    make_result,
    make_values,
    registry,
)

# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize(
    "period,title",
    [
        ("2025-03", "关于2025年3月全市县域特色产业集群发展情况的通报"),
        ("2025Q1", "关于2025年第一季度全市县域特色产业集群发展情况的通报"),
        ("2025", "关于2025年度全市县域特色产业集群发展情况的通报"),
    ],
)
def test_titles(period: str, title: str) -> None:
    assert bulletin_title(parse_period(period)) == title


def test_header_and_rulebook_named() -> None:
    b = make_bulletin()
    assert b.issuer == "沧州市民营经济领导小组办公室（沧州市工业和信息化局）"
    assert b.date_line == "2025年4月8日"
    assert b.xlsx_name == "关于2025年3月全市县域特色产业集群发展情况的通报.xlsx"
    (s,) = b.sections
    assert (s.rulebook, s.version) == ("cz-monthly", "2025.1")
    # a 通报 names the rulebook by its title and version, never by its file id
    assert "《县域特色产业集群发展月度督导考核》（2025.1版）" in b.overview[2] and "cz-monthly" not in b.overview[2]


def test_rank_change_against_previous() -> None:
    reg = registry()
    codes = [c.code for c in reg.assessed_counties()]
    # Previous period: 任丘 1st, 黄骅 2nd, 河间 (3rd) then dropped; others in the same places.
    prev_order = [codes[1], codes[0]] + codes[2:]
    prev = make_result(reg, period="2025-02", order=prev_order)
    prev.units = [u for u in prev.units if u.county_code != codes[2]]
    b = make_bulletin(previous={"cz-monthly": prev})
    rows = {r.county_name: r for r in b.sections[0].ranking}
    assert (rows["黄骅市"].change_label, rows["黄骅市"].previous_rank) == ("进位1", 2)
    assert rows["任丘市"].change_label == "退位1"
    assert rows["河间市"].change_label == "—" and rows["河间市"].change == "new"
    assert rows["泊头市"].change_label == "持平"
    assert b.sections[0].previous_period == "2025-02"


def test_top_and_bottom_three() -> None:
    b = make_bulletin()
    s = b.sections[0]
    assert [r.county_name for r in s.top] == ["黄骅市", "任丘市", "河间市"]
    assert [r.county_name for r in s.bottom] == ["孟村回族自治县", "盐山县", "海兴县"]
    assert all(r.mark == "" for r in s.ranking[3:11])
    assert "黄骅市（100.00分）" in b.overview[2] and "海兴县（35.00分）" in b.overview[2]


def test_cluster_table_and_totals() -> None:
    b = make_bulletin()
    assert len(b.clusters) == 45
    by = {c.cluster_code: c for c in b.clusters}
    assert (by["CZ01"].tier, round(by["CZ01"].growth, 6)) == ("100–200亿", 20.0)
    assert by["CZ11"].tier == "500亿以上" and by["CZ05"].tier == "200–500亿"
    assert by["CZ12"].tier == "100亿以下" and by["CZ12"].growth is None
    assert by["CZ02"].tier == "未报送" and not by["CZ02"].reported
    s = b.cluster_summary
    assert s.revenue == 10_199_999 and s.reported == 4 and s.over_100 == 3
    assert s.growth == pytest.approx(15.0)
    assert {t.tier: t.count for t in s.tiers} == {
        "500亿以上": 1, "200–500亿": 1, "100–200亿": 1, "100亿以下": 1, "未报送": 41}
    assert "累计实现营业收入1,020.00亿元，同比增长15.0%" in b.overview[0]
    assert "超百亿元的集群3个" in b.overview[0] and "尚差22个" in b.overview[0]


def test_tier_boundaries() -> None:
    assert tier_of(1_000_000) == "100–200亿" and tier_of(999_999.99) == "100亿以下"
    assert tier_of(2_000_000) == "200–500亿" and tier_of(5_000_000) == "500亿以上"
    assert tier_of(None) == "未报送" and tier_of(0) == "100亿以下"


def test_reporting_status_and_warnings() -> None:
    b = make_bulletin()
    m = b.status_summary
    # 14 counties: 11 on time, 1 late, 1 missing, 1 rejected → completeness 12/14, timeliness 11/14.
    assert (m.on_time, m.late, m.missing, m.rejected) == (11, 1, 1, 1)
    assert (m.completeness, m.timeliness) == (85.7, 78.6)
    late = b.statuses[4]
    assert (late.label, late.detail, late.received_at) == ("迟报", "迟报2天", "2025-04-07 10:30")
    (w,) = b.warnings
    assert w.county_name == "黄骅市" and w.where == "填报表!H7 · 化工 · 营业收入（本年累计）"
    assert "迟报的县（市）：肃宁县" in b.overview[1]


def test_goals() -> None:
    b = make_bulletin(goal_period="2025年第一季度")
    g = {x.label: x for x in b.goals}
    assert (g["高新技术企业"].current, g["高新技术企业"].percent) == (650, 50.0)
    assert g["高新技术企业"].basis == "季度更新数合计（2025年第一季度）"
    assert g["关键业务环节数字化率"].current == 60 and g["关键业务环节数字化率"].percent == 100.0
    assert (g["营业收入超百亿元集群"].current, g["营业收入超百亿元集群"].goal) == (3, 25)
    assert g["营业收入超百亿元集群"].percent == pytest.approx(12.0)
    assert g["挂牌上市企业"].current is None and g["挂牌上市企业"].percent is None
    assert g["集群企业研发经费投入"].goal is None and g["集群企业研发经费投入"].goal_text == "年均增长15%以上"


def test_settlement_views() -> None:
    reg = registry()
    b = make_bulletin("2025", results=[
        make_result(reg, rulebook="cz-park", period="2025", settlement=annual_settlement(reg),
                    tally=[RewardTally("130983", "黄骅市", 3, 2, 8.0)]),
        make_result(reg, period="2025", settlement=Settlement(False, "参评县（市）不足6个，不进行结算", [500, 300, 100])),
        make_result(reg, rulebook="cz-quarterly", period="2025"),
    ])
    park, monthly, quarterly = b.sections
    assert park.settlement is not None and park.settlement.applies
    assert [(t.payer_name, t.payee_name, t.amount) for t in park.settlement.ledger] == [
        ("海兴县", "黄骅市", 500), ("盐山县", "任丘市", 300), ("孟村回族自治县", "河间市", 100)]
    assert park.settlement.ledger_total == 900 and park.settlement.net_sum == 0
    assert park.tally_total == 8.0
    assert monthly.settlement_note == "本期不进行奖惩结算：参评县（市）不足6个，不进行结算"
    assert quarterly.settlement is None and quarterly.settlement_note == "本项考核不设奖惩结算。"
    assert "由考核后三名承担" in b.overview[2]


def test_quarterly_texts_collected() -> None:
    values = make_values()
    values["130983"]["CZ01"]["problems"] = ATTACK
    b = make_bulletin("2025Q1", values=values)
    (t,) = b.texts
    assert (t.cluster_name, t.problems, t.progress) == ("化工", ATTACK, "")


def test_large_registry_is_excerpted() -> None:
    counties = {f"{100000 + i}": County(f"{100000 + i}", f"县{i:04d}") for i in range(FULL_TABLE_MAX + 40)}
    reg = Registry(counties, {}, load_registry().indicators)
    order = list(counties)
    units = make_result(reg, order=order[:14]).units
    big = make_result(reg, order=order[:14])
    big.units = units + [
        UnitResult(code, counties[code].name, units[0].scores, [], 10.0, 10.0, 15 + i, "on_time")
        for i, code in enumerate(order[14:])
    ]
    b = make_bulletin(reg=reg, results=[big], statuses=[], values={}, goal_values={})
    ex = b.sections[0].ranking_excerpt
    assert b.compact and len(ex.head) == 20 and len(ex.tail) == 20 and ex.omitted == len(order) - 40
    assert len(b.sections[0].ranking) == len(order)
    assert "附件工作簿" in b.compact_note


def test_a_rejected_countys_clusters_read_returned_not_unreported(ws: Workspace) -> None:
    """One word for one thing: 黄骅's four clusters under a 退回 read 退回, the others 未报送."""
    from supervise.bulletin.tables import cluster_table
    from supervise.periods import Month

    rows, _summary = cluster_table(ws.registry, {}, Month(2025, 3), {"130983": "rejected", "130982": "missing"})
    by_county = {(r.county_code, r.absent) for r in rows}
    assert {a for c, a in by_county if c == "130983"} == {"退回"}
    assert {a for c, a in by_county if c == "130982"} == {"未报送"}
    assert sum(1 for r in rows if r.absent == "退回") == 4


def test_goals_are_the_bureaus_data(tmp_path: Path) -> None:
    """goals.csv, not the code, sets the goals: a bureau's own two goals, in its order."""
    from dataclasses import replace

    from supervise.registry import RegistryError, load_goals

    reg = registry()
    path = tmp_path / "goals.csv"
    path.write_text(
        "label,unit,measure,indicator,tier,target,target_text,basis,year,policy\n"
        "数字化率提升,%,mean,digital_rate,,80,80%,已报送集群的算术平均,2026,《某某行动计划》\n"
        "高新技术企业倍增,家,sum,hitech_ent,,1000,,季度更新数合计,2026,《某某行动计划》\n",
        encoding="utf-8",
    )
    mine = replace(reg, goals=load_goals(path, reg.indicators))
    b = make_bulletin(reg=mine, goal_period="2025年第一季度", results=[make_result(mine)])
    # digital_rate mean (50 + 70) / 2 = 60 of 80 → 75 %; hitech_ent 300 + 350 = 650 of 1,000 → 65 %.
    assert [(g.label, g.current, g.goal, g.percent) for g in b.goals] == [
        ("数字化率提升", 60, 80, 75.0), ("高新技术企业倍增", 650, 1000, 65.0)]
    assert b.goals[1].goal_text == "1000"
    assert b.goal_note.startswith("目标值来自《某某行动计划》确定的2026年主要目标；")
    # No 100亿 tier goal: the overview states the tiers without measuring them against one.
    assert "超百亿级集群" not in "".join(b.overview)

    path.write_text("label,unit,measure,indicator,tier,target,target_text,basis,year,policy\n"
                    "某目标,家,count,hitech_ent,,1,,,2026,\n", encoding="utf-8")
    with pytest.raises(RegistryError, match=r"goals.csv, line 2: measure must be one of tier, sum, mean"):
        load_goals(path, reg.indicators)
