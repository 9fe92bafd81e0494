"""Assessment results: one row per (rulebook, period, inputs) run, with every unit's points.

The same inputs (rulebook text, every value read, the reporting states) give the same
`inputs_hash`, so re-running a period reuses the stored row: `issued_at` stays the time these
inputs were first assessed, while `assessed_at` records the latest run that produced them.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import TYPE_CHECKING

from ..periods import parse_period, stamp

if TYPE_CHECKING:
    from ..assess.model import AssessmentResult

SCHEMA = """
CREATE TABLE assessments (
    id            INTEGER PRIMARY KEY,
    rulebook      TEXT NOT NULL,
    version       TEXT NOT NULL,
    title         TEXT NOT NULL,
    period        TEXT NOT NULL,          -- 2025-03 | 2025Q1 | 2025
    data_period   TEXT NOT NULL,          -- the submissions read (2025-12 for a monthly-data year)
    inputs_hash   TEXT NOT NULL,          -- SHA-256 of the rulebook text and every input value
    created_at    TEXT NOT NULL,          -- = issued_at: when these inputs were first assessed
    assessed_at   TEXT NOT NULL,          -- the latest run that found these same inputs
    result        TEXT NOT NULL,          -- the whole result as JSON (explain, bulletins)
    UNIQUE (rulebook, period, inputs_hash)
);
CREATE INDEX assessments_period ON assessments (rulebook, period, assessed_at, id);

CREATE TABLE assessment_units (
    assessment_id   INTEGER NOT NULL REFERENCES assessments(id),
    county_code     TEXT NOT NULL,
    county_name     TEXT NOT NULL,
    reporting_state TEXT NOT NULL,        -- on_time | late | missing | rejected
    inputs          TEXT NOT NULL,        -- JSON: the aggregated values read (NULL: no value)
    total           REAL NOT NULL,        -- points minus deductions, unrounded
    score           REAL NOT NULL,        -- total rounded to the rulebook's precision
    rank            INTEGER NOT NULL,
    deductions      REAL NOT NULL,
    net             REAL,                 -- settlement net (万元), NULL without settlement
    PRIMARY KEY (assessment_id, county_code)
) WITHOUT ROWID;

CREATE TABLE assessment_points (
    assessment_id INTEGER NOT NULL REFERENCES assessments(id),
    county_code   TEXT NOT NULL,
    indicator     TEXT NOT NULL,
    value         REAL,                   -- the unit's computed value (NULL: cannot be computed)
    points        REAL NOT NULL,
    method        TEXT NOT NULL,
    detail        TEXT NOT NULL,          -- JSON: inputs, reference (min/max/target/place...), note
    PRIMARY KEY (assessment_id, county_code, indicator)
) WITHOUT ROWID;
"""


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False)


def save_result(conn: sqlite3.Connection, result: AssessmentResult, *, now: datetime) -> AssessmentResult:
    """Store a result unless the same inputs were already assessed; return the stored result.

    Idempotent: for an inputs_hash already on record the stored row is returned (with its first
    `issued_at`) and only its `assessed_at` moves to `now`.
    """
    from . import transaction  # not at the top: the package imports this module (schema)

    at = stamp(now)
    with transaction(conn):
        row = conn.execute(
            "SELECT id FROM assessments WHERE rulebook = ? AND period = ? AND inputs_hash = ?",
            (result.rulebook, result.period, result.inputs_hash),
        ).fetchone()
        if row is not None:
            conn.execute("UPDATE assessments SET assessed_at = ? WHERE id = ?", (at, row["id"]))
            assessment_id = int(row["id"])
        else:
            result.issued_at = at
            result.assessment_id = None
            cur = conn.execute(
                """INSERT INTO assessments
                   (rulebook, version, title, period, data_period, inputs_hash, created_at, assessed_at, result)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, '{}')""",
                (result.rulebook, result.version, result.title, result.period, result.data_period,
                 result.inputs_hash, at, at),
            )
            assessment_id = int(cur.lastrowid or 0)
            result.assessment_id = assessment_id
            conn.execute(
                "UPDATE assessments SET result = ? WHERE id = ?", (_dumps(result.to_dict()), assessment_id)
            )
            for u in result.units:
                conn.execute(
                    """INSERT INTO assessment_units
                       (assessment_id, county_code, county_name, reporting_state, inputs, total, score,
                        rank, deductions, net) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (assessment_id, u.county_code, u.county_name, u.reporting_state, _dumps(u.values),
                     u.total, u.score, u.rank, u.deduction_points, u.net),
                )
                for s in u.scores.values():
                    conn.execute(
                        """INSERT INTO assessment_points
                           (assessment_id, county_code, indicator, value, points, method, detail)
                           VALUES (?, ?, ?, ?, ?, ?, ?)""",
                        (assessment_id, u.county_code, s.code, s.value, s.points, s.method,
                         _dumps({"inputs": s.inputs, "reference": s.reference, "note": s.note})),
                    )
    stored = _load(conn, "WHERE id = ?", (assessment_id,))
    assert stored is not None
    return stored


def _load(conn: sqlite3.Connection, where: str, args: tuple[object, ...]) -> AssessmentResult | None:
    from ..assess.model import AssessmentResult  # not at the top: assess imports this module

    row = conn.execute(
        f"SELECT id, created_at, result FROM assessments {where} ORDER BY assessed_at DESC, id DESC LIMIT 1",
        args,
    ).fetchone()
    if row is None:
        return None
    result = AssessmentResult.from_dict(json.loads(row["result"]))
    result.assessment_id = int(row["id"])
    result.issued_at = row["created_at"]
    return result


def find_result(
    conn: sqlite3.Connection, rulebook_id: str, period: str, inputs_hash: str
) -> AssessmentResult | None:
    """The stored result for exactly these inputs, if they were assessed before."""
    return _load(
        conn, "WHERE rulebook = ? AND period = ? AND inputs_hash = ?", (rulebook_id, str(period), inputs_hash)
    )


def load_result(conn: sqlite3.Connection, rulebook_id: str, period: str) -> AssessmentResult | None:
    """The latest result of a rulebook for a period (the one the last run produced)."""
    return _load(conn, "WHERE rulebook = ? AND period = ?", (rulebook_id, str(period)))


def previous_result(conn: sqlite3.Connection, rulebook_id: str, period: str) -> AssessmentResult | None:
    """The latest result for the period before `period` (for 进位/退位 in bulletins)."""
    return load_result(conn, rulebook_id, str(parse_period(str(period)).previous()))
