"""Job runs and deliveries: the run log, the outbox and each recipient's delivery.

Times are stored with `periods.stamp` (`2025-04-06T08:00:00+08:00`), so comparing the
strings compares the instants.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..periods import stamp  # callers read stored times' format from here too

SCHEMA = """
CREATE TABLE job_runs (
    id          INTEGER PRIMARY KEY,
    job         TEXT NOT NULL,            -- collect | remind | run_month | run_quarter | run_year | catch_up
    period      TEXT,
    origin      TEXT NOT NULL DEFAULT 'cli',  -- cli | scheduler | catch_up
    started_at  TEXT NOT NULL,
    ended_at    TEXT,
    state       TEXT NOT NULL CHECK (state IN ('running', 'success', 'error', 'skipped')),
    error       TEXT,
    pid         INTEGER,
    detail      TEXT                      -- JSON: what the run did (counts, outputs, content hash)
);
CREATE INDEX job_runs_job ON job_runs (job, period, id);

CREATE TABLE deliveries (
    id           INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL,           -- bulletin | reminder | alert
    period       TEXT,
    recipient    TEXT NOT NULL,
    subject      TEXT NOT NULL,
    content_hash TEXT NOT NULL,           -- what was (to be) sent; same hash = same mail
    message_path TEXT,                    -- outbox/mail/<id>.eml, relative to home, while unsent
    state        TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed', 'superseded')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    created_at   TEXT NOT NULL,
    sent_at      TEXT,
    job_run_id   INTEGER REFERENCES job_runs(id)
);
CREATE INDEX deliveries_key ON deliveries (kind, period, recipient, content_hash);
CREATE INDEX deliveries_state ON deliveries (state);
"""

RUN_STATES = ("running", "success", "error", "skipped")


# ------------------------------------------------------------------ job runs


@dataclass(frozen=True)
class JobRun:
    id: int
    job: str
    period: str | None
    origin: str
    started_at: str
    ended_at: str | None
    state: str
    error: str | None
    pid: int | None
    detail: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "job": self.job,
            "period": self.period,
            "origin": self.origin,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "state": self.state,
            "error": self.error,
            "pid": self.pid,
        }


def _run(row: sqlite3.Row) -> JobRun:
    return JobRun(
        id=row["id"],
        job=row["job"],
        period=row["period"],
        origin=row["origin"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        state=row["state"],
        error=row["error"],
        pid=row["pid"],
        detail=json.loads(row["detail"]) if row["detail"] else {},
    )


def start_run(
    conn: sqlite3.Connection,
    job: str,
    period: str | None,
    now: datetime,
    *,
    origin: str = "cli",
    pid: int | None = None,
    state: str = "running",
    error: str | None = None,
) -> int:
    """Record that a job started (or, with state='skipped', that it declined to start)."""
    ended = stamp(now) if state != "running" else None
    cur = conn.execute(
        "INSERT INTO job_runs (job, period, origin, started_at, ended_at, state, error, pid)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (job, period, origin, stamp(now), ended, state, error, os.getpid() if pid is None else pid),
    )
    return int(cur.lastrowid or 0)


def finish_run(
    conn: sqlite3.Connection,
    run_id: int,
    state: str,
    now: datetime,
    *,
    error: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    if state not in RUN_STATES or state == "running":
        raise ValueError(f"cannot finish a run as {state!r}")
    conn.execute(
        "UPDATE job_runs SET state = ?, ended_at = ?, error = ?, detail = ? WHERE id = ?",
        (
            state,
            stamp(now),
            error,
            json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str) if detail else None,
            run_id,
        ),
    )


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (signal 0 checks without sending anything)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_stale(
    conn: sqlite3.Connection,
    now: datetime,
    *,
    job: str | None = None,
    alive: Callable[[int], bool] = pid_alive,
) -> list[int]:
    """Mark `running` records left by a killed process as errors.

    With `job` given the caller holds that job's lock, so every `running` record of the job is
    stale whatever its pid says (a pid may have been reused). Without it, only records whose
    process is gone are touched.
    """
    sql = "SELECT id, pid FROM job_runs WHERE state = 'running'"
    args: tuple[Any, ...] = ()
    if job is not None:
        sql += " AND job = ?"
        args = (job,)
    stale = []
    for row in conn.execute(sql, args).fetchall():
        pid = row["pid"] or 0
        if job is not None or not alive(pid):
            stale.append(row["id"])
            conn.execute(
                "UPDATE job_runs SET state = 'error', ended_at = ?, error = ?"
                " WHERE id = ? AND state = 'running'",
                (stamp(now), f"interrupted: process {pid} ended without finishing the run", row["id"]),
            )
    return stale


def recent_runs(conn: sqlite3.Connection, *, limit: int = 20, job: str | None = None) -> list[JobRun]:
    if job:
        rows = conn.execute(
            "SELECT * FROM job_runs WHERE job = ? ORDER BY id DESC LIMIT ?", (job, limit)
        ).fetchall()
    else:
        rows = conn.execute("SELECT * FROM job_runs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    return [_run(r) for r in rows]


def get_run(conn: sqlite3.Connection, run_id: int) -> JobRun | None:
    row = conn.execute("SELECT * FROM job_runs WHERE id = ?", (run_id,)).fetchone()
    return _run(row) if row else None


def last_run(
    conn: sqlite3.Connection,
    job: str,
    *,
    period: str | None = None,
    states: Iterable[str] = RUN_STATES,
    since: datetime | None = None,
) -> JobRun | None:
    """The newest run of `job` (for `period`, in one of `states`, started at or after `since`)."""
    states = tuple(states)
    sql = f"SELECT * FROM job_runs WHERE job = ? AND state IN ({','.join('?' * len(states))})"
    args: list[Any] = [job, *states]
    if period is not None:
        sql += " AND period = ?"
        args.append(period)
    if since is not None:
        sql += " AND started_at >= ?"
        args.append(stamp(since))
    row = conn.execute(sql + " ORDER BY id DESC LIMIT 1", args).fetchone()
    return _run(row) if row else None


def first_run_at(conn: sqlite3.Connection) -> str | None:
    """When this workspace first ran any job: before that, nothing can have been missed."""
    row = conn.execute("SELECT MIN(started_at) FROM job_runs").fetchone()
    return row[0] if row else None


# ------------------------------------------------------------------ deliveries


@dataclass(frozen=True)
class Delivery:
    id: int
    kind: str
    period: str | None
    recipient: str
    subject: str
    content_hash: str
    message_path: str | None
    state: str
    attempts: int
    last_error: str | None
    created_at: str
    sent_at: str | None
    job_run_id: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "period": self.period,
            "recipient": self.recipient,
            "subject": self.subject,
            "state": self.state,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "created_at": self.created_at,
            "sent_at": self.sent_at,
            "message_path": self.message_path,
        }


def _delivery(row: sqlite3.Row) -> Delivery:
    return Delivery(**{k: row[k] for k in row.keys()})  # noqa: SIM118 - a Row iterates values


def add_delivery(
    conn: sqlite3.Connection,
    *,
    kind: str,
    period: str | None,
    recipient: str,
    subject: str,
    content_hash: str,
    now: datetime,
    job_run_id: int | None = None,
) -> int:
    cur = conn.execute(
        "INSERT INTO deliveries (kind, period, recipient, subject, content_hash, state, created_at,"
        " job_run_id) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
        (kind, period, recipient, subject, content_hash, stamp(now), job_run_id),
    )
    return int(cur.lastrowid or 0)


def set_message_path(conn: sqlite3.Connection, delivery_id: int, path: str | None) -> None:
    conn.execute("UPDATE deliveries SET message_path = ? WHERE id = ?", (path, delivery_id))


def mark_sent(conn: sqlite3.Connection, delivery_id: int, now: datetime) -> None:
    conn.execute(
        "UPDATE deliveries SET state = 'sent', sent_at = ?, attempts = attempts + 1,"
        " last_error = NULL WHERE id = ?",
        (stamp(now), delivery_id),
    )


def mark_failed(conn: sqlite3.Connection, delivery_id: int, error: str, attempts: int) -> None:
    conn.execute(
        "UPDATE deliveries SET state = 'failed', last_error = ?, attempts = attempts + ? WHERE id = ?",
        (error, attempts, delivery_id),
    )


def get_delivery(conn: sqlite3.Connection, delivery_id: int) -> Delivery | None:
    row = conn.execute("SELECT * FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()
    return _delivery(row) if row else None


def find_deliveries(
    conn: sqlite3.Connection,
    *,
    kind: str,
    period: str | None,
    recipient: str,
    content_hash: str | None = None,
    states: Iterable[str] = ("pending", "sent", "failed"),
) -> list[Delivery]:
    states = tuple(states)
    sql = (
        "SELECT * FROM deliveries WHERE kind = ? AND period IS ? AND recipient = ?"
        f" AND state IN ({','.join('?' * len(states))})"
    )
    args: list[Any] = [kind, period, recipient, *states]
    if content_hash is not None:
        sql += " AND content_hash = ?"
        args.append(content_hash)
    return [_delivery(r) for r in conn.execute(sql + " ORDER BY id", args).fetchall()]


def supersede_unsent(
    conn: sqlite3.Connection, *, kind: str, period: str | None, recipient: str, keep_hash: str | None = None
) -> list[Delivery]:
    """Unsent mail for the same recipient and period, replaced and never to be sent.

    With `keep_hash`, mail of that content is kept (only older content goes); without it,
    every unsent mail goes (a new copy is about to be queued).
    """
    old = [
        d
        for d in find_deliveries(
            conn, kind=kind, period=period, recipient=recipient, states=("pending", "failed")
        )
        if keep_hash is None or d.content_hash != keep_hash
    ]
    for d in old:
        conn.execute("UPDATE deliveries SET state = 'superseded' WHERE id = ?", (d.id,))
    return old


def unsent_deliveries(conn: sqlite3.Connection, *, kinds: Iterable[str] | None = None) -> list[Delivery]:
    """Mail waiting in the outbox (pending or failed), oldest first: of `kinds`, else every kind."""
    sql = "SELECT * FROM deliveries WHERE state IN ('pending', 'failed')"
    args: tuple[str, ...] = ()
    if kinds is not None:
        args = tuple(kinds)
        sql += f" AND kind IN ({','.join('?' * len(args))})"
    rows = conn.execute(sql + " ORDER BY id", args).fetchall()
    return [_delivery(r) for r in rows]


def recent_deliveries(conn: sqlite3.Connection, *, limit: int = 50) -> list[Delivery]:
    rows = conn.execute("SELECT * FROM deliveries ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    return [_delivery(r) for r in rows]


def queue_delivery(
    conn: sqlite3.Connection, *, kind: str, period: str | None, recipient: str, subject: str,
    content_hash: str, now: datetime, job_run_id: int | None, write_message: Callable[[int], str],
) -> int:
    """Queue one mail in one transaction: older or unsent copies to the same recipient are
    superseded, the delivery is recorded, and `write_message(delivery_id)` writes its file and
    returns the path (relative to the workspace) stored with it. A failure leaves nothing queued."""
    from . import transaction  # not at the top: the package imports this module (schema)

    with transaction(conn):
        supersede_unsent(conn, kind=kind, period=period, recipient=recipient)
        delivery_id = add_delivery(
            conn, kind=kind, period=period, recipient=recipient, subject=subject,
            content_hash=content_hash, now=now, job_run_id=job_run_id,
        )
        set_message_path(conn, delivery_id, write_message(delivery_id))
    return delivery_id


def mark_delivered(conn: sqlite3.Connection, delivery_id: int, now: datetime) -> None:
    """The mail server accepted it: sent, and its outbox file no longer needed (one transaction)."""
    from . import transaction

    with transaction(conn):
        mark_sent(conn, delivery_id, now)
        set_message_path(conn, delivery_id, None)

