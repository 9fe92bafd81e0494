"""Submissions: archived files, versions, values, problems and the audit trail."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from ..records import ProblemRow, ReturnRow, SubmissionRow, Value

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

# Migration 4: which inbox file each version was read from (a killed collect replays as unchanged).
INBOX_SCHEMA = """
ALTER TABLE submissions ADD COLUMN origin TEXT;   -- path|device|inode|size|mtime_ns|ctime_ns
CREATE INDEX submissions_origin ON submissions (origin) WHERE origin IS NOT NULL;
"""


# ----------------------------------------------------------------------------- reads
# The functions below are the contract other areas (assess, bulletin, jobs) read through.


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


def current_value_rows(conn: sqlite3.Connection, period: str) -> list[dict[str, Any]]:
    """Every value in force for a period, one dict per value with its submission (exports)."""
    import sqlite_utils

    return list(sqlite_utils.Database(conn).query(
        """
        SELECT s.county_code, v.cluster_code, v.indicator, v.value, v.text,
               s.id AS submission_id, s.file_sha256
        FROM submissions s JOIN submission_values v ON v.submission_id = s.id
        WHERE s.period = :period AND s.state = 'current'
        ORDER BY s.county_code, v.cluster_code, v.indicator
        """,
        {"period": period},
    ))


def problems_of(conn: sqlite3.Connection, submission_id: int) -> list[ProblemRow]:
    return [
        ProblemRow(**{k: r[k] for k in ProblemRow.__dataclass_fields__})
        for r in conn.execute("SELECT * FROM problems WHERE submission_id = ? ORDER BY id", (submission_id,))
    ]


def returns_of(conn: sqlite3.Connection, county_code: str, period: str) -> list[ReturnRow]:
    """Every 退回 of this county's submissions for the period, oldest first, with its reason and file."""
    out = []
    for sid, at, actor, detail, file_name, received_at in conn.execute(
        "SELECT a.submission_id, a.at, a.actor, a.detail, s.file_name, s.received_at FROM audit a "
        "LEFT JOIN submissions s ON s.id = a.submission_id "
        "WHERE a.action = 'reject' AND a.county_code = ? AND a.period = ? ORDER BY a.at, a.id",
        (county_code, period),
    ):
        reason = (json.loads(detail) if detail else {}).get("reason", "")
        out.append(ReturnRow(int(sid), at, actor, str(reason), file_name or "", received_at or ""))
    return out


# ----------------------------------------------------------------------------- writes (intake)


class BatchLost(Exception):
    """SQLite rolled back the whole batch transaction (disk full, I/O error, a failed COMMIT):
    every file recorded in it since its BEGIN is gone and must be ingested again."""


def prepare_for_batches(conn: sqlite3.Connection) -> None:
    """Tune a connection that writes many files per transaction: statement journals in memory
    (otherwise each insert of a batch writes a temporary file)."""
    conn.execute("PRAGMA temp_store = MEMORY")


def begin_batch(conn: sqlite3.Connection) -> bool:
    """Open a batch transaction (the write lock is held from here) unless one is open.
    True if it opened one."""
    if conn.in_transaction:
        return False
    conn.execute("BEGIN IMMEDIATE")
    return True


def commit_batch(conn: sqlite3.Connection) -> None:
    """Commit the open batch; BatchLost if the COMMIT fails (the batch is rolled back)."""
    if not conn.in_transaction:
        return
    try:
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        rollback_batch(conn)
        raise BatchLost(f"the batch could not be committed: {exc}") from exc


def rollback_batch(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            if conn.in_transaction:
                raise


def archive_path_of(conn: sqlite3.Connection, sha256: str) -> str | None:
    """Where a file's archive copy is recorded (relative to the workspace home), if it is known."""
    row = conn.execute("SELECT archive_path FROM files WHERE sha256 = ?", (sha256,)).fetchone()
    return row[0] if row else None


def set_archive_path(conn: sqlite3.Connection, sha256: str, archive_path: str) -> None:
    """A known file's archive copy was written again, at `archive_path`."""
    with _tx(conn):
        conn.execute("UPDATE files SET archive_path = ? WHERE sha256 = ?", (archive_path, sha256))


def _tx(conn: sqlite3.Connection) -> Any:
    """One file's writes, all or nothing: its own transaction, or a savepoint inside the batch
    transaction an ingest holds (see intake/ingest.py), rolled back alone if it fails."""
    if conn.in_transaction:
        return _savepoint(conn)
    # Imported late: the package imports this module for its schema.
    from . import transaction

    return transaction(conn)


class _savepoint:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("SAVEPOINT one_file")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:  # type: ignore[no-untyped-def]
        if exc_type is not None:
            if not self.conn.in_transaction:
                # SQLite rolled the whole batch back (disk full, I/O error): the files recorded
                # in it before this one are gone too. Their callers must know.
                if isinstance(exc, BatchLost):
                    return
                raise BatchLost(f"SQLite rolled back the batch: {exc}") from exc
            self.conn.execute("ROLLBACK TO one_file")
        self.conn.execute("RELEASE one_file")

ValueRow = tuple[str, str, "float | None", "str | None", str]   # cluster, indicator, value, text, cell
ProblemIn = tuple[str, str, "str | None", "str | None", "str | None", "str | None", str]
# severity, code, sheet, cell, cluster_code, indicator, message


def current_with_sha(conn: sqlite3.Connection, sha256: str) -> list[SubmissionRow]:
    """Versions in force that came from this exact file (to recognise the same file sent again)."""
    return [
        SubmissionRow.from_row(r)
        for r in conn.execute(
            "SELECT * FROM submissions WHERE file_sha256 = ? AND state = 'current' ORDER BY id", (sha256,)
        )
    ]


def version_from_origin(conn: sqlite3.Connection, origin: str, sha256: str) -> SubmissionRow | None:
    """The version already recorded from this very inbox file (same path, inode, size, time and
    bytes): a collect that died before the file left the inbox sees it again."""
    row = conn.execute("SELECT * FROM submissions WHERE origin = ? AND file_sha256 = ? ORDER BY id DESC LIMIT 1",
                       (origin, sha256)).fetchone()
    return SubmissionRow.from_row(row) if row is not None else None


def current_numbers(conn: sqlite3.Connection, county_code: str, period: str) -> dict[str, dict[str, float]]:
    """cluster -> indicator -> number of one county's version in force (history for warnings)."""
    out: dict[str, dict[str, float]] = {}
    for cluster, indicator, value in conn.execute(
        """
        SELECT v.cluster_code, v.indicator, v.value
        FROM submissions s JOIN submission_values v ON v.submission_id = s.id
        WHERE s.county_code = ? AND s.period = ? AND +s.state = 'current' AND v.value IS NOT NULL
        """,
        (county_code, period),
    ):
        out.setdefault(cluster, {})[indicator] = value
    return out


_ROWS_PER_INSERT = 200   # rows per multi-row INSERT (well under SQLite's limit of bound parameters)


def _insert_rows(conn: sqlite3.Connection, head: str, one: str, sid: int,
                 rows: Sequence[Sequence[Any]]) -> None:
    """Insert rows (each prefixed with the submission id) with a few multi-row INSERTs, in order."""
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        part = rows[start : start + _ROWS_PER_INSERT]
        args: list[Any] = []
        for r in part:
            args.append(sid)
            args.extend(r)
        conn.execute(head + ", ".join([one] * len(part)), args)


def _audit(
    conn: sqlite3.Connection, at: str, actor: str, action: str, county_code: str | None,
    period: str | None, submission_id: int | None, detail: dict[str, Any],
) -> None:
    conn.execute(
        "INSERT INTO audit (at, actor, action, county_code, period, submission_id, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (at, actor, action, county_code, period, submission_id, json.dumps(detail, ensure_ascii=False)),
    )


def record_submission(
    conn: sqlite3.Connection,
    *,
    sha256: str,
    size: int,
    archive_path: str,
    file_name: str,
    county_code: str | None,
    sender_code: str | None,
    period: str | None,
    dataset: str | None,
    format: str | None,
    template_version: int | None,
    received_at: str,
    ingested_at: str,
    verdict: str,
    values: Sequence[ValueRow],
    problems: Iterable[ProblemIn],
    source: str,
    actor: str,
    origin: str | None = None,
) -> tuple[int, int | None]:
    """Store one received file in ONE transaction: file, version, values, problems, audit.

    A rejected file gets state 'rejected' and no values, and changes nothing already stored.
    An accepted one supersedes the county's version in force. Returns (id, superseded id).
    """
    accepted = verdict in ("accepted", "warning")
    with _tx(conn):
        conn.execute(
            "INSERT OR IGNORE INTO files (sha256, size, archive_path, first_name, first_seen_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (sha256, size, archive_path, file_name, ingested_at),
        )
        previous = None
        if accepted and county_code and period:
            # "+state": look the county up by (county_code, period), not by (period, state),
            # which would walk every version in force of the month (quadratic over an ingest).
            row = conn.execute(
                "UPDATE submissions SET state = 'superseded' WHERE county_code = ? AND period = ? "
                "AND +state = 'current' RETURNING id",
                (county_code, period),
            ).fetchall()
            if row:
                previous = max(r[0] for r in row)
        cur = conn.execute(
            """
            INSERT INTO submissions (county_code, sender_code, period, dataset, file_sha256, file_name,
                format, template_version, received_at, ingested_at, verdict, state, supersedes,
                n_values, source, origin)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            (
                county_code, sender_code, period, dataset, sha256, file_name, format, template_version,
                received_at, ingested_at, verdict, "current" if accepted else "rejected", previous,
                len(values) if accepted else 0, source, origin,
            ),
        )
        sid = int(cur.lastrowid or 0)
        if accepted and values:
            _insert_rows(conn, "INSERT INTO submission_values (submission_id, cluster_code, indicator, "
                         "value, text, cell) VALUES ", "(?, ?, ?, ?, ?, ?)", sid, values)
        problems = list(problems)
        if problems:
            _insert_rows(conn, "INSERT INTO problems (submission_id, severity, code, sheet, cell, "
                         "cluster_code, indicator, message) VALUES ", "(?, ?, ?, ?, ?, ?, ?, ?)", sid, problems)
        _audit(conn, ingested_at, actor, "ingest", county_code, period, sid, {
            "file": file_name, "sha256": sha256, "verdict": verdict, "sender": sender_code,
            "received_at": received_at, "supersedes": previous, "values": len(values) if accepted else 0,
        })
    return sid, previous


def record_unchanged(
    conn: sqlite3.Connection, *, row: SubmissionRow, file_name: str, sender_code: str | None,
    at: str, actor: str,
) -> None:
    """The same file again: only an audit line."""
    with _tx(conn):
        _audit(conn, at, actor, "unchanged", row.county_code, row.period, row.id,
               {"file": file_name, "sha256": row.file_sha256, "sender": sender_code})


def return_current(
    conn: sqlite3.Connection, county_code: str, period: str, reason: str, *, actor: str, at: str
) -> SubmissionRow | None:
    """退回: the version in force becomes 'returned', with an audit row. None if nothing is in force."""
    with _tx(conn):
        row = conn.execute(
            "SELECT * FROM submissions WHERE county_code = ? AND period = ? AND state = 'current' "
            "ORDER BY id DESC LIMIT 1",
            (county_code, period),
        ).fetchone()
        if row is None:
            return None
        conn.execute("UPDATE submissions SET state = 'returned' WHERE id = ?", (row["id"],))
        _audit(conn, at, actor, "reject", county_code, period, row["id"], {"reason": reason})
    return SubmissionRow.from_row(row)


def audit_of(conn: sqlite3.Connection, county_code: str, period: str) -> list[dict[str, Any]]:
    """The audit trail of one county and period, oldest first."""
    out = []
    for r in conn.execute(
        "SELECT * FROM audit WHERE county_code = ? AND period = ? ORDER BY at, id", (county_code, period)
    ):
        d = {k: r[k] for k in r.keys()}
        d["detail"] = json.loads(d["detail"]) if d["detail"] else {}
        out.append(d)
    return out


def all_versions(conn: sqlite3.Connection, county_code: str, period: str) -> list[SubmissionRow]:
    """Every file recorded for a county and period, in the order they were ingested."""
    return [
        SubmissionRow.from_row(r)
        for r in conn.execute(
            "SELECT * FROM submissions WHERE county_code = ? AND period = ? ORDER BY ingested_at, id",
            (county_code, period),
        )
    ]
