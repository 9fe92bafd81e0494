"""Assessment results: one row per (rulebook, period, inputs) run, with every unit's points.

The same inputs (rulebook text, every value read, the reporting states) give the same
`inputs_hash`, so re-running a period reuses the stored row: `issued_at` stays the time these
inputs were first assessed, while `assessed_at` records the latest run that produced them.

The store saves and loads plain rows: the result as a JSON document, one row per unit and per
point. Turning them into `assess.model.AssessmentResult` is `jobs.results`.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..periods import stamp

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


@dataclass(frozen=True)
class StoredResult:
    """One stored assessment: its id, when its inputs were first assessed, and the document."""

    id: int
    created_at: str
    doc: dict[str, Any]


def save_result(
    conn: sqlite3.Connection, doc: dict[str, Any], units: list[tuple[Any, ...]], points: list[tuple[Any, ...]],
    *, now: datetime,
) -> StoredResult:
    """Store a result document unless the same inputs were already assessed; return the stored one.

    `doc` carries rulebook, version, title, period, data_period and inputs_hash; `units` are
    (county_code, county_name, reporting_state, inputs, total, score, rank, deductions, net) and
    `points` (county_code, indicator, value, points, method, detail), with inputs and detail as
    plain data (stored as JSON). Idempotent: for an inputs_hash already on record the stored row
    is returned (with its first `created_at`) and only its `assessed_at` moves to `now`. A new
    document is stored with its `issued_at` and `assessment_id`.
    """
    from . import transaction  # not at the top: the package imports this module (schema)

    at = stamp(now)
    with transaction(conn):
        row = conn.execute(
            "SELECT id FROM assessments WHERE rulebook = ? AND period = ? AND inputs_hash = ?",
            (doc["rulebook"], doc["period"], doc["inputs_hash"]),
        ).fetchone()
        if row is not None:
            conn.execute("UPDATE assessments SET assessed_at = ? WHERE id = ?", (at, row["id"]))
            assessment_id = int(row["id"])
        else:
            cur = conn.execute(
                """INSERT INTO assessments
                   (rulebook, version, title, period, data_period, inputs_hash, created_at, assessed_at, result)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, '{}')""",
                (doc["rulebook"], doc["version"], doc["title"], doc["period"], doc["data_period"],
                 doc["inputs_hash"], at, at),
            )
            assessment_id = int(cur.lastrowid or 0)
            conn.execute(
                "UPDATE assessments SET result = ? WHERE id = ?",
                (_dumps({**doc, "issued_at": at, "assessment_id": assessment_id}), assessment_id),
            )
            for u in units:
                conn.execute(
                    """INSERT INTO assessment_units
                       (assessment_id, county_code, county_name, reporting_state, inputs, total, score,
                        rank, deductions, net) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (assessment_id, u[0], u[1], u[2], _dumps(u[3]), *u[4:]),
                )
            for q in points:
                conn.execute(
                    """INSERT INTO assessment_points
                       (assessment_id, county_code, indicator, value, points, method, detail)
                       VALUES (?, ?, ?, ?, ?, ?, ?)""",
                    (assessment_id, *q[:5], _dumps(q[5])),
                )
    stored = _load(conn, "WHERE id = ?", (assessment_id,))
    assert stored is not None
    return stored


def _load(conn: sqlite3.Connection, where: str, args: tuple[object, ...]) -> StoredResult | None:
    row = conn.execute(
        f"SELECT id, created_at, result FROM assessments {where} ORDER BY assessed_at DESC, id DESC LIMIT 1",
        args,
    ).fetchone()
    if row is None:
        return None
    return StoredResult(int(row["id"]), row["created_at"], json.loads(row["result"]))


def find_result(conn: sqlite3.Connection, rulebook_id: str, period: str, inputs_hash: str) -> StoredResult | None:
    """The stored result for exactly these inputs, if they were assessed before."""
    return _load(conn, "WHERE rulebook = ? AND period = ? AND inputs_hash = ?", (rulebook_id, period, inputs_hash))


def load_result(conn: sqlite3.Connection, rulebook_id: str, period: str) -> StoredResult | None:
    """The latest result of a rulebook for a period (the one the last run produced)."""
    return _load(conn, "WHERE rulebook = ? AND period = ?", (rulebook_id, period))
