"""Assessment results to and from the store: `assess.model.AssessmentResult` as plain rows.

The store keeps a result's document and its unit and point rows (`store.results`); this glue
flattens a result for saving and rebuilds it on loading, so neither side imports the other.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from ..assess.model import AssessmentResult
from ..periods import Period
from ..store import results as stored


def _rebuilt(row: stored.StoredResult | None) -> AssessmentResult | None:
    if row is None:
        return None
    result = AssessmentResult.from_dict(row.doc)
    result.assessment_id = row.id
    result.issued_at = row.created_at
    return result


def save_result(conn: sqlite3.Connection, result: AssessmentResult, *, now: datetime) -> AssessmentResult:
    """Store a result unless the same inputs were already assessed; return the stored result
    (with the `issued_at` of the first time these inputs were assessed)."""
    doc = result.to_dict()
    units = [
        (u.county_code, u.county_name, u.reporting_state, u.values, u.total, u.score, u.rank,
         u.deduction_points, u.net)
        for u in result.units
    ]
    points = [
        (u.county_code, s.code, s.value, s.points, s.method,
         {"inputs": s.inputs, "reference": s.reference, "note": s.note})
        for u in result.units for s in u.scores.values()
    ]
    out = _rebuilt(stored.save_result(conn, doc, units, points, now=now))
    assert out is not None
    return out


def find_result(conn: sqlite3.Connection, rulebook_id: str, period: Period, inputs_hash: str) -> AssessmentResult | None:
    """The stored result for exactly these inputs, if they were assessed before."""
    return _rebuilt(stored.find_result(conn, rulebook_id, str(period), inputs_hash))


def load_result(conn: sqlite3.Connection, rulebook_id: str, period: Period) -> AssessmentResult | None:
    """The latest result of a rulebook for a period (the one the last run produced)."""
    return _rebuilt(stored.load_result(conn, rulebook_id, str(period)))


def previous_result(conn: sqlite3.Connection, rulebook_id: str, period: Period) -> AssessmentResult | None:
    """The latest result for the period before `period` (for 进位/退位 in bulletins)."""
    return load_result(conn, rulebook_id, period.previous())
