"""Submissions: archived files, versions, values, problems and the audit trail."""

from __future__ import annotations

SCHEMA = """
CREATE TABLE files (
    sha256        TEXT PRIMARY KEY,
    size          INTEGER NOT NULL,
    archive_path  TEXT NOT NULL,          -- relative to the workspace home
    first_name    TEXT NOT NULL,          -- file name when first seen
    first_seen_at TEXT NOT NULL
);

CREATE TABLE submissions (
    id               INTEGER PRIMARY KEY,
    county_code      TEXT,                -- the county the data belong to (NULL if unknown)
    sender_code      TEXT,                -- the county that sent it (--county or inbox/<code>/)
    period           TEXT,                -- 2025-03 | 2025Q1 (NULL if unreadable)
    dataset          TEXT,                -- monthly | quarterly
    file_sha256      TEXT NOT NULL REFERENCES files(sha256),
    file_name        TEXT NOT NULL,
    format           TEXT,                -- xlsx | xls | ods | csv | unknown
    template_version INTEGER,
    received_at      TEXT NOT NULL,       -- ISO 8601, +08:00
    ingested_at      TEXT NOT NULL,
    verdict          TEXT NOT NULL CHECK (verdict IN ('accepted', 'warning', 'rejected')),
    state            TEXT NOT NULL CHECK (state IN ('current', 'superseded', 'rejected', 'returned')),
    supersedes       INTEGER REFERENCES submissions(id),
    n_values         INTEGER NOT NULL DEFAULT 0,
    source           TEXT NOT NULL DEFAULT 'cli'
);
CREATE INDEX submissions_county_period ON submissions (county_code, period);
CREATE INDEX submissions_period_state ON submissions (period, state);
CREATE INDEX submissions_sha ON submissions (file_sha256);

CREATE TABLE submission_values (
    submission_id INTEGER NOT NULL REFERENCES submissions(id),
    cluster_code  TEXT NOT NULL,
    indicator     TEXT NOT NULL,
    value         REAL,                   -- numbers
    text          TEXT,                   -- text indicators
    cell          TEXT,                   -- where it was read, e.g. 填报表!H7
    PRIMARY KEY (submission_id, cluster_code, indicator)
) WITHOUT ROWID;

CREATE TABLE problems (
    id            INTEGER PRIMARY KEY,
    submission_id INTEGER NOT NULL REFERENCES submissions(id),
    severity      TEXT NOT NULL CHECK (severity IN ('error', 'warning')),
    code          TEXT NOT NULL,
    sheet         TEXT,
    cell          TEXT,
    cluster_code  TEXT,
    indicator     TEXT,
    message       TEXT NOT NULL
);
CREATE INDEX problems_submission ON problems (submission_id);

CREATE TABLE audit (
    id            INTEGER PRIMARY KEY,
    at            TEXT NOT NULL,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,          -- ingest | reject | ...
    county_code   TEXT,
    period        TEXT,
    submission_id INTEGER,
    detail        TEXT                    -- JSON
);
CREATE INDEX audit_county_period ON audit (county_code, period);
"""


# ----------------------------------------------------------------------------- reads
# The functions below are the contract other areas (assess, bulletin, jobs) read through.

import sqlite3  # noqa: E402
from dataclasses import dataclass  # noqa: E402

Value = float | str | None


@dataclass(frozen=True)
class SubmissionRow:
    id: int
    county_code: str | None
    sender_code: str | None
    period: str | None
    dataset: str | None
    file_sha256: str
    file_name: str
    format: str | None
    template_version: int | None
    received_at: str
    ingested_at: str
    verdict: str
    state: str
    supersedes: int | None
    n_values: int
    source: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "SubmissionRow":
        return cls(**{k: row[k] for k in row.keys()})


@dataclass(frozen=True)
class ProblemRow:
    submission_id: int
    severity: str
    code: str
    sheet: str | None
    cell: str | None
    cluster_code: str | None
    indicator: str | None
    message: str


def submissions_for(conn: sqlite3.Connection, period: str, county_code: str | None = None) -> list[SubmissionRow]:
    """Every submission on record for a period (optionally one county), oldest first."""
    sql = "SELECT * FROM submissions WHERE period = ?"
    args: list[object] = [period]
    if county_code is not None:
        sql += " AND county_code = ?"
        args.append(county_code)
    sql += " ORDER BY received_at, id"
    return [SubmissionRow.from_row(r) for r in conn.execute(sql, args)]


def current_submissions(conn: sqlite3.Connection, period: str) -> dict[str, SubmissionRow]:
    """The accepted version in force (state 'current') of each county for a period."""
    rows = conn.execute(
        "SELECT * FROM submissions WHERE period = ? AND state = 'current' ORDER BY id", (period,)
    )
    return {r["county_code"]: SubmissionRow.from_row(r) for r in rows}


def values_of(conn: sqlite3.Connection, submission_id: int) -> dict[str, dict[str, Value]]:
    """cluster_code -> indicator -> value (float for numbers, str for text) of one submission."""
    out: dict[str, dict[str, Value]] = {}
    for cluster, indicator, value, text in conn.execute(
        "SELECT cluster_code, indicator, value, text FROM submission_values WHERE submission_id = ?",
        (submission_id,),
    ):
        out.setdefault(cluster, {})[indicator] = text if text is not None else value
    return out


def current_values(conn: sqlite3.Connection, period: str) -> dict[str, dict[str, dict[str, Value]]]:
    """county_code -> cluster_code -> indicator -> value, from each county's current version."""
    out: dict[str, dict[str, dict[str, Value]]] = {}
    for county, cluster, indicator, value, text in conn.execute(
        """
        SELECT s.county_code, v.cluster_code, v.indicator, v.value, v.text
        FROM submissions s JOIN submission_values v ON v.submission_id = s.id
        WHERE s.period = ? AND s.state = 'current'
        """,
        (period,),
    ):
        out.setdefault(county, {}).setdefault(cluster, {})[indicator] = text if text is not None else value
    return out


def problems_of(conn: sqlite3.Connection, submission_id: int) -> list[ProblemRow]:
    return [
        ProblemRow(**{k: r[k] for k in ProblemRow.__dataclass_fields__})
        for r in conn.execute("SELECT * FROM problems WHERE submission_id = ? ORDER BY id", (submission_id,))
    ]


def last_return(conn: sqlite3.Connection, county_code: str, period: str) -> str | None:
    """When staff last sent this county's submission back (退回), if ever (ISO time)."""
    row = conn.execute(
        "SELECT MAX(at) FROM audit WHERE action = 'reject' AND county_code = ? AND period = ?",
        (county_code, period),
    ).fetchone()
    return row[0] if row else None
