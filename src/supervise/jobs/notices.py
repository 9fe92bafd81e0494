"""退回通知: the mail that tells a county staff sent its submission back, why, and what to do.

It goes through the outbox like every other mail (kind `return`): one message to each contact
in the `email` column of reference/counties.csv, sent at once by the command that sent the data
back. A message the server does not accept stays in the outbox and goes with the next collect
or run. The content hash names the version sent back, so the notice is sent once: a retry of
the delivery never sends it again, and a version can only be sent back once.

The reason is staff's text, and so data: escaped in the HTML part (the one autoescaping
template environment), on one line in the subject.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

from ..delivery import DeliveryOutcome, Outbox, build_message
from ..errors import SuperviseError
from ..periods import TZ, Month, Period, Quarter, Year, data_period, dataset_title, parse_period
from ..periods import chinese_date as _date_label
from ..store.submissions import SubmissionRow
from ..workspace import Workspace

if TYPE_CHECKING:  # the rulebooks are read when a notice is built, not with this module
    from ..assess.rulebook import Rulebook

log = logging.getLogger("supervise.jobs")

RETURN_KIND = "return"          # deliveries.kind of a 退回通知
SUBJECT_REASON_CHARS = 30       # the reason is cut to this many characters in the subject

# Controls (line breaks among them) and the line and paragraph separators: a space on one line.
_BREAKS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# Bidi embeddings, overrides, isolates and marks, and lone surrogates: dropped.
_HIDDEN = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def one_line(text: str) -> str:
    """Outside text on one line (for a subject or a sentence): no line breaks, no controls."""
    return " ".join(_BREAKS.sub(" ", _HIDDEN.sub("", text)).split())


def text_lines(text: str) -> list[str]:
    """Outside text as its non-blank lines, each made one_line (a reason of several points)."""
    return [line for line in (one_line(part) for part in text.splitlines()) if line]


def _short(text: str, limit: int = SUBJECT_REASON_CHARS) -> str:
    flat = one_line(text)
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def time_label(iso: str | datetime) -> str:
    """2025年4月3日 16:20, in Asia/Shanghai ("—" for a time not on record)."""
    try:
        dt = datetime.fromisoformat(iso) if isinstance(iso, str) else iso
    except ValueError:
        return "—"
    local = dt.astimezone(TZ) if dt.tzinfo else dt.replace(tzinfo=TZ)
    return f"{_date_label(local.date())} {local:%H:%M}"


def _points(x: float) -> str:
    return f"{x:g}"


# ------------------------------------------------------------------ what the rulebooks say


@dataclass(frozen=True)
class Deduction:
    """A rulebook's 错报/退回 deduction that a 退回 of this period's data counts towards."""

    title: str
    version: str
    points: float
    max: float | None = None

    def sentence(self) -> str:
        cap = f"，最多扣{_points(self.max)}分" if self.max is not None else ""
        return f"《{self.title}》（{self.version}版）：每退回一次扣{_points(self.points)}分{cap}。"


def _assessed_with(period: Month | Quarter, kind: str) -> Period | None:
    """The period of `kind` whose assessment can read `period`'s data, if any."""
    if kind == "month":
        return period if isinstance(period, Month) else None
    if kind == "quarter":
        return period.quarter() if isinstance(period, Month) else period
    return Year(period.year)


def deductions_for(books: Iterable[Rulebook], period: Month | Quarter) -> list[Deduction]:
    """Pure: the `rejected` deductions of the rulebooks that assess `period`'s data."""
    out = []
    for book in books:
        assessed = _assessed_with(period, book.period)
        if assessed is None:
            continue
        try:
            if data_period(assessed, book.data) != period:
                continue
        except ValueError:  # a monthly assessment does not read quarterly data
            continue
        for d in book.deductions:
            if d.on == "rejected" and d.points:
                out.append(Deduction(book.title, book.version, float(d.points),
                                     None if d.max is None else float(d.max)))
    return out


def workspace_deductions(ws: Workspace, period: Month | Quarter) -> list[Deduction]:
    """The deductions of the workspace's rulebooks; none if they cannot be read (the 退回 stands)."""
    from ..assess.loading import load_rulebooks

    try:
        books = load_rulebooks(ws.rules_dir, ws.registry.indicators)
    except SuperviseError as exc:
        log.warning("the 退回通知 names no deduction: the rulebooks cannot be read: %s", exc)
        return []
    return deductions_for(books, period)


# ------------------------------------------------------------------ the message


@dataclass(frozen=True)
class ReturnNotice:
    subject: str
    html: str
    text: str


def return_notice(
    *,
    county_name: str,
    period: Month | Quarter,
    file_name: str,
    received_at: str | datetime,
    returned_at: datetime,
    reason: str,
    due_day: date,
    deductions: Sequence[Deduction],
    issuer: str,
) -> ReturnNotice:
    """The 退回通知 of one version: subject, HTML (autoescaped) and its plain-text alternative."""
    from ..templating import environment

    what = dataset_title(period)
    subject = (
        f"【退回】{period.label}县域特色产业{what}数据已退回，请修改后重新报送（原因：{_short(reason)}）"
    )
    today = returned_at.astimezone(TZ).date()
    data = dict(
        subject=subject,
        county_name=county_name,
        period_label=period.label,
        what=what,
        file_name=one_line(file_name) or "（未命名文件）",
        received=time_label(received_at),
        returned=time_label(returned_at),
        reason_lines=text_lines(reason) or ["（未说明）"],
        due=f"{_date_label(due_day)}24时",
        overdue=today > due_day,
        deductions=[d.sentence() for d in deductions],
        issuer=issuer,
        date_line=_date_label(today),
    )
    env = environment()
    html = env.get_template("return_notice.html").render(**data)
    return ReturnNotice(subject, html, env.get_template("return_notice.txt").render(**data))


# ------------------------------------------------------------------ queue and send


@dataclass
class NoticeResult:
    """What became of the 退回通知 of one 退回: to whom, and each delivery of this run."""

    recipients: list[str] = field(default_factory=list)    # the county's contacts ([] = nobody)
    deliveries: list[DeliveryOutcome] = field(default_factory=list)
    error: str | None = None    # the notice could not be queued (the 退回 itself stands)

    @property
    def waiting(self) -> list[DeliveryOutcome]:
        """Mail the server did not take: it stays in the outbox for the next collect or run."""
        return [d for d in self.deliveries if d.state == "failed"]

    def to_json(self) -> dict[str, object]:
        return {
            "kind": RETURN_KIND,
            "recipients": self.recipients,
            "no_address": not self.recipients,
            "deliveries": [d.to_json() for d in self.deliveries],
            "waiting": len(self.waiting),
            "error": self.error,
        }


def content_key(row: SubmissionRow) -> str:
    """What the delivery log keys a notice on: the version sent back (each is sent back once)."""
    return hashlib.sha256(f"{RETURN_KIND}|{row.county_code}|{row.period}|{row.id}".encode()).hexdigest()


def send_return_notice(
    ws: Workspace, conn: sqlite3.Connection, row: SubmissionRow, reason: str, *, now: datetime
) -> NoticeResult:
    """Queue the 退回通知 of a version just sent back to each contact of its county, then send.

    The caller holds the workspace lock (no collect flushes the outbox beside it). Nothing
    here undoes the 退回: a mail not delivered is kept in the outbox and listed as waiting, and
    a notice that could not even be queued is reported in `error`.
    """
    county = ws.registry.counties.get(row.county_code or "")
    emails = list(county.emails) if county else []
    result = NoticeResult(emails)
    if county is None or not emails:
        log.warning("%s %s was sent back for %s, but has no e-mail in reference/counties.csv: "
                    "tell the county by other means", row.county_code, county.name if county else "", row.period)
        return result
    period = parse_period(str(row.period))
    if isinstance(period, Year):  # submissions are monthly or quarterly; nothing to tell
        log.error("submission %s is for %s, not a month or a quarter: no 退回通知", row.id, period)
        return result
    try:
        _queue_and_send(ws, conn, row, period, county.name, emails, reason, now, result)
    except Exception as exc:  # noqa: BLE001 - the 退回 is recorded; the caller must hear of the mail
        result.error = f"{type(exc).__name__}: {exc}"
        log.error("退回通知 of submission %s could not be queued: %s", row.id, result.error)
    return result


def _queue_and_send(
    ws: Workspace, conn: sqlite3.Connection, row: SubmissionRow, period: Month | Quarter, county_name: str,
    emails: Sequence[str], reason: str, now: datetime, result: NoticeResult,
) -> None:
    settings = ws.settings
    bureau = settings.bureau
    notice = return_notice(
        county_name=county_name, period=period, file_name=row.file_name, received_at=row.received_at,
        returned_at=now, reason=reason, due_day=settings.deadlines.due_day(period),
        deductions=workspace_deductions(ws, period), issuer=bureau.issuer,
    )
    outbox = Outbox.open(ws, conn)
    key = content_key(row)
    for address in emails:
        queued = outbox.queue(
            kind=RETURN_KIND,
            period=str(period),
            recipient=address,
            subject=notice.subject,
            content_hash=key,
            message=functools.partial(
                build_message, sender=outbox.smtp.sender, recipient=address, subject=notice.subject,
                text=notice.text, html=notice.html, now=now, sender_name=bureau.issuer,
            ),
            now=now,
        )
        if queued is None:
            log.info("退回通知 of submission %s already sent to %s; not sending it again", row.id, address)
            result.deliveries.append(DeliveryOutcome(0, RETURN_KIND, str(period), address, "skipped", "already sent"))
    outbox.flush(now, kinds=(RETURN_KIND,))
    result.deliveries += outbox.outcomes
    for d in result.waiting:
        log.warning("退回通知 to %s not delivered, kept in the outbox for the next collect: %s", d.recipient, d.error)
