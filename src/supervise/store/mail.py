"""Mail intake: one row per message read from the 报送 mailbox, the record that makes it exactly once.

A message is known by where it was last seen, (mailbox, uidvalidity, uid), and by its
fingerprint (what it is, whatever UID the server gives it: see intake/mailbox.py). Its row
moves through `received` (archived under mail/, not yet decided) to `ingested` or `set_aside`
(decided: the verdicts, or why it was not read), and `moved_at` says when it left the folder.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..records import SubmissionRow

SCHEMA = """
CREATE TABLE mail_messages (
    id            INTEGER PRIMARY KEY,
    mailbox       TEXT NOT NULL,            -- username@host/folder
    uidvalidity   INTEGER NOT NULL,         -- where the message was last seen
    uid           INTEGER NOT NULL,
    fingerprint   TEXT NOT NULL UNIQUE,     -- the message itself, whatever its UID
    message_id    TEXT,
    sender        TEXT,                     -- the From address
    county_code   TEXT,                     -- the county whose email it is (NULL: none)
    subject       TEXT,
    received_at   TEXT NOT NULL,            -- its receipt time: INTERNALDATE, never after it was first seen
    size          INTEGER NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('received', 'ingested', 'set_aside')),
    reason        TEXT,                     -- why it was set aside (a code)
    folder        TEXT,                     -- mail/<uidvalidity>-<uid>, relative to home
    detail        TEXT,                     -- JSON: each file's verdict and problems, attachments not read
    first_seen_at TEXT NOT NULL,
    decided_at    TEXT,
    reply_id      INTEGER REFERENCES deliveries(id),
    moved_to      TEXT,
    moved_at      TEXT,
    reopened      INTEGER NOT NULL DEFAULT 0,   -- times a message set aside was put back in the folder
    UNIQUE (mailbox, uidvalidity, uid)
);
CREATE INDEX mail_messages_message_id ON mail_messages (message_id);
CREATE INDEX mail_messages_unmoved ON mail_messages (mailbox, uidvalidity) WHERE moved_at IS NULL;
"""

STATES = ("received", "ingested", "set_aside")


@dataclass(frozen=True)
class MailRow:
    id: int
    mailbox: str
    uidvalidity: int
    uid: int
    fingerprint: str
    message_id: str | None
    sender: str | None
    county_code: str | None
    subject: str | None
    received_at: str
    size: int
    state: str
    reason: str | None
    folder: str | None
    detail: dict[str, Any]
    first_seen_at: str
    decided_at: str | None
    reply_id: int | None
    moved_to: str | None
    moved_at: str | None
    reopened: int = 0

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> MailRow:
        d = {k: row[k] for k in row.keys()}
        d["detail"] = json.loads(d["detail"]) if d["detail"] else {}
        return cls(**d)


def _tx(conn: sqlite3.Connection) -> Any:
    from . import transaction  # not at the top: the package imports this module (schema)

    return transaction(conn)


# ------------------------------------------------------------------ reads


def at_location(conn: sqlite3.Connection, mailbox: str, uidvalidity: int) -> dict[int, MailRow]:
    """uid -> row of every message last seen in this mailbox under this UIDVALIDITY."""
    return {
        r["uid"]: MailRow.from_row(r)
        for r in conn.execute("SELECT * FROM mail_messages WHERE mailbox = ? AND uidvalidity = ?",
                              (mailbox, uidvalidity))
    }


def by_fingerprint(conn: sqlite3.Connection, fingerprint: str) -> MailRow | None:
    row = conn.execute("SELECT * FROM mail_messages WHERE fingerprint = ?", (fingerprint,)).fetchone()
    return MailRow.from_row(row) if row is not None else None


def get(conn: sqlite3.Connection, message_id: int) -> MailRow | None:
    row = conn.execute("SELECT * FROM mail_messages WHERE id = ?", (message_id,)).fetchone()
    return MailRow.from_row(row) if row is not None else None


def folder_taken(conn: sqlite3.Connection, folder: str) -> bool:
    """Whether a message's files are kept in this folder already."""
    return conn.execute("SELECT 1 FROM mail_messages WHERE folder = ?", (folder,)).fetchone() is not None


def unmoved(conn: sqlite3.Connection, mailbox: str) -> list[MailRow]:
    """Messages of this mailbox still in its folder as far as we know (not moved out yet)."""
    return [MailRow.from_row(r) for r in conn.execute(
        "SELECT * FROM mail_messages WHERE mailbox = ? AND moved_at IS NULL ORDER BY received_at, id", (mailbox,))]


def recent(conn: sqlite3.Connection, *, limit: int = 50, state: str | None = None) -> list[MailRow]:
    """The latest messages read (or set aside, with `state`), newest first."""
    sql, args = "SELECT * FROM mail_messages", []
    if state is not None:
        sql += " WHERE state = ?"
        args.append(state)
    return [MailRow.from_row(r) for r in conn.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit))]


def mail_submission(conn: sqlite3.Connection, sha256: str, sender_code: str, received_at: str) -> SubmissionRow | None:
    """The version recorded from this attachment of this message, if an ingest already stored it:
    the same bytes from the same county with the same receipt time, read from mail."""
    row = conn.execute(
        "SELECT * FROM submissions WHERE file_sha256 = ? AND sender_code = ? AND received_at = ? "
        "AND source = 'mail' ORDER BY id DESC LIMIT 1",
        (sha256, sender_code, received_at),
    ).fetchone()
    return SubmissionRow.from_row(row) if row is not None else None


# ------------------------------------------------------------------ writes


def add_received(
    conn: sqlite3.Connection, *, mailbox: str, uidvalidity: int, uid: int, fingerprint: str,
    message_id: str | None, sender: str | None, county_code: str | None, subject: str | None,
    received_at: str, size: int, folder: str, at: str,
) -> int:
    """A message seen for the first time, its files archived under `folder`."""
    with _tx(conn):
        cur = conn.execute(
            "INSERT INTO mail_messages (mailbox, uidvalidity, uid, fingerprint, message_id, sender, county_code, "
            "subject, received_at, size, state, folder, first_seen_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'received', ?, ?)",
            (mailbox, uidvalidity, uid, fingerprint, message_id, sender, county_code, subject, received_at, size,
             folder, at),
        )
    return int(cur.lastrowid or 0)


def relocate(conn: sqlite3.Connection, message_id: int, mailbox: str, uidvalidity: int, uid: int) -> None:
    """The same message seen under another UID (a new UIDVALIDITY, or a second copy): still in a folder."""
    with _tx(conn):
        conn.execute(
            "UPDATE mail_messages SET mailbox = ?, uidvalidity = ?, uid = ?, moved_at = NULL, moved_to = NULL "
            "WHERE id = ?",
            (mailbox, uidvalidity, uid, message_id),
        )


def decide(
    conn: sqlite3.Connection, message_id: int, *, state: str, county_code: str | None, detail: dict[str, Any],
    at: str, reason: str | None = None,
) -> None:
    """What became of a message: its files ingested (their verdicts in `detail`), or set aside."""
    if state not in ("ingested", "set_aside"):
        raise ValueError(f"a message is decided as ingested or set_aside, not {state!r}")
    with _tx(conn):
        conn.execute(
            "UPDATE mail_messages SET state = ?, county_code = ?, reason = ?, detail = ?, decided_at = ? "
            "WHERE id = ? AND state = 'received'",
            (state, county_code, reason, json.dumps(detail, ensure_ascii=False, sort_keys=True), at, message_id),
        )


def reopen(conn: sqlite3.Connection, message_id: int) -> None:
    """A message set aside is back in the folder (put there by staff): decided again, from the start."""
    with _tx(conn):
        conn.execute(
            "UPDATE mail_messages SET state = 'received', reason = NULL, detail = NULL, decided_at = NULL, "
            "reply_id = NULL, moved_to = NULL, moved_at = NULL, reopened = reopened + 1 "
            "WHERE id = ? AND state = 'set_aside'",
            (message_id,),
        )


def set_reply(conn: sqlite3.Connection, message_id: int, delivery_id: int) -> None:
    with _tx(conn):
        conn.execute("UPDATE mail_messages SET reply_id = ? WHERE id = ?", (delivery_id, message_id))


def mark_moved(conn: sqlite3.Connection, moves: Iterable[tuple[int, str]], at: str) -> None:
    """These messages left the folder, for the folder named beside each (one transaction)."""
    with _tx(conn):
        conn.executemany("UPDATE mail_messages SET moved_to = ?, moved_at = ? WHERE id = ?",
                         [(to, at, mid) for mid, to in moves])
