"""Ordered schema migrations. Append, never edit one that has shipped."""

from __future__ import annotations

import sqlite3

from . import accounts, editions, mail, results, runs, submissions

# Each entry: (version, description, SQL script). Versions are 1, 2, 3, ... in order.
MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "submissions, values, problems, archive, audit", submissions.SCHEMA),
    (2, "assessment results", results.SCHEMA),
    (3, "job runs and deliveries", runs.SCHEMA),
    (4, "which inbox file each version was read from", submissions.INBOX_SCHEMA),
    (5, "each published version of a period's bulletin", editions.SCHEMA),
    (6, "web accounts, sessions, failed logins and the web's audit log", accounts.SCHEMA),
    (7, "each message read from the 报送 mailbox, for intake by mail", mail.SCHEMA),
]


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to the newest version; return that version."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    for version, _description, script in MIGRATIONS:
        if version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the lock.
            if conn.execute("PRAGMA user_version").fetchone()[0] >= version:
                conn.execute("ROLLBACK")
                continue
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {int(version)}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        current = version
    return current


def _statements(script: str) -> list[str]:
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out
