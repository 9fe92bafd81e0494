"""Mail: bulletins and reminders over SMTP, through an outbox, with a delivery log.

Every message is first written to `<home>/outbox/mail/<id>.eml` and logged as `pending` in the
deliveries table, then sent. It becomes `sent` only when the server accepted it for that
recipient; otherwise it stays in the outbox as `failed` and the next run (or the hourly
collect) sends it again. A message is sent to one recipient at a time, so each recipient's
delivery has its own record. The file is removed once sent.

The one window where a mail can go twice: the server accepted it and the process died before
the log said so. Everything else is exactly once.

A permanent refusal (a 5xx reply to MAIL, RCPT or DATA) is not tried again in the same run. The
outbox tries it again in later runs until it has been tried GIVE_UP_AFTER times in all; then it
is given up: it stays `failed` with its file, but no collect retries it, and the administrator
is told. A run that queues the same mail again (the job run again by hand once the cause is
fixed) gives it one new try.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mimetypes
import smtplib
import socket
import sqlite3
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

from .errors import SuperviseError
from .periods import parse_period
from .store import runs
from .workspace import DeliverySettings, SmtpSettings, Workspace, atomic_write

__all__ = [
    "GIVE_UP_AFTER", "Attachment", "DeliveryError", "DeliveryOutcome", "DeliverySettings", "Outbox",
    "SmtpSettings", "alert_admin", "build_message", "given_up", "html_to_text", "mail_dir", "send",
]

log = logging.getLogger("supervise.delivery")

MAIL_DIR = "mail"
XLSX_TYPE = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")


# Tries in all (over every run) after which a permanent refusal (5xx) is given up: some servers
# say 5xx for what clears within hours (a mailbox being set up), and two more tries cost nothing.
GIVE_UP_AFTER = 3
# How the delivery record's last_error marks a mail given up (the schema has no state for it).
GIVEN_UP = "已放弃，不再自动重试 / given up, not retried automatically: "


class DeliveryError(SuperviseError):
    """The mail server did not accept a message (one line, for logs and the delivery record).

    `permanent`: the server refused this message for good (5xx to MAIL, RCPT or DATA), so
    trying again at once is pointless. Anything else (4xx, no connection, a timeout, a 5xx
    before the transaction: greeting, EHLO, STARTTLS, login) is worth another try later.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


# ------------------------------------------------------------------ SMTP


class _Deadline:
    """Cuts a conversation with the server off `seconds` after it began, whatever it is doing.

    smtplib's timeout bounds each socket operation, so a server that sends a byte a second
    never trips it. A timer shuts the connection down at the deadline instead, through a dup
    of the socket (it reaches the connection even inside a TLS handshake or after STARTTLS);
    the blocked read then fails at once.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._fired = False
        self._end = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._dup: socket.socket | None = None
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        return max(0.1, self._end - time.monotonic())

    @property
    def expired(self) -> bool:
        """Cut off, or past the deadline anyway (a socket timeout that fired first, say)."""
        return self._fired or time.monotonic() >= self._end

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            try:
                dup = sock.dup()
            except OSError:
                sock.close()  # not smtplib's yet: nobody else would close it
                raise
            if self._dup is not None:
                self._dup.close()
            self._dup = dup
            if self._fired:
                _cut(dup)

    def _expire(self) -> None:
        with self._lock:
            self._fired = True
            if self._dup is not None:
                _cut(self._dup)

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:
            if self._dup is not None:
                self._dup.close()
                self._dup = None


def _cut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _Client(smtplib.SMTP):
    """smtplib.SMTP whose connection a _Deadline watches from the moment it is made."""

    def __init__(self, deadline: _Deadline, host: str, port: int, *, timeout: float) -> None:
        self.deadline = deadline
        super().__init__(host, port, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # What smtplib.SMTP._get_socket does (connecting within the time left), then the watch.
        sock = socket.create_connection((host, port), min(timeout, self.deadline.remaining()), self.source_address)
        self.deadline.watch(sock)
        return sock


class _TlsClient(smtplib.SMTP_SSL, _Client):
    """Implicit TLS: SMTP_SSL wraps the socket that _Client's _get_socket made (and watches)."""

    def __init__(self, deadline: _Deadline, host: str, port: int, *, timeout: float, context: ssl.SSLContext) -> None:
        self.deadline = deadline
        smtplib.SMTP_SSL.__init__(self, host, port, timeout=timeout, context=context)


def send(smtp: SmtpSettings, message: bytes, recipient: str) -> None:
    """Hand one message to the server for one recipient; raise DeliveryError unless accepted.

    `smtp.timeout` is a deadline for the whole conversation, connecting to QUIT, not for each
    read: a server that answers a byte at a time is cut off there. Once the server accepted the
    message (250 after DATA) it is sent, whatever QUIT then gets: calling that a failure would
    send it a second time.
    """
    deadline = _Deadline(smtp.timeout)
    client: _Client | None = None
    try:
        try:
            if smtp.ssl:
                client = _TlsClient(deadline, smtp.host, smtp.port, timeout=smtp.timeout,
                                    context=ssl.create_default_context())
            else:
                client = _Client(deadline, smtp.host, smtp.port, timeout=smtp.timeout)
            refused = _hand_over(client, smtp, message, recipient)
        except (smtplib.SMTPException, OSError) as exc:
            raise _error(exc, smtp, recipient, deadline) from exc
        _quit(client, recipient)
    finally:
        deadline.close()
        if client is not None:
            client.close()
    if recipient in refused:
        code, why = refused[recipient]
        raise _refused(recipient, code, why)


def _hand_over(
    client: smtplib.SMTP, smtp: SmtpSettings, message: bytes, recipient: str
) -> dict[str, tuple[int, bytes]]:
    client.ehlo()
    if smtp.starttls and not smtp.ssl:
        client.starttls(context=ssl.create_default_context())
        client.ehlo()
    if smtp.username:
        client.login(smtp.username, smtp.password)
    return client.sendmail(smtp.sender, [recipient], message)


def _error(
    exc: smtplib.SMTPException | OSError, smtp: SmtpSettings, recipient: str, deadline: _Deadline
) -> DeliveryError:
    """What went wrong, in one line; permanent only for a 5xx to MAIL, RCPT or DATA."""
    error: DeliveryError
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, why = exc.recipients.get(recipient, (0, b""))
        error = _refused(recipient, code, why)
    elif isinstance(exc, smtplib.SMTPResponseException):
        error = DeliveryError(
            f"{recipient}: server said {exc.smtp_code} {_text(exc.smtp_error)}",
            permanent=isinstance(exc, (smtplib.SMTPSenderRefused, smtplib.SMTPDataError))
            and _permanent(exc.smtp_code),
        )
    else:
        error = DeliveryError(
            f"{recipient}: cannot deliver via {smtp.host}:{smtp.port}: {type(exc).__name__}: {exc}"
        )
    if deadline.expired and not error.permanent:  # cut off: what smtplib made of it is noise
        error = DeliveryError(
            f"{recipient}: {smtp.host}:{smtp.port} did not finish within {smtp.timeout:g} s "
            f"(timeout_seconds); cut off"
        )
    return error


def _quit(client: smtplib.SMTP, recipient: str) -> None:
    """Say goodbye. The message is accepted already, so nothing here can fail the delivery."""
    try:
        code, reply = client.quit()
    except (smtplib.SMTPException, OSError) as exc:
        log.info("%s: message accepted; QUIT then failed (%s: %s), which changes nothing",
                 recipient, type(exc).__name__, exc)
        return
    if code != 221:
        log.info("%s: message accepted; QUIT got %s %s, which changes nothing", recipient, code, _text(reply))


def _permanent(code: int) -> bool:
    return 500 <= code < 600


def _refused(recipient: str, code: int, why: bytes | str) -> DeliveryError:
    return DeliveryError(f"{recipient}: refused by the server: {code} {_text(why)}", permanent=_permanent(code))


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


# ------------------------------------------------------------------ messages


@dataclass(frozen=True)
class Attachment:
    path: Path
    filename: str  # as the recipient sees it, Chinese allowed (RFC 2231)


def build_message(
    *,
    sender: str,
    recipient: str,
    subject: str,
    text: str,
    html: str | None = None,
    attachments: Sequence[Attachment] = (),
    now: datetime,
    sender_name: str = "",
) -> EmailMessage:
    """A message with a plain-text body, an optional HTML alternative and attached files."""
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = formataddr((sender_name, sender)) if sender_name else sender
    msg["To"] = recipient
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for a in attachments:
        if a.path.suffix.lower() == ".xlsx":
            maintype, subtype = XLSX_TYPE
        else:
            guessed = mimetypes.guess_type(a.path.name)[0] or "application/octet-stream"
            maintype, subtype = guessed.split("/", 1)
        msg.add_attachment(a.path.read_bytes(), maintype=maintype, subtype=subtype, filename=a.filename)
    return msg


class _TextOfHtml(HTMLParser):
    BLOCKS: ClassVar[set[str]] = {
        "p", "div", "br", "tr", "h1", "h2", "h3", "h4", "li", "table", "section", "header",
    }
    SKIP: ClassVar[set[str]] = {"style", "script", "head", "title"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skip += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append("\t")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """The plain-text alternative of a mail: the HTML's words, one block per line."""
    p = _TextOfHtml()
    p.feed(markup)
    p.close()
    lines = [" ".join(line.replace("\t", " ").split()) for line in "".join(p.parts).splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip() + "\n"


# ------------------------------------------------------------------ outbox


def mail_dir(ws: Workspace) -> Path:
    return ws.outbox_dir / MAIL_DIR


@dataclass
class DeliveryOutcome:
    """What happened to one recipient's mail in this run."""

    id: int
    kind: str
    period: str | None
    recipient: str
    state: str                # sent | failed | skipped (already sent) | queued (not delivering)
    error: str | None = None
    retried: bool = False     # an earlier run's mail, sent from the outbox
    permanent: bool = False   # failed and given up: no collect tries it again (see GIVE_UP_AFTER)

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "kind": self.kind,
            "period": self.period,
            "recipient": self.recipient,
            "state": self.state,
            "error": self.error,
            "retried": self.retried,
            "permanent": self.permanent,
        }


def given_up(d: runs.Delivery) -> bool:
    """A mail left `failed` for good: only a run that queues it again tries it once more."""
    return d.state == "failed" and (d.last_error or "").startswith(GIVEN_UP)


def _no_checkpoint(name: str) -> None:
    return None


@dataclass
class Outbox:
    """Queue, send and retry mail for one workspace, logging each recipient's delivery."""

    ws: Workspace
    conn: sqlite3.Connection
    smtp: SmtpSettings
    settings: DeliverySettings
    sleep: Callable[[float], None] = time.sleep
    checkpoint: Callable[[str], None] = _no_checkpoint
    outcomes: list[DeliveryOutcome] = field(default_factory=list)
    requeued: set[int] = field(default_factory=set)  # given-up mail queued again in this run

    @classmethod
    def open(
        cls,
        ws: Workspace,
        conn: sqlite3.Connection,
        *,
        checkpoint: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Outbox:
        settings = ws.settings
        return cls(ws, conn, settings.smtp, settings.delivery, sleep=sleep,
                   checkpoint=checkpoint or _no_checkpoint)

    # -- queueing

    def already_sent(self, *, kind: str, period: str | None, recipient: str, content_hash: str) -> runs.Delivery | None:
        found = runs.find_deliveries(
            self.conn, kind=kind, period=period, recipient=recipient,
            content_hash=content_hash, states=("sent",),
        )
        return found[-1] if found else None

    def queue(
        self,
        *,
        kind: str,
        period: str | None,
        recipient: str,
        subject: str,
        content_hash: str,
        message: Callable[[], EmailMessage],
        now: datetime,
        job_run_id: int | None = None,
        resend: bool = False,
    ) -> runs.Delivery | None:
        """Put a mail in the outbox unless the same content already went (or waits) to them.

        Returns the delivery to send, or None when that exact mail was sent before and
        `resend` is not asked. Unsent older content for the same recipient is superseded.
        The same mail waiting but given up is tried once more by the next flush.
        """
        conn = self.conn
        if not resend:
            if self.already_sent(kind=kind, period=period, recipient=recipient, content_hash=content_hash):
                return None
            waiting = [
                d for d in runs.find_deliveries(conn, kind=kind, period=period, recipient=recipient,
                                                content_hash=content_hash, states=("pending", "failed"))
                if d.message_path and (self.ws.home / d.message_path).exists()
            ]
            if waiting:
                runs.supersede_unsent(conn, kind=kind, period=period, recipient=recipient, keep_hash=content_hash)
                if given_up(waiting[-1]):
                    self.requeued.add(waiting[-1].id)
                return waiting[-1]
        def write_message(delivery_id: int) -> str:
            path = mail_dir(self.ws) / f"{delivery_id}.eml"
            atomic_write(path, message().as_bytes())
            return path.relative_to(self.ws.home).as_posix()

        # Older content, and any unsent copy of this same mail (a deliberate resend, or one whose
        # file was lost), is replaced by the new one.
        delivery_id = runs.queue_delivery(
            conn, kind=kind, period=period, recipient=recipient, subject=subject, content_hash=content_hash,
            now=now, job_run_id=job_run_id, write_message=write_message,
        )
        queued = runs.get_delivery(conn, delivery_id)
        assert queued is not None
        return queued

    # -- sending

    def deliver(self, delivery: runs.Delivery, now: datetime, *, retried: bool = False) -> DeliveryOutcome:
        """Send one queued mail, with up to `attempts` tries; log the outcome.

        A permanent refusal ends the tries of this run; once the mail has been tried
        GIVE_UP_AFTER times in all it is given up, and the administrator is told.
        """
        path = self.ws.home / delivery.message_path if delivery.message_path else None
        if path is None or not path.exists():
            error = f"{GIVEN_UP}message file {delivery.message_path} is missing from the outbox"
            runs.mark_failed(self.conn, delivery.id, error, 0)
            log.error("delivery %s to %s given up: %s", delivery.id, delivery.recipient, error)
            self._tell_admin(delivery, error, now)
            return self._note(delivery, "failed", error, retried, permanent=True)
        data = path.read_bytes()
        current = runs.get_delivery(self.conn, delivery.id) or delivery
        error, tries, final = "", 0, False
        for attempt in range(1, self.settings.attempts + 1):
            tries = attempt
            try:
                send(self.smtp, data, delivery.recipient)
            except DeliveryError as exc:
                error = str(exc)
                log.warning("delivery %s to %s failed (attempt %d of %d): %s", delivery.id,
                            delivery.recipient, attempt, self.settings.attempts, error)
                if exc.permanent:  # the same answer in two seconds: leave it to a later run
                    final = current.attempts + attempt >= GIVE_UP_AFTER
                    break
                if attempt < self.settings.attempts and self.settings.retry_delay > 0:
                    self.sleep(self.settings.retry_delay)
                continue
            runs.mark_delivered(self.conn, delivery.id, now)
            path.unlink(missing_ok=True)
            log.info("delivered %s %s to %s", delivery.kind, delivery.period or "", delivery.recipient)
            self.checkpoint("delivered_one")
            return self._note(delivery, "sent", None, retried)
        if final:
            error = GIVEN_UP + error
        runs.mark_failed(self.conn, delivery.id, error, tries)
        if final:
            log.error("delivery %s to %s given up after %d tries, kept in the outbox (%s): %s", delivery.id,
                      delivery.recipient, current.attempts + tries, delivery.message_path, error)
            self._tell_admin(delivery, error, now)
        else:
            log.error("delivery %s to %s kept in the outbox (%s): %s", delivery.id, delivery.recipient,
                      delivery.message_path, error)
        return self._note(delivery, "failed", error, retried, permanent=final)

    def flush(self, now: datetime, *, kinds: Iterable[str] | None = None) -> list[DeliveryOutcome]:
        """Send again everything (of `kinds`, default every kind) an earlier run left in the outbox.

        Mail given up is left alone, unless this run queued it again.
        """
        out = []
        for d in runs.unsent_deliveries(self.conn, kinds=kinds):
            if given_up(d) and d.id not in self.requeued:
                continue
            self.requeued.discard(d.id)
            out.append(self.deliver(d, now, retried=True))
        return out

    def _tell_admin(self, d: runs.Delivery, error: str, now: datetime) -> None:
        """The administrator must act on mail given up: no retry will come by itself."""
        if d.kind == "alert":  # an alert about an alert could only go the same way
            log.critical("ALERT GIVEN UP to %s: %s: %s", d.recipient, d.subject, error)
            return
        home = self.ws.home
        again = _again(d)
        body = (
            "以下邮件已放弃发送，不会再自动重试 / this mail is given up and will not be retried by itself\n\n"
            f"收件人 recipient: {d.recipient}\n"
            f"类别 kind: {d.kind} {d.period or ''}\n"
            f"主题 subject: {d.subject}\n"
            f"原因 reason: {error.removeprefix(GIVEN_UP)}\n"
            f"邮件文件 file: {home / d.message_path if d.message_path else '-'}\n\n"
            "请核对收件人地址（supervise.toml [delivery] recipients，或 reference/counties.csv 的 email 列），"
            "或请邮件服务器管理员处理；之后重新运行该任务，这封邮件会再发送一次 / check the address "
            "(supervise.toml, or the email column of reference/counties.csv) or ask the mail server's "
            "administrator; then run the job again by hand, which tries this mail once more:\n"
            + (f"  supervise --home {home} {again}\n" if again else "")
            + f"运行记录 / run log: supervise --home {home} runs\n"
        )
        try:
            alert_admin(self.ws, f"【supervise】邮件已放弃发送：{d.recipient}", body, now=now, conn=self.conn)
        except Exception as exc:  # noqa: BLE001 - telling must never break the delivery of the rest
            log.critical("could not tell the administrator that mail %s to %s was given up: %s",
                         d.id, d.recipient, exc)

    def _note(
        self, d: runs.Delivery, state: str, error: str | None, retried: bool, *, permanent: bool = False
    ) -> DeliveryOutcome:
        outcome = DeliveryOutcome(d.id, d.kind, d.period, d.recipient, state, error, retried, permanent)
        self.outcomes.append(outcome)
        return outcome

    @property
    def failed(self) -> list[DeliveryOutcome]:
        return [o for o in self.outcomes if o.state == "failed"]


def _again(d: runs.Delivery) -> str | None:
    """The command that queues this mail again (and so gives it one more try), if there is one."""
    if d.period is None or d.kind not in ("bulletin", "reminder"):
        return None
    try:
        kind = parse_period(d.period).kind
    except (SuperviseError, ValueError):
        return None
    if d.kind == "reminder":
        return f"remind --{kind} {d.period}" if kind != "year" else None
    return f"run --{kind} {d.period}"


# ------------------------------------------------------------------ the administrator


def alert_admin(ws: Workspace, subject: str, body: str, *, now: datetime, conn: sqlite3.Connection | None = None) -> bool:
    """Tell the administrator something failed, through the outbox like any other mail.

    An alert that cannot be sent stays in the outbox and goes with the next run or collect;
    the same alert is queued at most once a day. If even that fails, the log says so loudly.
    """
    settings = ws.settings.delivery
    if not settings.admin:
        log.critical("%s — no [delivery] admin address is configured to tell: %s", subject, body.strip())
        return False
    smtp = ws.settings.smtp
    own = conn is None
    conn = conn or ws.connect()
    try:
        outbox = Outbox.open(ws, conn)
        delivery = outbox.queue(
            kind="alert", period=None, recipient=settings.admin, subject=subject,
            content_hash=hashlib.sha256(f"{now.date()}\n{subject}\n{body}".encode()).hexdigest(),
            message=lambda: build_message(
                sender=smtp.sender, recipient=settings.admin, subject=subject, text=body, now=now,
                sender_name="supervise",
            ),
            now=now,
        )
        if delivery is None:
            log.info("alert already sent to %s today: %s", settings.admin, subject)
            return True
        outcome = outbox.deliver(delivery, now)
        if outcome.state != "sent":
            log.critical("ALERT NOT DELIVERED to %s (%s), kept in the outbox for the next run. %s: %s",
                         settings.admin, outcome.error, subject, body.strip())
            return False
        log.info("alert sent to %s: %s", settings.admin, subject)
        return True
    finally:
        if own:
            conn.close()
