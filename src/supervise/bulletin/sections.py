"""One assessment's part of the bulletin: the ranking with its change of rank, the points per
indicator, deductions, and the settlement ledger with its nets.
"""

from __future__ import annotations

from ..assess.engine import DEDUCTION_LABELS
from ..assess.model import AssessmentResult, Deduction, UnitResult
from ..assess.settlement import REWARD_NEW, REWARD_UPGRADED
from ..status import STATE_LABELS
from .model import (
    AssessmentSection,
    IndicatorColumn,
    LedgerRow,
    NetRow,
    PointsRow,
    RankingRow,
    SettlementView,
    TallyRow,
)
from .wording import (
    excerpt,
)


def _deduction_note(ds: list[Deduction]) -> str:
    parts = []
    for d in ds:
        if not d.points:
            continue
        label = DEDUCTION_LABELS.get(d.on, d.on)
        unit = "天" if d.on == "late" else "次"
        parts.append(d.note or f"{label}{d.count:g}{unit}扣{d.points:g}分")
    return "；".join(parts)


def _indicator_columns(result: AssessmentResult) -> list[IndicatorColumn]:
    cols = [
        IndicatorColumn(
            code=str(i["code"]),
            label=str(i.get("label", i["code"])),
            weight=float(i.get("weight", 0) or 0),
            method=str(i.get("method", "")),
            unit=str(i.get("unit", "") or ""),
        )
        for i in result.indicators
    ]
    if not cols and result.units:
        cols = [
            IndicatorColumn(s.code, s.label, s.weight, s.method) for s in result.units[0].scores.values()
        ]
    return cols


def _ranking(units: list[UnitResult], previous: AssessmentResult | None) -> list[RankingRow]:
    before = {u.county_code: u.rank for u in previous.units} if previous else {}
    rows = []
    for u in units:
        prev = before.get(u.county_code)
        if prev is None:
            change, label = "new", "—"
        elif prev > u.rank:
            change, label = "up", f"进位{prev - u.rank}"
        elif prev < u.rank:
            change, label = "down", f"退位{u.rank - prev}"
        else:
            change, label = "same", "持平"
        rows.append(
            RankingRow(
                rank=u.rank,
                county_code=u.county_code,
                county_name=u.county_name,
                score=u.score,
                points_total=sum(u.points.values()),
                deductions=u.deduction_points,
                previous_rank=prev,
                change=change,
                change_label=label,
                mark="",
                reporting=STATE_LABELS.get(u.reporting_state, u.reporting_state),
            )
        )
    # 鼓励先进，鞭策后进: ranks 1–3 (ties included), and the last three places (ties included).
    top = {id(r) for r in rows if r.rank <= 3}
    if len(rows) > 3:
        floor = rows[-3].rank
        for r in rows:
            if r.rank >= floor and id(r) not in top:
                r.mark = "bottom"
    for r in rows:
        if id(r) in top:
            r.mark = "top"
    return rows


def _settlement(result: AssessmentResult, names: dict[str, str], ranks: dict[str, int]) -> SettlementView | None:
    s = result.settlement
    if s is None:
        return None
    ledger = [
        LedgerRow(t.payer, names.get(t.payer, t.payer), t.payee, names.get(t.payee, t.payee), float(t.amount))
        for t in s.ledger
    ]
    nets = sorted(
        (NetRow(code, names.get(code, code), ranks.get(code), float(v)) for code, v in s.net.items()),
        key=lambda n: (n.rank if n.rank is not None else 1 << 30, n.county_code),
    )
    return SettlementView(
        applies=s.applies,
        reason=s.reason,
        rewards=list(s.rewards),
        ledger=ledger if s.applies else [],
        nets=nets if s.applies else [],
        ledger_total=round(sum(t.amount for t in ledger), 6) if s.applies else 0.0,
        net_sum=round(sum(n.net for n in nets), 6) if s.applies else 0.0,
    )


def assessment_section(result: AssessmentResult, previous: AssessmentResult | None) -> AssessmentSection:
    columns = _indicator_columns(result)
    ranking = _ranking(result.units, previous)
    points = []
    for u in result.units:
        points.append(
            PointsRow(
                rank=u.rank,
                county_code=u.county_code,
                county_name=u.county_name,
                points=[u.scores[c.code].points if c.code in u.scores else None for c in columns],
                values=[u.scores[c.code].value if c.code in u.scores else None for c in columns],
                deductions=u.deduction_points,
                deduction_note=_deduction_note(u.deductions),
                score=u.score,
            )
        )
    names = {u.county_code: u.county_name for u in result.units}
    ranks = {u.county_code: u.rank for u in result.units}
    for t in result.rewards_tally:
        names.setdefault(t.county_code, t.county_name)
    settlement = _settlement(result, names, ranks)
    if not result.assessable:
        note = f"本期不予排名，不进行奖惩结算：{'；'.join(result.reasons)}。"
    elif settlement is None:
        note = "本项考核不设奖惩结算。"
    elif not settlement.applies:
        note = f"本期不进行奖惩结算：{settlement.reason}" if settlement.reason else "本期不进行奖惩结算。"
    else:
        note = ""
    tally = [TallyRow(t.county_code, t.county_name, t.new_entered, t.upgraded, t.amount) for t in result.rewards_tally]
    new = REWARD_NEW if result.reward_new is None else result.reward_new
    upgraded = REWARD_UPGRADED if result.reward_upgraded is None else result.reward_upgraded
    scores = [u.score for u in result.units]
    return AssessmentSection(
        rulebook=result.rulebook,
        title=result.title,
        version=result.version,
        period=result.period,
        previous_period=previous.period if previous else "",
        indicators=columns,
        ranking=ranking,
        ranking_excerpt=excerpt(ranking),
        top=[r for r in ranking if r.mark == "top"],
        bottom=[r for r in ranking if r.mark == "bottom"],
        points=points,
        points_excerpt=excerpt(points),
        settlement=settlement,
        settlement_note=note,
        tally=tally,
        tally_title=f"新增规上工业企业奖励（新建入统每家{new:g}万元、小升规每家{upgraded:g}万元）",
        tally_total=sum(t.amount for t in tally),
        max_score=max([s for s in scores if s > 0], default=0.0),
        assessable=result.assessable,
        reasons=list(result.reasons),
    )
