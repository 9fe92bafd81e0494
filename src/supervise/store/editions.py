"""Bulletin editions: each published version of a period's bulletin (第1版, 第2版 …).

A bulletin is published when a run renders it for delivery (mailed, or waiting in the outbox).
The next version of a period is recorded when what its bulletin says differs from the latest
one (its `draft_hash`, taken before the edition marks are printed); the `summary` (each
rulebook's scores, ranks and ledger) is what a correction is compared with.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..periods import stamp

SCHEMA = """
CREATE TABLE bulletin_editions (
    id          INTEGER PRIMARY KEY,
    period      TEXT NOT NULL,            -- 2025-03 | 2025Q1 | 2025
    version     INTEGER NOT NULL,         -- 1, 2, ... within the period
    draft_hash  TEXT NOT NULL,            -- what the bulletin says, without its edition marks
    summary     TEXT NOT NULL,            -- JSON: each rulebook's scores, ranks and ledger
    created_at  TEXT NOT NULL,
    job_run_id  INTEGER REFERENCES job_runs(id),
    UNIQUE (period, version)
);
"""


@dataclass(frozen=True)
class EditionRow:
    period: str
    version: int
    draft_hash: str
    summary: dict[str, Any]
    created_at: str
    job_run_id: int | None


def _row(row: sqlite3.Row) -> EditionRow:
    return EditionRow(
        period=row["period"],
        version=int(row["version"]),
        draft_hash=row["draft_hash"],
        summary=json.loads(row["summary"]),
        created_at=row["created_at"],
        job_run_id=row["job_run_id"],
    )


def latest_edition(conn: sqlite3.Connection, period: str) -> EditionRow | None:
    """The newest published version of the period's bulletin, or None before the first."""
    row = conn.execute(
        "SELECT * FROM bulletin_editions WHERE period = ? ORDER BY version DESC LIMIT 1", (period,)
    ).fetchone()
    return _row(row) if row else None


def get_edition(conn: sqlite3.Connection, period: str, version: int) -> EditionRow | None:
    row = conn.execute(
        "SELECT * FROM bulletin_editions WHERE period = ? AND version = ?", (period, version)
    ).fetchone()
    return _row(row) if row else None


def add_edition(
    conn: sqlite3.Connection,
    *,
    period: str,
    version: int,
    draft_hash: str,
    summary: dict[str, Any],
    now: datetime,
    job_run_id: int | None = None,
) -> None:
    """Record a published version (the UNIQUE key refuses a version recorded twice)."""
    conn.execute(
        "INSERT INTO bulletin_editions (period, version, draft_hash, summary, created_at, job_run_id)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (period, version, draft_hash, json.dumps(summary, ensure_ascii=False, sort_keys=True), stamp(now),
         job_run_id),
    )
