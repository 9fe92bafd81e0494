"""Mail: bulletins and reminders over SMTP, through an outbox, with a delivery log.

Every message is first written to `<home>/outbox/mail/<id>.eml` and logged as `pending` in the
deliveries table, then sent. It becomes `sent` only when the server accepted it for that
recipient; otherwise it stays in the outbox as `failed` and the next run (or the hourly
collect) sends it again. A message is sent to one recipient at a time, so each recipient's
delivery has its own record. The file is removed once sent.

The one window where a mail can go twice: the server accepted it and the process died before
the log said so. Everything else is exactly once.
"""

from __future__ import annotations

import hashlib
import html as html_lib
import logging
import mimetypes
import smtplib
import sqlite3
import ssl
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
from .store import runs, transaction
from .workspace import DeliverySettings, SmtpSettings, Workspace, atomic_write

__all__ = [
    "Attachment", "DeliveryError", "DeliveryOutcome", "DeliverySettings", "Outbox", "SmtpSettings",
    "alert_admin", "build_message", "html_to_text", "mail_dir", "send", "text_to_html",
]

log = logging.getLogger("supervise.delivery")

MAIL_DIR = "mail"
XLSX_TYPE = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")


class DeliveryError(SuperviseError):
    """The mail server did not accept a message (one line, for logs and the delivery record)."""


# ------------------------------------------------------------------ SMTP


def send(smtp: SmtpSettings, message: bytes, recipient: str) -> None:
    """Hand one message to the server for one recipient; raise DeliveryError unless accepted."""
    try:
        if smtp.ssl:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                smtp.host, smtp.port, timeout=smtp.timeout, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
        with client:
            client.ehlo()
            if smtp.starttls and not smtp.ssl:
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if smtp.username:
                client.login(smtp.username, smtp.password)
            refused = client.sendmail(smtp.sender, [recipient], message)
    except smtplib.SMTPRecipientsRefused as exc:
        code, why = exc.recipients.get(recipient, (0, b""))
        raise DeliveryError(f"{recipient}: refused by the server: {code} {_text(why)}") from exc
    except smtplib.SMTPResponseException as exc:
        raise DeliveryError(f"{recipient}: server said {exc.smtp_code} {_text(exc.smtp_error)}") from exc
    except (TimeoutError, smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(
            f"{recipient}: cannot deliver via {smtp.host}:{smtp.port}: {type(exc).__name__}: {exc}"
        ) from exc
    if recipient in refused:
        code, why = refused[recipient]
        raise DeliveryError(f"{recipient}: refused by the server: {code} {_text(why)}")


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


def text_to_html(text: str) -> str:
    return "<html><body>" + "".join(
        f"<p>{html_lib.escape(line)}</p>" for line in text.splitlines() if line.strip()
    ) + "</body></html>"


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

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "kind": self.kind,
            "period": self.period,
            "recipient": self.recipient,
            "state": self.state,
            "error": self.error,
            "retried": self.retried,
        }


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
                return waiting[-1]
        with transaction(conn):
            # Older content, and any unsent copy of this same mail (a deliberate resend, or
            # one whose file was lost), is replaced by the new one.
            runs.supersede_unsent(conn, kind=kind, period=period, recipient=recipient)
            delivery_id = runs.add_delivery(
                conn, kind=kind, period=period, recipient=recipient, subject=subject,
                content_hash=content_hash, now=now, job_run_id=job_run_id,
            )
            path = mail_dir(self.ws) / f"{delivery_id}.eml"
            atomic_write(path, message().as_bytes())
            runs.set_message_path(conn, delivery_id, path.relative_to(self.ws.home).as_posix())
        queued = runs.get_delivery(conn, delivery_id)
        assert queued is not None
        return queued

    # -- sending

    def deliver(self, delivery: runs.Delivery, now: datetime, *, retried: bool = False) -> DeliveryOutcome:
        """Send one queued mail, with up to `attempts` tries; log the outcome."""
        path = self.ws.home / delivery.message_path if delivery.message_path else None
        if path is None or not path.exists():
            error = f"message file {delivery.message_path} is missing from the outbox"
            runs.mark_failed(self.conn, delivery.id, error, 0)
            return self._note(delivery, "failed", error, retried)
        data = path.read_bytes()
        error = ""
        for attempt in range(1, self.settings.attempts + 1):
            try:
                send(self.smtp, data, delivery.recipient)
            except DeliveryError as exc:
                error = str(exc)
                log.warning("delivery %s to %s failed (attempt %d of %d): %s", delivery.id,
                            delivery.recipient, attempt, self.settings.attempts, error)
                if attempt < self.settings.attempts and self.settings.retry_delay > 0:
                    self.sleep(self.settings.retry_delay)
                continue
            with transaction(self.conn):
                runs.mark_sent(self.conn, delivery.id, now)
                runs.set_message_path(self.conn, delivery.id, None)
            path.unlink(missing_ok=True)
            log.info("delivered %s %s to %s", delivery.kind, delivery.period or "", delivery.recipient)
            self.checkpoint("delivered_one")
            return self._note(delivery, "sent", None, retried)
        runs.mark_failed(self.conn, delivery.id, error, self.settings.attempts)
        log.error("delivery %s to %s kept in the outbox (%s): %s", delivery.id, delivery.recipient,
                  delivery.message_path, error)
        return self._note(delivery, "failed", error, retried)

    def flush(self, now: datetime, *, kinds: Iterable[str] | None = None) -> list[DeliveryOutcome]:
        """Send again everything (of `kinds`, default every kind) an earlier run left in the outbox."""
        return [self.deliver(d, now, retried=True) for d in runs.unsent_deliveries(self.conn, kinds=kinds)]

    def _note(self, d: runs.Delivery, state: str, error: str | None, retried: bool) -> DeliveryOutcome:
        outcome = DeliveryOutcome(d.id, d.kind, d.period, d.recipient, state, error, retried)
        self.outcomes.append(outcome)
        return outcome

    @property
    def failed(self) -> list[DeliveryOutcome]:
        return [o for o in self.outcomes if o.state == "failed"]


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
