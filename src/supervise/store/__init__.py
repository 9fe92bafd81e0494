"""The one place that speaks SQL: connection, schema migrations, reads and writes.

The schema is versioned with SQLite's `user_version`; each migration runs in its own
transaction, so a database is always at one whole version. Each area owns one module:
`submissions` (intake), `results` (assessment), `runs` (jobs and delivery).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .schema import MIGRATIONS, migrate

__all__ = ["connect", "migrate", "MIGRATIONS", "transaction"]


def connect(path: Path | str) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the workspace database."""
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 30000")
    if str(path) != ":memory:":
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    migrate(conn)
    return conn


class transaction:
    """`with transaction(conn):` BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:  # type: ignore[no-untyped-def]
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")
