"""The bulletin model, built by hand from results written out here (not by the assessment engine).

The helpers at the top (`make_result`, `make_statuses`, `make_values`, `make_bulletin`) are shared
by the other tests/test_bulletin_*.py modules.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from supervise.assess.model import (
    AssessmentResult,
    Deduction,
    IndicatorScore,
    RewardTally,
    Settlement,
    Transfer,
    UnitResult,
)
from supervise.bulletin import build_bulletin, bulletin_title
from supervise.bulletin.build import FULL_TABLE_MAX, tier_of
from supervise.periods import TZ, parse_period
from supervise.registry import County, Registry, load_registry
from supervise.status import CountyStatus
from supervise.store.submissions import ProblemRow
from supervise.workspace import Settings

ATTACK = '=HYPERLINK("http://x","y")'
ATTACKS = (ATTACK, "+1", "@SUM(A1)", "<script>alert(1)</script>", "-2+3", "\tcmd", "#N/A")

INDICATORS = [
    {"code": "revenue_growth", "label": "营业收入同比增速", "unit": "%", "weight": 60, "method": "minmax"},
    {"code": "in_park", "label": "入园进区企业数", "unit": "家", "weight": 40, "method": "rank"},
]


def registry() -> Registry:
    return load_registry()


def settings() -> Settings:
    return Settings()


def make_result(
    reg: Registry,
    *,
    rulebook: str = "cz-monthly",
    period: str = "2025-03",
    order: list[str] | None = None,
    settlement: Settlement | None = None,
    tally: list[RewardTally] | None = None,
    issued_at: str = "2025-04-08T09:00:00+08:00",
    names: dict[str, str] | None = None,
) -> AssessmentResult:
    """14 units; the i-th county of `order` (default: registry order) scores 100 − 5i and ranks i+1.

    Points: revenue_growth = 0.6 × score, in_park = 0.4 × score + deductions, so that
    points − deductions = score. The county ranked 5th has a 2-point deduction for 2 days late.
    """
    codes = order or [c.code for c in reg.assessed_counties()]
    units = []
    for i, code in enumerate(codes):
        score = 100.0 - 5 * i
        ded = [Deduction("late", 2, 2.0)] if i == 4 else []
        extra = sum(d.points for d in ded)
        scores = {
            "revenue_growth": IndicatorScore("revenue_growth", "营业收入同比增速", "minmax", 60, 10.0 - i,
                                             score * 0.6, {}, {}),
            "in_park": IndicatorScore("in_park", "入园进区企业数", "rank", 40, 20.0 - i, score * 0.4 + extra, {}, {}),
        }
        name = (names or {}).get(code, reg.county_name(code))
        units.append(UnitResult(code, name, scores, ded, score, score, i + 1,
                                "late" if i == 4 else "on_time"))
    return AssessmentResult(
        rulebook=rulebook,
        title="县域特色产业集群发展月度督导考核" if rulebook == "cz-monthly" else "工业企业入园进区年度考核",
        version="2025.1",
        period=period,
        period_kind=parse_period(period).kind,
        data="monthly",
        indicators=INDICATORS,
        units=units,
        settlement=settlement,
        rewards_tally=tally or [],
        issued_at=issued_at,
    )


def annual_settlement(reg: Registry) -> Settlement:
    """Ranks 1–3 get 500/300/100 万; ranks 14, 13, 12 pay them (registry order is rank order)."""
    c = [x.code for x in reg.assessed_counties()]
    ledger = [Transfer(c[13], c[0], 500), Transfer(c[12], c[1], 300), Transfer(c[11], c[2], 100)]
    net = {code: 0.0 for code in c}
    net.update({c[0]: 500, c[1]: 300, c[2]: 100, c[11]: -100, c[12]: -300, c[13]: -500})
    return Settlement(True, "", [500, 300, 100], ledger, net)


def make_statuses(reg: Registry, *, warning: str = "营业收入较上月下降，请核实") -> list[CountyStatus]:
    """All on time except: 5th county late 2 days, 13th missing, 14th rejected; a warning for the 1st."""
    out = []
    for i, c in enumerate(reg.assessed_counties()):
        if i == 4:
            s = CountyStatus(c.code, c.name, "late", datetime(2025, 4, 7, 10, 30, tzinfo=TZ), days_late=2)
        elif i == 12:
            s = CountyStatus(c.code, c.name, "missing", None)
        elif i == 13:
            s = CountyStatus(c.code, c.name, "rejected", datetime(2025, 4, 3, 9, 0, tzinfo=TZ),
                             reason="数据校验未通过，待重新报送")
        else:
            s = CountyStatus(c.code, c.name, "on_time", datetime(2025, 4, 3, 16, 20, tzinfo=TZ))
        if i == 0:
            s.warnings = [ProblemRow(1, "warning", "ytd_decrease", "填报表", "H7", "CZ01", "revenue_ytd", warning)]
        out.append(s)
    return out


def make_values() -> dict[str, dict[str, dict[str, Any]]]:
    """Four clusters report revenue (万元), the other 41 nothing.

    CZ01 黄骅市化工      1,200,000 / ly 1,000,000 → +20.0 %, 100–200亿
    CZ11 任丘市石油化工   5,500,000 / ly 5,000,000 → +10.0 %, 500亿以上
    CZ05 任丘市新型建材   2,500,000 / ly 2,000,000 → +25.0 %, 200–500亿
    CZ12 河间市电线电缆     999,999 / no ly        →   —    , 100亿以下
    total 10,199,999 万元 = 1,020.00 亿元; growth over the three with both years:
    (9,200,000 − 8,000,000) / 8,000,000 = 15.0 %; clusters ≥ 100亿: 3.
    """
    return {
        "130983": {"CZ01": {"revenue_ytd": 1_200_000.0, "revenue_ytd_ly": 1_000_000.0}},
        "130982": {
            "CZ11": {"revenue_ytd": 5_500_000.0, "revenue_ytd_ly": 5_000_000.0},
            "CZ05": {"revenue_ytd": 2_500_000.0, "revenue_ytd_ly": 2_000_000.0},
        },
        "130984": {"CZ12": {"revenue_ytd": 999_999.0}},
    }


def make_goal_values() -> dict[str, dict[str, dict[str, Any]]]:
    """hitech_ent 300 + 350 = 650 of 1,300 (50 %); digital_rate mean (50 + 70) / 2 = 60 of 60 (100 %)."""
    return {
        "130983": {"CZ01": {"hitech_ent": 300.0, "digital_rate": 50.0, "progress": "进展顺利"}},
        "130982": {"CZ11": {"hitech_ent": 350.0, "digital_rate": 70.0}},
    }


def make_bulletin(period: str = "2025-03", **kw: Any):  # type: ignore[no-untyped-def]
    reg = kw.pop("reg", None) or registry()
    results = kw.pop("results", None) or [make_result(reg, period=period)]
    args: dict[str, Any] = dict(
        registry=reg,
        settings=settings(),
        period=period,
        results=results,
        previous={},
        statuses=make_statuses(reg),
        values=make_values(),
        goal_values=make_goal_values(),
        issued=date(2025, 4, 8),
    )
    args.update(kw)
    return build_bulletin(**args)


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
    assert bulletin_title(period) == title


def test_header_and_rulebook_named() -> None:
    b = make_bulletin()
    assert b.issuer == "沧州市民营经济领导小组办公室（沧州市工业和信息化局）"
    assert b.date_line == "2025年4月8日"
    assert b.xlsx_name == "关于2025年3月全市县域特色产业集群发展情况的通报.xlsx"
    (s,) = b.sections
    assert (s.rulebook, s.version) == ("cz-monthly", "2025.1")
    assert "cz-monthly" in b.overview[2] and "2025.1" in b.overview[2]


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
