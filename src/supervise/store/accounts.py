"""Web accounts: users, sessions, failed-login counters and the web's audit log.

Passwords arrive here already hashed (argon2, in `web.users`); sessions are kept by the SHA-256
of the token the browser holds, so a copy of the database opens no session. Times are stored
with `periods.stamp`, so comparing the strings compares the instants.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..periods import stamp

SCHEMA = """
CREATE TABLE web_users (
    id                  INTEGER PRIMARY KEY,
    name                TEXT NOT NULL UNIQUE COLLATE NOCASE,
    role                TEXT NOT NULL CHECK (role IN ('county', 'staff', 'admin')),
    county_code         TEXT,                 -- the one county a county user acts for
    email               TEXT,
    password_hash       TEXT NOT NULL,        -- argon2id, salted
    disabled            INTEGER NOT NULL DEFAULT 0,
    created_at          TEXT NOT NULL,
    password_changed_at TEXT NOT NULL,
    last_login_at       TEXT,
    CHECK ((role = 'county') = (county_code IS NOT NULL))
);

CREATE TABLE web_sessions (
    id          TEXT PRIMARY KEY,             -- SHA-256 of the token in the signed cookie
    user_id     INTEGER NOT NULL REFERENCES web_users(id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    address     TEXT
) WITHOUT ROWID;
CREATE INDEX web_sessions_user ON web_sessions (user_id);

CREATE TABLE web_login_failures (
    key          TEXT PRIMARY KEY,            -- user:<name> | address:<ip>
    failures     INTEGER NOT NULL,
    first_at     TEXT NOT NULL,               -- start of the counting window
    locked_until TEXT
) WITHOUT ROWID;

CREATE TABLE web_audit (
    id            INTEGER PRIMARY KEY,
    at            TEXT NOT NULL,
    username      TEXT,
    address       TEXT,
    action        TEXT NOT NULL,              -- login | login_failed | login_locked | logout | upload | reject | run
    outcome       TEXT,                       -- ok | refused | the verdict | the error
    county_code   TEXT,
    period        TEXT,
    submission_id INTEGER,
    detail        TEXT                        -- JSON
);
CREATE INDEX web_audit_at ON web_audit (at);
"""


@dataclass(frozen=True)
class UserRow:
    id: int
    name: str
    role: str
    county_code: str | None
    email: str | None
    password_hash: str
    disabled: bool
    created_at: str
    password_changed_at: str
    last_login_at: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> UserRow:
        d = {k: row[k] for k in row.keys()}
        d["disabled"] = bool(d["disabled"])
        return cls(**d)

    def to_json(self) -> dict[str, Any]:
        """Everything but the hash."""
        return {"name": self.name, "role": self.role, "county_code": self.county_code, "email": self.email,
                "disabled": self.disabled, "created_at": self.created_at,
                "password_changed_at": self.password_changed_at, "last_login_at": self.last_login_at}


class UserExists(Exception):
    """A user of that name (in any case) is already on record."""


def _tx(conn: sqlite3.Connection) -> Any:
    from . import transaction

    return transaction(conn)


# ------------------------------------------------------------------ users


def add_user(conn: sqlite3.Connection, *, name: str, role: str, county_code: str | None, email: str | None,
             password_hash: str, now: datetime) -> int:
    try:
        with _tx(conn):
            cur = conn.execute(
                "INSERT INTO web_users (name, role, county_code, email, password_hash, created_at, "
                "password_changed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (name, role, county_code, email, password_hash, stamp(now), stamp(now)),
            )
    except sqlite3.IntegrityError as exc:
        if "UNIQUE" in str(exc):
            raise UserExists(name) from exc
        raise
    return int(cur.lastrowid or 0)


def get_user(conn: sqlite3.Connection, name: str) -> UserRow | None:
    row = conn.execute("SELECT * FROM web_users WHERE name = ?", (name,)).fetchone()
    return UserRow.from_row(row) if row is not None else None


def list_users(conn: sqlite3.Connection) -> list[UserRow]:
    return [UserRow.from_row(r) for r in conn.execute("SELECT * FROM web_users ORDER BY role, name")]


def set_password_hash(conn: sqlite3.Connection, name: str, password_hash: str, now: datetime) -> bool:
    """A new password; every open session of the user ends. False if there is no such user."""
    with _tx(conn):
        row = conn.execute("UPDATE web_users SET password_hash = ?, password_changed_at = ? WHERE name = ? "
                           "RETURNING id", (password_hash, stamp(now), name)).fetchone()
        if row is None:
            return False
        conn.execute("DELETE FROM web_sessions WHERE user_id = ?", (row[0],))
    return True


def rehash(conn: sqlite3.Connection, user_id: int, password_hash: str) -> None:
    """The same password under newer hash parameters (no session ends)."""
    with _tx(conn):
        conn.execute("UPDATE web_users SET password_hash = ? WHERE id = ?", (password_hash, user_id))


def set_disabled(conn: sqlite3.Connection, name: str, disabled: bool) -> bool:
    """Disable (every open session ends) or enable a user; enabling clears its lock-out."""
    with _tx(conn):
        row = conn.execute("UPDATE web_users SET disabled = ? WHERE name = ? RETURNING id, name",
                           (int(disabled), name)).fetchone()
        if row is None:
            return False
        if disabled:
            conn.execute("DELETE FROM web_sessions WHERE user_id = ?", (row[0],))
        else:
            conn.execute("DELETE FROM web_login_failures WHERE key = ?", (user_key(row[1]),))
    return True


# ------------------------------------------------------------------ sessions


def create_session(conn: sqlite3.Connection, *, session_id: str, user_id: int, now: datetime,
                   expires: datetime, address: str | None) -> None:
    """A new session after a login, with the user's last login noted; expired sessions are dropped."""
    with _tx(conn):
        conn.execute("DELETE FROM web_sessions WHERE expires_at <= ?", (stamp(now),))
        conn.execute("INSERT INTO web_sessions (id, user_id, created_at, expires_at, address) VALUES (?, ?, ?, ?, ?)",
                     (session_id, user_id, stamp(now), stamp(expires), address))
        conn.execute("UPDATE web_users SET last_login_at = ? WHERE id = ?", (stamp(now), user_id))


def session_user(conn: sqlite3.Connection, session_id: str, now: datetime) -> UserRow | None:
    """The enabled user of a session that has not expired, or None."""
    row = conn.execute(
        "SELECT u.* FROM web_sessions s JOIN web_users u ON u.id = s.user_id "
        "WHERE s.id = ? AND s.expires_at > ? AND u.disabled = 0",
        (session_id, stamp(now)),
    ).fetchone()
    return UserRow.from_row(row) if row is not None else None


def end_session(conn: sqlite3.Connection, session_id: str) -> None:
    with _tx(conn):
        conn.execute("DELETE FROM web_sessions WHERE id = ?", (session_id,))


# ------------------------------------------------------------------ failed logins


def user_key(name: str) -> str:
    return f"user:{name.lower()}"


def address_key(address: str) -> str:
    return f"address:{address}"


def locked_until(conn: sqlite3.Connection, keys: Iterable[str], now: datetime) -> dict[str, str]:
    """Of `keys`, those locked out at `now`, with the end of their lock-out."""
    keys = list(keys)
    if not keys:
        return {}
    rows = conn.execute(
        f"SELECT key, locked_until FROM web_login_failures WHERE key IN ({','.join('?' * len(keys))}) "
        "AND locked_until > ?", (*keys, stamp(now)),
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def note_failure(conn: sqlite3.Connection, keys: dict[str, int], *, now: datetime, window_start: datetime,
                 lock_until: datetime) -> dict[str, str]:
    """Count one failed login against each key (key -> its limit); counts older than
    `window_start` start again. Returns the keys that reached their limit now, locked until when."""
    locked: dict[str, str] = {}
    with _tx(conn):
        for key, limit in keys.items():
            row = conn.execute("SELECT failures, first_at FROM web_login_failures WHERE key = ?", (key,)).fetchone()
            if row is None or row[1] < stamp(window_start):
                failures, first = 1, stamp(now)
            else:
                failures, first = int(row[0]) + 1, row[1]
            until = stamp(lock_until) if failures >= limit else None
            if until:
                locked[key] = until
                failures, first = 0, stamp(now)   # after the lock-out, a fresh count
            conn.execute(
                "INSERT INTO web_login_failures (key, failures, first_at, locked_until) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, first_at = excluded.first_at, "
                "locked_until = COALESCE(excluded.locked_until, web_login_failures.locked_until)",
                (key, failures, first, until),
            )
    return locked


def clear_failures(conn: sqlite3.Connection, key: str) -> None:
    with _tx(conn):
        conn.execute("DELETE FROM web_login_failures WHERE key = ?", (key,))


# ------------------------------------------------------------------ audit


def log_event(conn: sqlite3.Connection, *, at: datetime, username: str | None, address: str | None, action: str,
              outcome: str | None = None, county_code: str | None = None, period: str | None = None,
              submission_id: int | None = None, detail: dict[str, Any] | None = None) -> None:
    with _tx(conn):
        conn.execute(
            "INSERT INTO web_audit (at, username, address, action, outcome, county_code, period, submission_id, "
            "detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (stamp(at), username, address, action, outcome, county_code, period, submission_id,
             json.dumps(detail or {}, ensure_ascii=False, default=str)),
        )


def audit_log(conn: sqlite3.Connection, *, limit: int = 200, action: str | None = None) -> list[dict[str, Any]]:
    """The newest entries first."""
    sql, args = "SELECT * FROM web_audit", []
    if action:
        sql += " WHERE action = ?"
        args.append(action)
    out = []
    for r in conn.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit)):
        d = {k: r[k] for k in r.keys()}
        d["detail"] = json.loads(d["detail"]) if d["detail"] else {}
        out.append(d)
    return out
