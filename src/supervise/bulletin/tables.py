"""The bulletin's data tables: the clusters with their revenue tiers, the reporting status with
its warnings, the quarterly texts, and the progress against the plan's goals.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ..periods import TZ, Period
from ..registry import Goal, Registry
from ..status import STATE_LABELS, CountyStatus, rates
from .model import (
    TIER_100,
    TIER_200,
    TIER_500,
    TIER_NONE,
    TIERS,
    ClusterRow,
    ClusterSummary,
    GoalRow,
    StatusRow,
    StatusSummary,
    TextRow,
    TierCount,
    WarningRow,
)
from .wording import (
    YI,
    Values,
    number,
    tier_of,
    ytd_span,
)

# A cluster without figures, by its county's reporting state: one word for one thing.
_ABSENT = {"rejected": "退回", "not_due": "截止前未报送"}


def cluster_table(registry: Registry, values: Values, period: Period,
              states: dict[str, str] | None = None) -> tuple[list[ClusterRow], ClusterSummary]:
    rows = []
    states = states or {}
    for i, c in enumerate(registry.clusters.values(), start=1):
        data = values.get(c.county_code, {}).get(c.code, {})
        rev = number(data.get("revenue_ytd"))
        ly = number(data.get("revenue_ytd_ly"))
        growth = (rev - ly) / ly * 100 if rev is not None and ly else None
        rows.append(
            ClusterRow(
                index=i,
                county_code=c.county_code,
                county_name=c.county_name,
                cluster_code=c.code,
                cluster_name=c.name,
                revenue=rev,
                revenue_yi=rev / YI if rev is not None else None,
                revenue_ly=ly,
                growth=growth,
                tier=tier_of(rev),
                absent=_ABSENT.get(states.get(c.county_code, ""), TIER_NONE),
            )
        )
    reported = [r for r in rows if r.reported]
    both = [r for r in reported if r.revenue_ly]
    total = sum(r.revenue or 0.0 for r in reported)
    now_both = sum(r.revenue or 0.0 for r in both)
    ly_both = sum(r.revenue_ly or 0.0 for r in both)
    counts = {t: 0 for t in TIERS}
    for r in rows:
        counts[r.tier] += 1
    summary = ClusterSummary(
        clusters=len(rows),
        reported=len(reported),
        revenue=total,
        revenue_yi=total / YI,
        revenue_ly=ly_both,
        growth=(now_both - ly_both) / ly_both * 100 if ly_both else None,
        tiers=[TierCount(t, counts[t]) for t in TIERS],
        over_100=counts[TIER_500] + counts[TIER_200] + counts[TIER_100],
        months=ytd_span(period),
    )
    return rows, summary


def _received(dt: datetime | None) -> str:
    if dt is None:
        return ""
    local = dt.astimezone(TZ) if dt.tzinfo else dt
    return local.strftime("%Y-%m-%d %H:%M")


def status_table(registry: Registry, statuses: list[CountyStatus]) -> tuple[list[StatusRow], list[WarningRow], StatusSummary]:
    rows, warnings = [], []
    for s in statuses:
        if s.state == "late":
            detail = f"迟报{s.days_late}天"
        elif s.state == "missing":
            detail = "截至考核时未报送"
        elif s.state == "rejected":
            detail = s.reason or "已退回，待重新报送"
        elif s.state == "not_due":
            detail = "尚未报送，报送截止时间未到"
        else:
            detail = ""
        rows.append(
            StatusRow(
                county_code=s.county_code,
                county_name=s.county_name,
                state=s.state,
                label=STATE_LABELS.get(s.state, s.state),
                received_at=_received(s.received_at),
                days_late=s.days_late,
                detail=detail,
                warnings=len(s.warnings),
            )
        )
        for w in s.warnings:
            where = []
            if w.sheet or w.cell:
                where.append("!".join(x for x in (w.sheet, w.cell) if x))
            if w.cluster_code:
                cl = registry.clusters.get(w.cluster_code)
                where.append(cl.name if cl else w.cluster_code)
            if w.indicator:
                ind = registry.indicators.get(w.indicator)
                where.append(ind.label if ind else w.indicator)
            warnings.append(WarningRow(s.county_code, s.county_name, " · ".join(where), w.message, w.code))
    count = {k: sum(1 for r in rows if r.state == k) for k in ("on_time", "late", "missing", "rejected", "not_due")}
    rate = rates(statuses)
    waiting = f"、截止前尚未报送{count['not_due']}个" if count["not_due"] else ""
    sentence = (
        f"应报{len(rows)}个县（市），按时报送{count['on_time']}个、迟报{count['late']}个、"
        f"漏报{count['missing']}个、退回{count['rejected']}个{waiting}；报送完整率{rate['completeness']:.1f}%、"
        f"及时率{rate['timeliness']:.1f}%"
    )
    sentence += f"；数据质量提示{len(warnings)}条。" if warnings else "；未发现数据质量问题。"
    summary = StatusSummary(
        counties=len(rows),
        on_time=count["on_time"],
        late=count["late"],
        missing=count["missing"],
        rejected=count["rejected"],
        not_due=count["not_due"],
        completeness=rate["completeness"],
        timeliness=rate["timeliness"],
        warnings=len(warnings),
        sentence=sentence,
    )
    return rows, warnings, summary


def text_rows(registry: Registry, values: Values) -> list[TextRow]:
    rows = []
    for c in registry.clusters.values():
        data = values.get(c.county_code, {}).get(c.code, {})
        texts = [data.get(k) for k in ("progress", "problems", "next_steps")]
        if not any(isinstance(t, str) and t.strip() for t in texts):
            continue
        rows.append(
            TextRow(c.county_code, c.county_name, c.code, c.name,
                    *(t if isinstance(t, str) else "" for t in texts))
        )
    return rows


def goal_rows(
    registry: Registry, values: Values, goal_values: Values, goal_period: str, summary: ClusterSummary
) -> list[GoalRow]:
    """Progress against the plan's goals (reference/goals.csv), in the file's order."""
    quarterly = goal_values or values
    tiers = {t.tier: t.count for t in summary.tiers}
    rows = []
    for g in registry.goals:
        current: float | None
        basis = g.basis
        if g.measure == "tier":
            current = float({"100+": summary.over_100, "500+": tiers[TIER_500], "200-500": tiers[TIER_200]}[g.tier])
            basis = f"{basis}（{summary.months}）"
        else:
            ind = registry.indicators.get(g.indicator)
            monthly = ind is not None and ind.dataset == "monthly"
            src = values if monthly else quarterly
            nums = [
                n
                for c in registry.clusters.values()
                if (n := number(src.get(c.county_code, {}).get(c.code, {}).get(g.indicator))) is not None
            ]
            if not nums:
                current = None
            elif g.measure == "mean":
                current = sum(nums) / len(nums)
            else:
                current = sum(nums)
            if not monthly and goal_period:
                basis = f"{basis}（{goal_period}）"
        percent = current / g.target * 100 if current is not None and g.target else None
        rows.append(GoalRow(g.label, g.unit, current, g.target, g.target_text, percent, basis))
    return rows


def goals_note(goals: Sequence[Goal]) -> str:
    """Where the goals come from, and how progress is measured."""
    sources = list(dict.fromkeys(f"{g.policy}确定的{g.year}年主要目标" for g in goals if g.policy))
    head = f"目标值来自{'、'.join(sources)}；" if sources else ""
    return head + "完成进度 = 当前值 ÷ 目标值；集群规模按本年累计营业收入计，年内随累计收入增加而上升。"
