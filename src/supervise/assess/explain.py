"""`supervise explain`: one unit of a result laid out with every input, rule and point (pure)."""

from __future__ import annotations

from typing import Any

from .model import AssessmentResult


def explain_not_assessable(
    result: AssessmentResult, county_code: str, county_name: str, reporting_state: str
) -> dict[str, Any]:
    """A rulebook that ranked nobody, for `supervise explain` (pure): why, and no score or rank."""
    return {
        "rulebook": result.rulebook, "title": result.title, "version": result.version,
        "period": result.period, "data_period": result.data_period, "issued_at": None,
        "inputs_hash": result.inputs_hash, "county_code": county_code, "county_name": county_name,
        "reporting_state": reporting_state, "assessable": False, "reasons": list(result.reasons),
        "indicators": [], "deductions": [], "score": None, "rank": None, "n": 0,
        "settlement": None, "reward_tally": None,
    }


def explain_unit(result: AssessmentResult, county_code: str) -> dict[str, Any]:
    """One unit of one result, laid out for `supervise explain` (pure)."""
    u = result.unit(county_code)
    indicators = []
    for ind in result.indicators:
        s = u.scores[ind["code"]]
        indicators.append({
            "code": s.code, "label": s.label, "unit": ind.get("unit", ""), "method": s.method,
            "weight": s.weight, "expr": ind.get("expr"), "target": ind.get("target"),
            "higher_is_better": ind.get("higher_is_better", True), "missing": ind.get("missing"),
            "inputs": s.inputs, "value": s.value, "reference": s.reference, "points": s.points,
            "note": s.note,
        })
    settlement = None
    sm = result.settlement
    if sm is not None:
        settlement = {
            "applies": sm.applies, "reason": sm.reason, "rewards": sm.rewards,
            "net": sm.net.get(county_code, 0.0) if sm.applies else None,
            "lines": [
                {"payer": t.payer, "payee": t.payee, "amount": t.amount}
                for t in sm.ledger if county_code in (t.payer, t.payee)
            ],
        }
    tally = next((t for t in result.rewards_tally if t.county_code == county_code), None)
    return {
        "rulebook": result.rulebook, "title": result.title, "version": result.version,
        "period": result.period, "data_period": result.data_period, "issued_at": result.issued_at or None,
        "inputs_hash": result.inputs_hash,
        "county_code": u.county_code, "county_name": u.county_name, "assessable": True, "reasons": [],
        "reporting_state": u.reporting_state, "days_late": u.days_late, "warnings": u.warnings,
        "indicators": indicators,
        "points_total": sum(x["points"] for x in indicators),
        "deductions": [
            {"on": d.on, "count": d.count, "points": d.points, "note": d.note, "occurrences": d.occurrences}
            for d in u.deductions
        ],
        "deduction_total": u.deduction_points,
        "total": u.total, "score": u.score, "rank": u.rank, "n": len(result.units),
        "precision": result.ranking.get("precision"), "tie_break": result.ranking.get("tie_break", []),
        "settlement": settlement,
        "reward_tally": None if tally is None else {
            "new_entered": tally.new_entered, "upgraded": tally.upgraded, "amount": tally.amount,
            "note": tally.note,
        },
    }
