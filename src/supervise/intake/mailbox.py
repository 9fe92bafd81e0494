"""Intake by mail: the 报送 mailbox read over IMAP, each county's files ingested exactly once.

`collect_mail` is called by the hourly `collect` when `[imap] host` is set. For each message in
`folder`, oldest first (by the server's arrival time, INTERNALDATE):

1. **Fetch**: the server's list of UIDs with INTERNALDATE and size; a message larger than
   `max_message_bytes` is never downloaded (only its header, to know who sent it).
2. **Record**: the raw message is kept as `mail/<uidvalidity>-<uid>/message.eml` beside its files
   as they came out of it (`1/<name>`, `2/<name>` …, names made safe), and a `received` row is
   written (store/mail.py) with its receipt time: INTERNALDATE, never later than now.
3. **Decide**: the sender's address is looked up in the `email` column of reference/counties.csv.
   Mail from an unknown (or shared) address, without a spreadsheet, with too many attachments,
   too large or unreadable is **set aside**: never ingested. Otherwise each spreadsheet is
   ingested through `intake.ingest_files`, the path of `supervise ingest FILE --county C
   --received-at T`. The row becomes `ingested` (with every verdict and problem) or `set_aside`.
4. **Reply**: a Chinese reply to a registered sender, with each file's verdict and every located
   problem, queued in the outbox (threaded with In-Reply-To); the collect sends it.
5. **Move**: after `os.sync()`, the message goes to `done_folder` (or `aside_folder`), and the row
   records it.

Exactly once, whatever is killed where:

- Until step 5 the message stays in `folder`, so a crash before it is met again by the next
  collect, under the same (uidvalidity, uid), and its row says how far it got.
- A message is also known by its fingerprint (`mailparts.fingerprint`: Message-ID, sender and the
  bytes of each file; without a Message-ID, the bytes of the message), so a mailbox renumbered
  under a new UIDVALIDITY, or a second copy of the same mail, is the message already on record.
- Between the ingest's commit and the `ingested` row (the only step whose writes are not in one
  transaction with our own), a crash is recovered through the file's SHA-256: an attachment whose
  bytes are on record from this county, read from mail, with this receipt time, is not ingested
  again; its stored verdict and problems are used.
- The reply is keyed by the message's fingerprint: queueing it again finds it sent or waiting.
- A move that happened but was not recorded shows as a row whose UID is no longer in the folder.

The crash tests pause the process at `mail_recorded`, `mail_ingested`, `mail_decided`,
`mail_replied` and `mail_moved` ($SUPERVISE_TEST_PAUSE_AT, see jobs/runner.py) and kill it.
"""

from __future__ import annotations

import functools
import hashlib
import imaplib
import logging
import os
import socket
import sqlite3
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DatabaseFault
from ..periods import TZ, chinese_date, parse_period, stamp
from ..store import mail as store
from ..store import submissions as store_submissions
from ..workspace import ADDRESS, ImapSettings, Workspace
from .mailparts import Attachment, MailMessage, ZipLimits, fingerprint, header_sender, parse_message
from .problems import Problem, csv_place_of

if TYPE_CHECKING:
    from ..delivery import Outbox
    from ..records import SubmissionRow

log = logging.getLogger("supervise.intake")

REPLY_KIND = "mail_reply"              # deliveries.kind of a reply to a county's mail
MAIL_DIR = "mail"                      # <home>/mail/<uidvalidity>-<uid>/: each message and its files
MESSAGE_FILE = "message.eml"
HEADER_FILE = "header.eml"             # a message too large to fetch: its header only
CHUNK_MESSAGES = 100                   # messages fetched, decided and moved together
CHUNK_BYTES = 16_000_000               # ... at most this many bytes of them at once
_LIST_CHUNK = 500                      # UIDs per FETCH of the folder's list

# Why a message was set aside: the code kept in the database and JSON, and what the sender is told.
ASIDE_REASONS = {
    "unknown_sender": "发件地址未登记为任何县（市、区）的报送邮箱",
    "shared_sender": "发件地址同时登记为多个县（市、区）的报送邮箱，无法确定报送单位",
    "malformed": "邮件格式无法识别",
    "too_large": "邮件过大",
    "too_many_attachments": "附件过多",
    "no_spreadsheet": "邮件中没有报送表格",
}
VERDICT_TEXT = {"accepted": "已受理", "warning": "已受理（有数据质量提示）", "rejected": "退回（未通过审核）"}
VERDICT_COLOUR = {"accepted": "#1a7f37", "warning": "#9a6700", "rejected": "#c00000"}


def _no_checkpoint(name: str) -> None:
    return None


class MailboxError(Exception):
    """The mailbox could not be read to the end (server, network, login)."""


# ------------------------------------------------------------------ what a collect tells


@dataclass
class MailEntry:
    """One message this collect dealt with: who sent it, as which county, and what became of it."""

    id: int | None
    uidvalidity: int
    uid: int
    sender: str | None
    county_code: str | None
    county_name: str | None
    subject: str
    message_id: str | None
    received_at: str | None
    state: str                         # ingested | set_aside | received (not finished: see error)
    reason: str | None = None          # why it was set aside (code)
    files: list[dict[str, Any]] = field(default_factory=list)     # the ingest's `files` objects
    ignored: list[dict[str, str]] = field(default_factory=list)   # attachments not read, and why
    moved_to: str | None = None
    reply_id: int | None = None
    error: str | None = None           # why it stays in the folder for the next collect
    seen_before: bool = False          # decided by an earlier collect (that was interrupted)

    @property
    def reason_text(self) -> str:
        return ASIDE_REASONS.get(self.reason or "", self.reason or "")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "uidvalidity": self.uidvalidity,
            "uid": self.uid,
            "message_id": self.message_id,
            "sender": self.sender,
            "county": self.county_code,
            "county_code": self.county_code,
            "county_name": self.county_name,
            "subject": self.subject,
            "received_at": self.received_at,
            "state": self.state,
            "reason": self.reason,
            "reason_text": self.reason_text or None,
            "files": self.files,
            "ignored": self.ignored,
            "moved_to": self.moved_to,
            "reply": self.reply_id,
            "error": self.error,
            "seen_before": self.seen_before,
        }


@dataclass
class MailReport:
    enabled: bool = False
    messages: list[MailEntry] = field(default_factory=list)
    error: str | None = None           # the mailbox could not be read to the end
    seconds: dict[str, float] = field(default_factory=dict)   # where the time went: fetch, ingest, reply, move

    def to_json(self) -> list[dict[str, Any]]:
        """`collect --json`'s "mail": each message with its sender, county and the ingest files."""
        return [m.to_json() for m in self.messages]

    @property
    def set_aside(self) -> list[MailEntry]:
        return [m for m in self.messages if m.state == "set_aside"]

    def summary(self) -> dict[str, Any]:
        """What the run record keeps (the whole list can be long)."""
        return {
            "enabled": self.enabled,
            "messages": len(self.messages),
            "ingested": sum(1 for m in self.messages if m.state == "ingested"),
            "files": sum(len(m.files) for m in self.messages),
            "set_aside": [{"sender": m.sender, "subject": m.subject, "reason": m.reason, "uid": m.uid}
                          for m in self.set_aside],
            "unfinished": sum(1 for m in self.messages if m.error),
            "error": self.error,
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }

    def summary_line(self) -> str:
        files = [f for m in self.messages for f in m.files]
        count = {v: sum(1 for f in files if f["verdict"] == v and not f.get("unchanged"))
                 for v in ("accepted", "warning", "rejected")}
        line = (f"{len(self.messages)} 封邮件：收取 {sum(1 for m in self.messages if m.state == 'ingested')}，"
                f"另存未收取 {len(self.set_aside)}；文件 已受理 {count['accepted']}，有提示 {count['warning']}，"
                f"退回 {count['rejected']}，未变化 {sum(1 for f in files if f.get('unchanged'))}")
        unfinished = sum(1 for m in self.messages if m.error)
        if unfinished:
            line += f"；{unfinished} 封未处理完，留待下次收取"
        return line


# ------------------------------------------------------------------ the server


@dataclass(frozen=True)
class _Listed:
    internaldate: datetime
    size: int


class _Server:
    """One IMAP connection to the settings' folder (IMAPClient), every command under the timeout."""

    def __init__(self, s: ImapSettings) -> None:
        from imapclient import IMAPClient
        from imapclient.imapclient import SocketTimeout

        context = ssl.create_default_context()
        self.client = IMAPClient(s.host, port=s.port, ssl=s.ssl, ssl_context=context if s.ssl else None,
                                 timeout=SocketTimeout(connect=s.timeout, read=s.timeout))
        try:
            self.client.normalise_times = False      # INTERNALDATE with its zone, not local and naive
            if s.starttls and not s.ssl:
                self.client.starttls(context)
            if (s.username + s.password).isascii():
                self.client.login(s.username, s.password)
            else:   # LOGIN takes ASCII only; SASL PLAIN carries UTF-8
                self.client.plain_login(s.username, s.password)
            for folder in (s.done_folder, s.aside_folder):
                if not self.client.folder_exists(folder):
                    self.client.create_folder(folder)
            info = self.client.select_folder(s.folder)
            self.uidvalidity = int(info[b"UIDVALIDITY"])
            self.exists = int(info.get(b"EXISTS", 1))
            caps = set(self.client.capabilities())
            self.can_move = b"MOVE" in caps
            self.uidplus = b"UIDPLUS" in caps
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        try:
            self.client.logout()
        except Exception:  # noqa: BLE001 - the connection is over either way
            try:
                self.client.shutdown()
            except Exception:  # noqa: BLE001
                pass

    def listing(self) -> dict[int, _Listed]:
        """Every message in the folder not marked for deletion: UID -> arrival time, size."""
        if self.exists == 0:
            return {}
        uids = sorted(int(u) for u in self.client.search(["NOT", "DELETED"]))
        out: dict[int, _Listed] = {}
        for start in range(0, len(uids), _LIST_CHUNK):
            part = uids[start : start + _LIST_CHUNK]
            for uid, data in self.client.fetch(part, ["INTERNALDATE", "RFC822.SIZE"]).items():
                when = data.get(b"INTERNALDATE")
                if not isinstance(when, datetime):
                    continue
                if when.tzinfo is None:
                    when = when.replace(tzinfo=TZ)
                out[int(uid)] = _Listed(when, int(data.get(b"RFC822.SIZE", 0)))
        return out

    def fetch(self, uids: list[int], what: str) -> dict[int, bytes]:
        """The bodies (BODY.PEEK[]) or headers (BODY.PEEK[HEADER]) of these messages, never marked seen."""
        if not uids:
            return {}
        key = b"BODY[]" if what == "body" else b"BODY[HEADER]"
        item = "BODY.PEEK[]" if what == "body" else "BODY.PEEK[HEADER]"
        return {int(uid): bytes(data[key]) for uid, data in self.client.fetch(uids, [item]).items()
                if isinstance(data.get(key), bytes)}

    def move(self, uids: list[int], folder: str) -> None:
        if not uids:
            return
        if self.can_move:
            self.client.move(uids, folder)
            return
        self.client.copy(uids, folder)
        self.client.delete_messages(uids)
        if self.uidplus:
            self.client.uid_expunge(uids)
        else:
            self.client.expunge()


def _mailbox_errors() -> tuple[type[BaseException], ...]:
    from imapclient.exceptions import IMAPClientError

    return (IMAPClientError, imaplib.IMAP4.error, imaplib.IMAP4.abort, OSError, socket.timeout, EOFError)


# ------------------------------------------------------------------ the collect


def collect_mail(
    ws: Workspace, conn: sqlite3.Connection, *, now: datetime,
    checkpoint: Callable[[str], None] = _no_checkpoint,
) -> MailReport:
    """Read new mail of `[imap]` (nothing while its host is empty), ingest, reply, move.

    `conn` must not be inside a transaction (each ingest writes through its own connection).
    A mailbox that cannot be read is reported in `error`, never raised: the rest of the
    collect goes on, and the job fails loudly. A database fault is raised.
    """
    settings = ws.settings.imap
    report = MailReport(enabled=settings.enabled)
    if not settings.enabled:
        return report
    outbox = _outbox(ws, conn)
    try:
        server = _Server(settings)
    except _mailbox_errors() as exc:
        report.error = _server_error(settings, exc)
        log.error("%s", report.error)
        return report
    try:
        _Collect(ws, conn, server, settings, now, checkpoint, report, outbox).run()
    except (sqlite3.Error, DatabaseFault):
        raise
    except _mailbox_errors() as exc:
        report.error = _server_error(settings, exc)
        log.error("%s", report.error)
    finally:
        server.close()
    if report.set_aside:
        _tell_admin(ws, conn, report.set_aside, settings, now)
    return report


def _outbox(ws: Workspace, conn: sqlite3.Connection) -> Outbox:
    from ..delivery import Outbox

    return Outbox.open(ws, conn)


def _server_error(s: ImapSettings, exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return (f"报送邮箱 {s.host}:{s.port} 未能读完，未处理的邮件留在邮箱中，下次收取时继续 / the mailbox "
            f"{s.username}@{s.host}:{s.port}/{s.folder} could not be read to the end ({type(exc).__name__}: "
            f"{text}); what was not finished stays in the folder for the next collect")


class _Collect:
    def __init__(self, ws: Workspace, conn: sqlite3.Connection, server: _Server, settings: ImapSettings,
                 now: datetime, checkpoint: Callable[[str], None], report: MailReport, outbox: Outbox) -> None:
        self.ws, self.conn, self.server, self.s = ws, conn, server, settings
        self.now, self.checkpoint, self.report, self.outbox = now, checkpoint, report, outbox
        self.mailbox = f"{settings.username}@{settings.host}/{settings.folder}"
        self.uv = server.uidvalidity
        self.registry = ws.registry
        self.limits = ZipLimits.of(ws.settings.limits)
        self.addresses = _addresses(self.registry)
        # The verdicts of the files ingested ahead with their chunk (`_ingest_ahead`), by
        # (message row, attachment), and the messages whose batch the database did not store.
        self._ahead: dict[tuple[int, int], dict[str, Any]] = {}
        self._lost: set[int] = set()

    # -------------------------------------------------------------- the folder, chunk by chunk

    def run(self) -> None:
        started = time.perf_counter()
        with self._timed("fetch"):
            listing = self.server.listing()
        known = store.at_location(self.conn, self.mailbox, self.uv)
        order = sorted(listing, key=lambda u: (listing[u].internaldate, u))
        log.info("mailbox %s (uidvalidity %d): %d message(s)", self.mailbox, self.uv, len(order))
        for chunk in _chunks(order, listing):
            self._chunk(chunk, listing, known)
        self._reconcile(set(listing))
        seconds = self.report.seconds
        log.info("mailbox %s: %d message(s) in %.1f s (%s)", self.mailbox, len(self.report.messages),
                 time.perf_counter() - started, ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()))

    @contextmanager
    def _timed(self, phase: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            seconds = self.report.seconds
            seconds[phase] = seconds.get(phase, 0.0) + time.perf_counter() - t0

    def _chunk(self, chunk: list[int], listing: dict[int, _Listed], known: dict[int, store.MailRow]) -> None:
        undecided = [u for u in chunk if known.get(u) is None or known[u].state == "received"
                     or _put_back(known[u])]
        big = [u for u in undecided if listing[u].size > self.s.max_message_bytes]
        with self._timed("fetch"):
            bodies = self.server.fetch([u for u in undecided if u not in big], "body")
            headers = self.server.fetch(big, "header")
        moves: dict[str, list[tuple[int, int, MailEntry]]] = {}
        # First every message of the chunk recorded (archived, its row written), then the files of
        # all of them ingested in one run (`ingest_batch`), then each decided, answered and moved.
        begun: list[tuple[int, MailEntry, store.MailRow, MailMessage | None, bool]] = []
        for uid in chunk:
            entry = MailEntry(None, self.uv, uid, None, None, None, "", None, None, "received")
            self.report.messages.append(entry)
            try:
                first, parsed = self._begin(uid, listing[uid], known.get(uid), bodies.get(uid), headers.get(uid),
                                            entry)
            except (sqlite3.Error, DatabaseFault):   # the server's fault: stop, the message stays
                raise
            except _mailbox_errors():
                raise
            except Exception as exc:  # noqa: BLE001 - one message never stops the others; it stays in the folder
                log.exception("mail uid %d: not finished", uid)
                entry.error = f"{type(exc).__name__}: {exc}"
                continue
            begun.append((uid, entry, first, parsed, headers.get(uid) is not None))
        self._ingest_ahead([(r, p, large) for _u, _e, r, p, large in begun])
        for uid, entry, first, parsed, large in begun:
            try:
                row = self._finish(first, parsed, large, entry)
            except (sqlite3.Error, DatabaseFault):
                raise
            except _mailbox_errors():
                raise
            except Exception as exc:  # noqa: BLE001
                log.exception("mail uid %d: not finished", uid)
                entry.error = f"{type(exc).__name__}: {exc}"
                continue
            if row is not None and row.state != "received":
                target = self.s.done_folder if row.state == "ingested" else self.s.aside_folder
                moves.setdefault(target, []).append((row.id, uid, entry))
        if moves:
            if hasattr(os, "sync"):
                os.sync()   # the archive, the staged files and the committed rows reach the disk first
            for target, items in moves.items():
                with self._timed("move"):
                    self.server.move([uid for _id, uid, _e in items], target)
                self.checkpoint("mail_moved")
                store.mark_moved(self.conn, [(mid, target) for mid, _uid, _e in items], stamp(self.now))
                for _id, _uid, entry in items:
                    entry.moved_to = target

    def _reconcile(self, present: set[int]) -> None:
        """Rows still in the folder as far as we know, whose message is not: moved by an
        interrupted collect (or by hand). One never decided is finished from its archived copy."""
        for row in store.unmoved(self.conn, self.mailbox):
            if row.uidvalidity == self.uv and row.uid in present:
                continue    # still there: a move that failed in this collect
            if row.state == "received":
                entry = MailEntry(row.id, row.uidvalidity, row.uid, row.sender, row.county_code, None,
                                  row.subject or "", row.message_id, row.received_at, "received")
                self.report.messages.append(entry)
                raw = self._archived(row)
                if raw is None:
                    entry.error = "邮件已不在邮箱中，且没有存档副本 / the message is gone from the folder and has no archived copy"
                    log.error("mail %d (uid %d): %s", row.id, row.uid, entry.error)
                    continue
                meta = _Listed(datetime.fromisoformat(row.received_at), row.size)
                try:
                    done = self._one(row.uid, meta, row, *raw, entry)
                except (sqlite3.Error, DatabaseFault):
                    raise
                except Exception as exc:  # noqa: BLE001
                    log.exception("mail %d: not finished", row.id)
                    entry.error = f"{type(exc).__name__}: {exc}"
                    continue
                if done is None or done.state == "received":
                    continue
                log.warning("mail %d (uid %d) was no longer in %s; finished from mail/%s", row.id, row.uid,
                            self.s.folder, row.folder)
                store.mark_moved(self.conn, [(row.id, "")], stamp(self.now))
                continue
            target = self.s.done_folder if row.state == "ingested" else self.s.aside_folder
            log.info("mail %d (uid %d) is no longer in %s: it was moved to %s", row.id, row.uid, self.s.folder, target)
            store.mark_moved(self.conn, [(row.id, target)], stamp(self.now))

    def _archived(self, row: store.MailRow) -> tuple[bytes | None, bytes | None] | None:
        if not row.folder:
            return None
        folder = self.ws.home / row.folder
        for name, big in ((MESSAGE_FILE, False), (HEADER_FILE, True)):
            try:
                data = (folder / name).read_bytes()
            except OSError:
                continue
            return (None, data) if big else (data, None)
        return None

    # -------------------------------------------------------------- one message

    def _one(self, uid: int, meta: _Listed, row: store.MailRow | None, raw: bytes | None, header: bytes | None,
             entry: MailEntry) -> store.MailRow | None:
        first, parsed = self._begin(uid, meta, row, raw, header, entry)
        return self._finish(first, parsed, header is not None, entry)

    def _begin(self, uid: int, meta: _Listed, row: store.MailRow | None, raw: bytes | None, header: bytes | None,
               entry: MailEntry) -> tuple[store.MailRow, MailMessage | None]:
        """The message recognised or recorded (archived first), not yet decided."""
        with self._timed("record"):
            found, parsed = self._recognise(uid, meta, row, raw, header, entry)
        assert found is not None
        entry.id, entry.sender, entry.county_code = found.id, found.sender, found.county_code
        entry.subject, entry.message_id, entry.received_at = found.subject or "", found.message_id, found.received_at
        return found, parsed

    def _finish(self, row: store.MailRow, parsed: MailMessage | None, big: bool, entry: MailEntry) -> store.MailRow:
        """Decide the message (its files ingested, or set aside) and queue the reply."""
        if row.state == "received":
            assert parsed is not None
            row = self._decide(row, parsed, big=big)
            if row.state == "received":
                entry.error = ("数据库未能保存本邮件的文件，邮件留在邮箱中，下次收取时重新处理 / the database did not "
                               "store its files; it stays in the folder for the next collect")
                return row
            self.checkpoint("mail_decided")
        entry.county_code = row.county_code
        entry.county_name = self.registry.county_name(row.county_code) if row.county_code else None
        entry.state, entry.reason = row.state, row.reason
        entry.files = list(row.detail.get("files", []))
        entry.ignored = list(row.detail.get("ignored", []))
        with self._timed("reply"):
            entry.reply_id = self._reply(row)
        self.checkpoint("mail_replied")
        return row

    def _recognise(self, uid: int, meta: _Listed, row: store.MailRow | None, raw: bytes | None,
                   header: bytes | None, entry: MailEntry) -> tuple[store.MailRow, MailMessage | None]:
        """The message's row: the one at this UID, the one with its fingerprint, or a new one
        (archived first); with the message taken apart when it is still to be decided."""
        parsed: MailMessage | None = None
        if row is None or row.state == "received" or _put_back(row):
            if raw is None and header is None:
                raise MailboxError(f"the server sent nothing for uid {uid}")
            if header is not None:
                sender, subject, message_id = header_sender(header)
                parsed = MailMessage(message_id=message_id, sender=sender, subject=subject)
                print_ = hashlib.sha256(b"big\n" + header + str(meta.size).encode()).hexdigest()
            else:
                assert raw is not None
                parsed = parse_message(raw, self.limits)
                print_ = fingerprint(raw, parsed)
            if row is None:
                row = store.by_fingerprint(self.conn, print_)
                if row is not None:
                    log.info("mail uid %d is message %d, seen before as uidvalidity %d uid %d", uid, row.id,
                             row.uidvalidity, row.uid)
                    entry.seen_before = True
                    put_back = _put_back(row)
                    store.relocate(self.conn, row.id, self.mailbox, self.uv, uid)
                    if put_back:   # set aside, then put back by hand: decided again (nothing of it was stored)
                        log.info("mail %d was set aside (%s) and is back in %s: read again", row.id, row.reason,
                                 self.s.folder)
                        store.reopen(self.conn, row.id)
                        entry.seen_before = False
                    row = store.get(self.conn, row.id)
                    assert row is not None
            elif _put_back(row):
                store.reopen(self.conn, row.id)
                row = store.get(self.conn, row.id)
                assert row is not None
            if row is None:
                row = self._record(uid, meta, parsed, raw if raw is not None else header or b"", print_,
                                   big=header is not None)
                self.checkpoint("mail_recorded")
            elif row.state == "received":
                self._stage(self.ws.home / (row.folder or ""), raw if raw is not None else header or b"", parsed,
                            big=header is not None)
        else:
            entry.seen_before = True
        assert row is not None
        return row, parsed

    def _record(self, uid: int, meta: _Listed, parsed: MailMessage, raw: bytes, print_: str, *,
                big: bool) -> store.MailRow:
        """Archive the message and its files under mail/, then its row (the receipt time fixed once)."""
        received = min(meta.internaldate, self.now).astimezone(TZ).replace(microsecond=0)
        base = f"{MAIL_DIR}/{self.uv}-{uid}"
        folder, n = base, 1
        while store.folder_taken(self.conn, folder):
            n += 1
            folder = f"{base}-{n}"
        self._stage(self.ws.home / folder, raw, parsed, big=big)
        county, _why = self._county_of(parsed.sender)
        row_id = store.add_received(
            self.conn, mailbox=self.mailbox, uidvalidity=self.uv, uid=uid, fingerprint=print_,
            message_id=parsed.message_id, sender=parsed.sender, county_code=county, subject=parsed.subject,
            received_at=received.isoformat(), size=meta.size, folder=folder, at=stamp(self.now),
        )
        row = store.get(self.conn, row_id)
        assert row is not None
        return row

    def _stage(self, folder: Path, raw: bytes, parsed: MailMessage, *, big: bool) -> None:
        """mail/<uv>-<uid>/message.eml and 1/<name>, 2/<name> …: written inside `folder` only."""
        root = self.ws.home / MAIL_DIR
        root.mkdir(mode=0o700, exist_ok=True)
        folder.mkdir(mode=0o700, exist_ok=True)
        _write_inside(folder, HEADER_FILE if big else MESSAGE_FILE, raw)
        for i, a in enumerate(parsed.attachments, 1):
            sub = folder / str(i)
            sub.mkdir(mode=0o700, exist_ok=True)
            _write_inside(sub, a.name, a.data)

    def _county_of(self, sender: str | None) -> tuple[str | None, str]:
        if sender is None:
            return None, "malformed"
        counties = self.addresses.get(sender, ())
        if not counties:
            return None, "unknown_sender"
        if len(counties) > 1:
            return None, "shared_sender"
        return counties[0], ""

    def _decide(self, row: store.MailRow, parsed: MailMessage, *, big: bool) -> store.MailRow:
        county, reason, detail = self._verdict(row, parsed, big=big)
        if reason is not None:
            log.warning("mail %d from %s set aside: %s", row.id, row.sender, reason)
            store.decide(self.conn, row.id, state="set_aside", county_code=county, reason=reason, detail=detail,
                         at=stamp(self.now))
        else:
            assert county is not None
            files = self._ingest(row, county, parsed.attachments)
            if files is None:
                return row
            detail["files"] = files
            store.decide(self.conn, row.id, state="ingested", county_code=county, detail=detail, at=stamp(self.now))
        decided = store.get(self.conn, row.id)
        assert decided is not None
        return decided

    def _verdict(self, row: store.MailRow, parsed: MailMessage, *, big: bool
                 ) -> tuple[str | None, str | None, dict[str, Any]]:
        """(county, why it is set aside or None, detail) of a message still to be decided."""
        county, why = self._county_of(parsed.sender)
        ignored = [{"file": a.shown, "reason": a.note} for a in parsed.ignored]
        reason: str | None = None
        detail: dict[str, Any] = {"ignored": ignored}
        if big:
            reason = "too_large"
            detail["note"] = f"邮件大小{row.size}字节，超过上限{self.s.max_message_bytes}字节"
        elif parsed.malformed:
            reason, detail["note"] = "malformed", parsed.malformed
        elif county is None:
            reason = why
        elif parsed.named_parts > self.s.max_attachments:
            reason = "too_many_attachments"
            detail["note"] = f"附件{parsed.named_parts}个，超过上限{self.s.max_attachments}个"
        elif not parsed.attachments:
            reason = "no_spreadsheet"
        return county, reason, detail

    def _ingest_ahead(self, begun: list[tuple[store.MailRow, MailMessage | None, bool]]) -> None:
        """The files of every message of a chunk that will be ingested, in one ingest run (one
        registry index, one reader pool, one connection): each with its county and its message's
        receipt time. `_ingest` then takes each message's verdicts from here."""
        from .ingest import ingest_batch

        self._ahead.clear()
        self._lost.clear()
        todo: list[tuple[int, int, Attachment]] = []
        files: list[tuple[Path, str | None, datetime | None]] = []
        for row, parsed, big in begun:
            if row.state != "received" or parsed is None:
                continue
            county, reason, _detail = self._verdict(row, parsed, big=big)
            if reason is not None or county is None:
                continue
            folder = self.ws.home / (row.folder or "")
            for i, a in enumerate(parsed.attachments):
                if store.mail_submission(self.conn, a.sha256, county, row.received_at) is None:
                    todo.append((row.id, i, a))
                    files.append((folder / str(i + 1) / a.name, county, datetime.fromisoformat(row.received_at)))
        if not files:
            return
        with self._timed("ingest"):
            report = ingest_batch(self.ws, files, now=self.now, source="mail")
        self.checkpoint("mail_ingested")
        for (row_id, i, a), result in zip(todo, report.files):
            if result.not_stored:
                self._lost.add(row_id)
            doc = result.to_json()
            doc["file"] = a.shown   # the name as sent, never the server's path
            self._ahead[(row_id, i)] = doc

    def _ingest(self, row: store.MailRow, county: str, attachments: list[Attachment]) -> list[dict[str, Any]] | None:
        """Each attachment's ingest `files` object; None if the database lost the batch (retried next time)."""
        from . import ingest_files

        folder = self.ws.home / (row.folder or "")
        if row.id in self._lost:
            log.error("mail %d: the database did not store its files; it stays in the folder", row.id)
            return None
        ahead = self._ahead
        results: dict[int, dict[str, Any]] = {}
        todo: list[int] = []
        for i, a in enumerate(attachments):
            if (row.id, i) in ahead:     # ingested with the rest of its chunk
                results[i] = ahead[(row.id, i)]
                continue
            prior = store.mail_submission(self.conn, a.sha256, county, row.received_at)
            if prior is not None:   # an interrupted collect stored it already
                results[i] = _stored_result(self.conn, prior, a.shown)
            else:
                todo.append(i)
        if todo:
            paths = [folder / str(i + 1) / attachments[i].name for i in todo]
            with self._timed("ingest"):
                report = ingest_files(self.ws, paths, county=county,
                                      received_at=datetime.fromisoformat(row.received_at), now=self.now,
                                      source="mail")
            self.checkpoint("mail_ingested")
            if any(f.not_stored for f in report.files):
                log.error("mail %d: the database did not store its files; it stays in the folder", row.id)
                return None
            for i, result in zip(todo, report.files):
                doc = result.to_json()
                doc["file"] = attachments[i].shown   # the name as sent, never the server's path
                results[i] = doc
        return [results[i] for i in range(len(attachments))]

    # -------------------------------------------------------------- the reply

    def _reply(self, row: store.MailRow) -> int | None:
        """Queue the reply to a registered sender (once per message, whatever is run again)."""
        if row.reply_id is not None:
            return row.reply_id
        recipient = self._registered(row.sender)
        if recipient is None:
            return None
        key = hashlib.sha256(f"{REPLY_KIND}|{row.fingerprint}|{row.reopened}".encode()).hexdigest()
        period = f"mail-{row.id}"
        sent = self.outbox.already_sent(kind=REPLY_KIND, period=period, recipient=recipient, content_hash=key)
        if sent is not None:
            store.set_reply(self.conn, row.id, sent.id)
            return sent.id
        reply = reply_text(self.ws, row, now=self.now)
        smtp = self.outbox.smtp
        issuer = self.ws.settings.bureau.issuer
        mailbox = self.s.username if ADDRESS.fullmatch(self.s.username) else None
        queued = self.outbox.queue(
            kind=REPLY_KIND, period=period, recipient=recipient, subject=reply.subject, content_hash=key,
            message=functools.partial(_reply_message, reply, sender=smtp.sender, recipient=recipient,
                                      issuer=issuer, in_reply_to=row.message_id, reply_to=mailbox, now=self.now),
            now=self.now,
        )
        if queued is None:
            return None
        store.set_reply(self.conn, row.id, queued.id)
        return queued.id

    def _registered(self, sender: str | None) -> str | None:
        """The sender's address as reference/counties.csv spells it, if it is there at all."""
        if sender is None or sender not in self.addresses:
            return None
        for county in self.addresses[sender]:
            for address in self.registry.counties[county].emails:
                if address.lower() == sender:
                    return address
        return sender


def _put_back(row: store.MailRow) -> bool:
    """A message set aside and moved out, now in the folder again: staff put it back to be read."""
    return row.state == "set_aside" and row.moved_at is not None and bool(row.moved_to)


def _chunks(order: list[int], listing: dict[int, _Listed]) -> Iterator[list[int]]:
    chunk: list[int] = []
    size = 0
    for uid in order:
        this = min(listing[uid].size, CHUNK_BYTES)
        if chunk and (len(chunk) >= CHUNK_MESSAGES or size + this > CHUNK_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(uid)
        size += this
    if chunk:
        yield chunk


def _addresses(registry: Any) -> dict[str, tuple[str, ...]]:
    """address (lower case) -> the counties that list it in reference/counties.csv."""
    out: dict[str, list[str]] = {}
    for code, county in registry.counties.items():
        for address in county.emails:
            out.setdefault(address.lower(), []).append(code)
    return {a: tuple(c) for a, c in out.items()}


def _write_inside(folder: Path, name: str, data: bytes) -> None:
    """Write a file named by a sender into `folder` and nowhere else (no link followed)."""
    if not name or "/" in name or "\x00" in name or name in (".", ".."):
        raise ValueError(f"not a plain file name: {name!r}")
    path = folder / name
    if path.parent.resolve() != folder.resolve():
        raise ValueError(f"{name!r} would leave {folder}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o600)
    with open(fd, "wb") as f:
        f.write(data)


def _stored_result(conn: sqlite3.Connection, row: SubmissionRow, name: str) -> dict[str, Any]:
    """The ingest `files` object of a version already on record (as `ingest` reports it)."""
    csv = row.format == "csv"
    problems = [
        Problem(q.code, q.message, q.severity, q.sheet, q.cell, q.cluster_code, q.indicator,
                where_text=csv_place_of(q.cell) if csv and q.sheet is None and q.cell else None).to_json()
        for q in store_submissions.problems_of(conn, row.id)
    ]
    doc: dict[str, Any] = {
        "file": name, "county_code": row.county_code, "period": row.period, "verdict": row.verdict,
        "problems": problems, "submission_id": row.id, "sha256": row.file_sha256, "format": row.format,
        "values": row.n_values, "received_at": row.received_at,
    }
    if row.supersedes is not None:
        doc["supersedes"] = row.supersedes
    return doc


# ------------------------------------------------------------------ the reply's text


@dataclass(frozen=True)
class Reply:
    subject: str
    html: str
    text: str


def reply_text(ws: Workspace, row: store.MailRow, *, now: datetime) -> Reply:
    """The Chinese reply to one message: each file's verdict and every located problem, or why
    the message was not read, as HTML and as plain text from the same data. Everything from the
    mail is data: autoescaped in the HTML, on one line (no controls) in both."""
    from ..jobs.notices import one_line, time_label
    from ..templating import environment

    registry = ws.registry
    county = registry.county_name(row.county_code) if row.county_code else ""
    files = [_file_view(registry, f) for f in row.detail.get("files", [])]
    aside = ASIDE_REASONS.get(row.reason or "") if row.state == "set_aside" else None
    if aside and row.detail.get("note"):
        aside = f"{aside}（{one_line(str(row.detail['note']))}）"
    if row.state == "set_aside":
        outcome = "邮件未处理"
    else:
        counts: dict[str, int] = {}
        for f in files:
            counts[f["label"]] = counts.get(f["label"], 0) + 1
        outcome = "、".join(f"{label}{n}份" for label, n in counts.items())
    original = one_line(row.subject or "") or "（无主题）"
    short = original if len(original) <= 30 else original[:29] + "…"
    subject = f"【报送回执】{county + '：' if county else ''}{outcome}（来信：{short}）"
    rejected = any(f.get("verdict") == "rejected" for f in row.detail.get("files", []))
    advice = ("请按上述原因处理后重新发送；邮件须由本县（市、区）登记的报送邮箱发出，以附件形式附上填好的报送模板"
              "（.xlsx、.xls、.ods 或 .csv）。")
    data = dict(
        subject=subject,
        greeting=county or "您好",
        opening=(f"贵单位发送至报送邮箱的邮件已收到，共{len(files)}个报送文件，审核结果如下。" if row.state == "ingested"
                 else "您发送至报送邮箱的邮件已收到，但未能处理，原因如下。"),
        original_subject=original,
        received=time_label(row.received_at),
        aside_reason=aside,
        aside_advice=advice,
        files=files,
        ignored=[{"name": one_line(a["file"]), "reason": a["reason"]} for a in row.detail.get("ignored", [])],
        resubmit=("退回的文件未被采用，请按问题逐项修改后，将修改后的文件作为附件回复本邮件重新报送；"
                  "重新报送以实际收到时间计算是否迟报。") if rejected else "",
        issuer=ws.settings.bureau.issuer,
        date_line=chinese_date(now.astimezone(TZ).date()),
    )
    env = environment(ws.templates_dir)
    return Reply(subject, env.get_template("mail_reply.html").render(**data),
                 env.get_template("mail_reply.txt").render(**data))


def _file_view(registry: Any, f: dict[str, Any]) -> dict[str, Any]:
    from ..jobs.notices import one_line

    verdict = str(f.get("verdict"))
    label = "未变化" if f.get("unchanged") else VERDICT_TEXT.get(verdict, verdict).split("（")[0]
    what = []
    if f.get("county_code") and f["county_code"] in registry.counties:
        what.append(registry.county_name(f["county_code"]))
    if f.get("period"):
        try:
            what.append(parse_period(str(f["period"])).label)
        except ValueError:  # a period the file wrote, shown as written
            what.append(one_line(str(f["period"])))
    note = ""
    if f.get("unchanged"):
        note = "与已报送的版本相同，未重复保存，以原版本为准。"
    elif verdict in ("accepted", "warning"):
        note = f"已保存{f.get('values', 0)}个数值。"
    problems = []
    for q in f.get("problems", []):
        cluster = q.get("cluster_code") or ""
        c = registry.clusters.get(cluster)
        indicator = q.get("indicator") or ""
        i = registry.indicators.get(indicator)
        problems.append({
            "kind": "错误" if q.get("severity", "error") == "error" else "提示",
            "place": one_line(_place(q)),
            "cluster": one_line(f"{cluster} {c.name}" if c else cluster) or "—",
            "indicator": one_line(i.label if i else indicator) or "—",
            "message": one_line(str(q.get("message", ""))),
        })
    return {"name": one_line(str(f.get("file", ""))), "verdict": VERDICT_TEXT.get(verdict, verdict),
            "label": label, "colour": VERDICT_COLOUR.get(verdict, "#1a1a1a"), "what": " ".join(what),
            "note": note, "problems": problems}


def _place(q: dict[str, Any]) -> str:
    """The sheet and cell (or CSV line) of a problem: its `where` without the cluster and indicator."""
    where = str(q.get("where") or "")
    for part in (q.get("indicator"), q.get("cluster_code")):
        if part and where.endswith(f" / {part}"):
            where = where[: -len(f" / {part}")]
    return where or "文件"


def _reply_message(reply: Reply, *, sender: str, recipient: str, issuer: str, in_reply_to: str | None,
                   reply_to: str | None, now: datetime) -> Any:
    """The reply as mail: threaded to the county's message, answered (a corrected file) to the 报送 mailbox."""
    from ..delivery import build_message

    msg = build_message(sender=sender, recipient=recipient, subject=reply.subject, text=reply.text,
                        html=reply.html, now=now, sender_name=issuer)
    if reply_to and reply_to != sender:
        msg["Reply-To"] = reply_to
    if in_reply_to:   # checked to be a plain <x@y> when the message was read
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    return msg


# ------------------------------------------------------------------ the administrator


def _tell_admin(ws: Workspace, conn: sqlite3.Connection, entries: list[MailEntry], s: ImapSettings,
                now: datetime) -> None:
    """Mail set aside in this collect: the administrator is told what, from whom, and where it is."""
    from ..delivery import alert_admin
    from ..jobs.notices import one_line

    fresh = [e for e in entries if e.moved_to]   # set aside by this collect (met once: then moved)
    if not fresh:
        return
    lines = [f"报送邮箱中有 {len(fresh)} 封邮件未收取，已移至文件夹 {s.aside_folder} / {len(fresh)} message(s) set "
             f"aside in {s.aside_folder}, not ingested:", ""]
    for e in fresh:
        lines.append(f"- {one_line(e.sender or '（无发件人）')}：{one_line(e.subject) or '（无主题）'}"
                     f"（{e.received_at or ''}）：{ASIDE_REASONS.get(e.reason or '', e.reason or '')} [{e.reason}]")
    lines += ["", f"邮件及附件存档 / archived: {ws.home / MAIL_DIR}",
              "如确为县（市、区）报送，请核对 reference/counties.csv 的 email 列后请其重新发送，或用 "
              "supervise ingest FILE --county 代码 --received-at 时间 收取 / if it is a county's submission, add "
              "its address to reference/counties.csv and ask for it again, or ingest the file by hand."]
    try:
        alert_admin(ws, f"【supervise】报送邮箱：{len(fresh)} 封邮件未收取", "\n".join(lines) + "\n", now=now, conn=conn)
    except Exception as exc:  # noqa: BLE001 - telling must never undo the collect
        log.critical("could not tell the administrator about mail set aside: %s", exc)
