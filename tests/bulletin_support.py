"""Bulletin test helpers shared by tests/test_bulletin_*.py: results, statuses and values written
out by hand (not by the assessment engine), rendering into a workspace, reading files back."""

from __future__ import annotations

from datetime import date, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import openpyxl

from supervise.assess.model import (
    AssessmentResult,
    Deduction,
    IndicatorScore,
    RewardTally,
    Settlement,
    Transfer,
    UnitResult,
)
from supervise.bulletin import build_bulletin
from supervise.jobs.render import render_bulletins
from supervise.periods import TZ, parse_period
from supervise.registry import Registry, load_registry
from supervise.status import CountyStatus
from supervise.store.submissions import ProblemRow
from supervise.workspace import Settings, Workspace

NOW = datetime(2025, 4, 20, 8, 0, tzinfo=TZ)

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
        issuer=settings().bureau.issuer,
        city=settings().bureau.city,
        period=parse_period(period) if isinstance(period, str) else period,
        results=results,
        previous={},
        statuses=make_statuses(reg),
        values=make_values(),
        goal_values=make_goal_values(),
        issued=date(2025, 4, 8),
    )
    args.update(kw)
    return build_bulletin(**args)


def render(ws: Workspace, period: str = "2025-03", results: list[Any] | None = None):  # type: ignore[no-untyped-def]
    results = results if results is not None else [make_result(ws.registry, period=period)]
    return render_bulletins(ws, parse_period(period), results, now=NOW)


def cells(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    wb = openpyxl.load_workbook(path)
    return {ws.title: [tuple(c.value for c in row) for row in ws.iter_rows()] for ws in wb.worksheets}


class Dom(HTMLParser):
    """Tags, text and linked URLs of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "xlink:href")]

    def handle_data(self, data: str) -> None:
        self.text.append(data)
