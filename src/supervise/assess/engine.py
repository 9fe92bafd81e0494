"""One rulebook applied to one period's units (pure: plain data in, an AssessmentResult out)."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..periods import dataset_title, parse_period
from .coverage import Verdict, check, env_of
from .model import AssessmentResult, Deduction, IndicatorScore, RewardTally, Settlement, UnitResult
from .ranking import rank_units
from .rulebook import DeductionRule, IndicatorRule, Rulebook
from .scoring import score
from .settlement import TALLY_NEW, TALLY_UPGRADED, reward_tally, settle

# What each [[deductions]] `on` is called in notes, bulletins and explain.
DEDUCTION_LABELS = {"late": "迟报", "missing": "漏报", "rejected": "退回", "warning": "数据质量提示"}


@dataclass
class UnitInput:
    """What the engine knows about one ranked unit (an assessed county)."""

    county_code: str
    county_name: str
    values: dict[str, float | None] | None      # aggregated values; None = no current submission
    targets: dict[str, float | None] = field(default_factory=dict)
    state: str = "on_time"                       # on_time | late | missing | rejected
    days_late: int = 0
    warnings: int = 0
    # every rejection of the unit's submissions for the period: kind, file, at, reason
    rejections: list[dict[str, str]] = field(default_factory=list)


def compute_deductions(
    rules: Sequence[DeductionRule], state: str, days_late: int, warnings: int,
    rejections: Sequence[dict[str, str]] = (),
) -> list[Deduction]:
    """The deductions a unit incurs under the rulebook's [[deductions]] (each capped by its max)."""
    out = []
    for r in rules:
        occurrences: list[dict[str, str]] = []
        if r.on == "late":
            if state != "late":
                continue
            if r.per_day is not None:
                count, each, how = float(days_late), r.per_day, f"迟报{days_late}天，每天扣{r.per_day:g}分"
            else:
                count, each, how = 1.0, r.points or 0.0, f"迟报，扣{r.points:g}分"
        elif r.on == "warning":
            if warnings <= 0:
                continue
            count, each, how = (
                float(warnings), r.points or 0.0, f"{DEDUCTION_LABELS['warning']}{warnings}条，每条扣{r.points:g}分"
            )
        elif r.on == "rejected":
            # once per rejection for the period, resubmitted or not
            if not rejections:
                continue
            occurrences = [dict(x) for x in rejections]
            n = len(rejections)
            count, each, how = float(n), r.points or 0.0, f"错报/退回{n}次，每次扣{r.points:g}分"
        else:
            # missing: nothing accepted for the period, whether nothing came or all of it
            # was rejected; sending garbage never costs less than sending nothing
            hit = state in ("missing", "rejected") if r.on == "missing" else state == r.on
            if not hit:
                continue
            count, each, how = 1.0, r.points or 0.0, f"{DEDUCTION_LABELS[r.on]}，扣{r.points:g}分"
        amount = count * each
        if r.max is not None and amount > r.max:
            amount = r.max
            how += f"，以{r.max:g}分为限"
        out.append(Deduction(on=r.on, count=count, points=amount, note=how, occurrences=occurrences))
    return out


def _env(unit: UnitInput, elapsed: float) -> dict[str, float | None]:
    return env_of(unit.values, unit.targets, elapsed)


def _score_indicator(
    rule: IndicatorRule, units: Sequence[UnitInput], elapsed: float
) -> dict[str, IndicatorScore]:
    values: dict[str, float | None] = {}
    targets: dict[str, float | None] = {}
    inputs: dict[str, dict[str, float | None]] = {}
    for u in units:
        env = _env(u, elapsed)
        names = list(rule.expr.inputs) + (list(rule.target.inputs) if rule.target else [])
        inputs[u.county_code] = {n: env.get(n) for n in dict.fromkeys(names)}
        if u.values is None:
            values[u.county_code] = None
        else:
            values[u.county_code] = rule.expr.evaluate(env)
        if rule.target is not None:
            targets[u.county_code] = rule.target.evaluate(env)
    pts = score(
        rule.method, values, weight=rule.weight, higher_is_better=rule.higher_is_better,
        missing=rule.missing, step=rule.step, floor=rule.floor, targets=targets, cap=rule.cap,
        bands=rule.bands,
    )
    out = {}
    for u in units:
        p = pts[u.county_code]
        note = p.note
        if u.values is None and p.note:
            note = "未报送有效数据，" + p.note
        out[u.county_code] = IndicatorScore(
            code=rule.code, label=rule.label, method=rule.method, weight=rule.weight,
            value=values[u.county_code], points=p.points, inputs=inputs[u.county_code],
            reference={"higher_is_better": rule.higher_is_better, **p.reference}, note=note,
        )
    return out


def verdict(
    book: Rulebook, period: str, data_period: str, elapsed: float, units: Sequence[UnitInput],
    min_coverage: float = 0.0,
) -> Verdict:
    """Whether these units can be ranked under the rulebook (assess.coverage), with reasons."""
    dp = parse_period(data_period)
    return check(
        book, units, data_label=f"{dp.label}{dataset_title(dp)}", year=parse_period(period).year,
        elapsed=elapsed, min_coverage=min_coverage,
    )


def assess(
    book: Rulebook, period: str, data_period: str, elapsed: float, units: Sequence[UnitInput],
    *, min_coverage: float = 0.0,
) -> AssessmentResult:
    """Score, deduct, rank and settle every unit under one rulebook, if there is enough to rank
    on (`verdict`); otherwise a result with no ranking that says what is missing.

    `min_coverage` is the share of units that must have data, targets and computable values;
    with none at all nothing is ranked whatever it says."""
    found = verdict(book, period, data_period, elapsed, units, min_coverage)
    if not found.assessable:
        return _header(book, period, data_period, [], None, [], (None, None), found)
    by_indicator = {r.code: _score_indicator(r, units, elapsed) for r in book.indicators}
    deductions = {
        u.county_code: compute_deductions(book.deductions, u.state, u.days_late, u.warnings, u.rejections)
        for u in units
    }
    totals = {
        u.county_code: math.fsum(by_indicator[r.code][u.county_code].points for r in book.indicators)
        - math.fsum(d.points for d in deductions[u.county_code])
        for u in units
    }
    tie_points = {
        u.county_code: [by_indicator[c][u.county_code].points for c in book.ranking.tie_break] for u in units
    }
    places = {p.unit: p for p in rank_units(totals, book.ranking.precision, tie_points)}

    settlement = None
    tally = []
    rates: tuple[float | None, float | None] = (None, None)
    rule = book.settlement
    if rule is not None and rule.rewards:
        settlement = settle({c: p.rank for c, p in places.items()}, rule.rewards, rule.min_units)
    if rule is not None and rule.reward_tally:
        tally = reward_tally(
            {
                u.county_code: (
                    u.county_name,
                    (u.values or {}).get(TALLY_NEW),
                    (u.values or {}).get(TALLY_UPGRADED),
                )
                for u in units
            },
            rule.reward_new, rule.reward_upgraded,
        )
        rates = (rule.reward_new, rule.reward_upgraded)

    results = []
    for u in units:
        p = places[u.county_code]
        results.append(
            UnitResult(
                county_code=u.county_code, county_name=u.county_name,
                scores={r.code: by_indicator[r.code][u.county_code] for r in book.indicators},
                deductions=deductions[u.county_code], total=p.total, score=p.score, rank=p.rank,
                reporting_state=u.state,
                net=settlement.net.get(u.county_code, 0.0) if settlement and settlement.applies else None,
                values=dict(u.values or {}), days_late=u.days_late, warnings=u.warnings,
            )
        )
    results.sort(key=lambda r: (r.rank, r.county_code))
    return _header(book, period, data_period, results, settlement, tally, rates, found)


def _header(
    book: Rulebook, period: str, data_period: str, units: list[UnitResult], settlement: Settlement | None,
    tally: list[RewardTally], rates: tuple[float | None, float | None], found: Verdict,
) -> AssessmentResult:
    """The result around its units: what the rulebook says, and the verdict on coverage."""
    return AssessmentResult(
        rulebook=book.id, title=book.title, version=book.version, period=period,
        period_kind=book.period, data=book.data,
        indicators=[r.describe() for r in book.indicators],
        units=units, settlement=settlement, rewards_tally=tally, data_period=data_period,
        deductions=[
            {k: v for k, v in vars(d).items() if v not in (None, "")} for d in book.deductions
        ],
        ranking={"precision": book.ranking.precision, "tie_break": list(book.ranking.tie_break)},
        reward_new=rates[0], reward_upgraded=rates[1],
        assessable=found.assessable, reasons=list(found.reasons), coverage=dict(found.detail),
    )


# Part of every inputs hash: a change to how the engine computes invalidates stored results.
ENGINE_VERSION = "2"   # 2: rejected counts every rejection for the period, invalid and 退回 alike


def inputs_hash(book: Rulebook, period: str, units: list[UnitInput], raw: dict[str, Any]) -> str:
    """SHA-256 over the rulebook text, every value read, targets and reporting states."""
    doc = {
        "engine": ENGINE_VERSION,
        "rulebook": book.text,
        "period": period,
        "units": [
            {
                "county_code": u.county_code, "county_name": u.county_name, "targets": u.targets,
                "state": u.state, "days_late": u.days_late, "warnings": u.warnings,
                "rejections": u.rejections,
                "has_values": u.values is not None,
                "raw": raw.get(u.county_code, {}),
            }
            for u in units
        ],
    }
    text = json.dumps(doc, ensure_ascii=False, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
