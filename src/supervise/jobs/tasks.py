"""The jobs: collect, remind and the period runs. Each takes `now`; none reads the clock.

They call the same library functions as the CLI (intake, assessment, bulletins), passed in
as `Steps` so that each piece can be tested with small fakes.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any, Protocol

from ..delivery import Attachment, DeliveryOutcome, Outbox, build_message, html_to_text
from ..errors import SuperviseError
from ..periods import TZ, Deadlines, Kind, Month, Period, Quarter
from ..registry import Registry
from ..workspace import Workspace
from .due import not_open, preview_mark, require_due
from .reminders import Window, reminder_text, window_now, windows_at
from .runner import JobContext, PartialFailure, run_job

if TYPE_CHECKING:  # the steps' modules are imported when a job runs, not with this one
    from ..assess.model import AssessmentResult
    from ..bulletin.model import Edition
    from ..intake.mailbox import MailReport
    from ..intake.results import IngestReport
    from ..status import CountyStatus
    from .render import BulletinOutputs, EditionOf

log = logging.getLogger("supervise.jobs")


# ------------------------------------------------------------------ the other areas


class CollectInbox(Protocol):
    def __call__(self, ws: Workspace, *, now: datetime) -> IngestReport: ...


class RunAssessments(Protocol):
    # `provisional` is passed only for a preview (a stand-in that never previews need not take it).
    def __call__(
        self, ws: Workspace, period: Period, *, now: datetime, provisional: bool = False
    ) -> list[AssessmentResult]: ...


class RenderBulletins(Protocol):
    # `preview` (the mark of every page) is passed only for a preview, like `provisional` above;
    # `edition_of` (which version the bulletin is) only for a bulletin to publish.
    def __call__(
        self, ws: Workspace, period: Period, results: list[AssessmentResult], *, now: datetime, preview: str = "",
        edition_of: EditionOf | None = None,
    ) -> BulletinOutputs: ...


class ReportingStatus(Protocol):
    def __call__(
        self, conn: sqlite3.Connection, registry: Registry, period: Period, deadlines: Deadlines, /
    ) -> list[CountyStatus]: ...


def _collect_inbox(ws: Workspace, *, now: datetime) -> IngestReport:
    from ..intake.ingest import collect_inbox

    return collect_inbox(ws, now=now)


def _run_assessments(
    ws: Workspace, period: Period, *, now: datetime, provisional: bool = False
) -> list[AssessmentResult]:
    from .assessment import run_assessments

    return run_assessments(ws, period, now=now, provisional=provisional)


def _render_bulletins(
    ws: Workspace, period: Period, results: list[AssessmentResult], *, now: datetime, preview: str = "",
    edition_of: EditionOf | None = None,
) -> BulletinOutputs:
    from .render import render_bulletins

    return render_bulletins(ws, period, results, now=now, preview=preview, edition_of=edition_of)


def _reporting_status(
    conn: sqlite3.Connection, registry: Registry, period: Period, deadlines: Deadlines, /
) -> list[CountyStatus]:
    from .reporting import reporting_status

    return reporting_status(conn, registry, period, deadlines)


@dataclass(frozen=True)
class Steps:
    """The library calls a job makes, replaceable in tests."""

    collect_inbox: CollectInbox = _collect_inbox
    run_assessments: RunAssessments = _run_assessments
    render_bulletins: RenderBulletins = _render_bulletins
    reporting_status: ReportingStatus = _reporting_status


DEFAULT_STEPS = Steps()


def _ingest_summary(report: IngestReport) -> dict[str, Any]:
    return dict(report.to_json()["summary"])


def _not_stored(summary: dict[str, Any]) -> str | None:
    """Why files that were read could not be stored (a lost batch), or None."""
    n = int(summary.get("not_stored", 0) or 0)
    if not n:
        return None
    return (
        f"{n} 个报送文件未能入库，仍留在 inbox 待下次收取 / {n} file(s) could not be stored "
        "(the database rolled back their batch); they stay in the inbox for the next collect"
    )


# ------------------------------------------------------------------ collect


@dataclass
class CollectResult:
    ingest: dict[str, Any]
    deliveries: list[DeliveryOutcome] = field(default_factory=list)
    mail: MailReport | None = None     # the 报送 mailbox ([imap]), read after the inbox

    def detail(self) -> dict[str, Any]:
        doc = {"ingest": self.ingest, "deliveries": [d.to_json() for d in self.deliveries]}
        if self.mail is not None:
            doc["mail"] = self.mail.summary()
        return doc

    def to_json(self) -> dict[str, Any]:
        return {**self.detail(), "mail": self.mail.to_json() if self.mail is not None else []}


def collect(
    ws: Workspace,
    now: datetime,
    *,
    steps: Steps = DEFAULT_STEPS,
    origin: str = "cli",
    clock: Callable[[], datetime] | None = None,
    wait: float | None = None,
) -> CollectResult:
    """The hourly job: ingest what arrived in the inbox, then retry mail left in the outbox."""

    def body(ctx: JobContext) -> CollectResult:
        result = CollectResult(_ingest_summary(steps.collect_inbox(ws, now=now)))
        from ..intake.mailbox import collect_mail

        result.mail = collect_mail(ws, ctx.conn, now=now, checkpoint=ctx.checkpoint)
        outbox = Outbox.open(ws, ctx.conn)
        outbox.flush(now)
        result.deliveries = outbox.outcomes
        problems = [m for m in (_not_stored(result.ingest), result.mail.error) if m]
        if outbox.failed:
            problems.append(_failed_message(outbox.failed))
        if problems:
            raise PartialFailure("; ".join(problems), result)
        return result

    return run_job(ws, "collect", None, body, now=now, origin=origin, clock=clock, wait=wait)


def _failed_message(failed: Sequence[DeliveryOutcome]) -> str:
    who = ", ".join(sorted({f.recipient for f in failed}))
    return (
        f"{len(failed)} 封邮件未能发出，已保存在 outbox 待下次重试 / "
        f"{len(failed)} mail(s) not delivered, kept in the outbox for the next run ({who}): "
        f"{failed[0].error}"
    )


# ------------------------------------------------------------------ runs


@dataclass
class RunResult:
    period: Period
    results: list[AssessmentResult]
    outputs: BulletinOutputs
    ingest: dict[str, Any]
    deliveries: list[DeliveryOutcome] = field(default_factory=list)
    delivered: bool = True
    provisional: bool = False          # a preview: stored nowhere, never mailed
    preview: str = ""                  # its mark, printed on every page: 预览（未到报送截止时间）

    @property
    def content_hash(self) -> str:
        """The bulletin's own hash (see `render_bulletins`): what the delivery log keys on."""
        return self.outputs.content_hash

    @property
    def bulletin_version(self) -> int | None:
        """第1版 = 1, 第2版 = 2 …; None for a preview, which is never a version."""
        return None if self.provisional else self.outputs.version or None

    def output_paths(self) -> dict[str, str | None]:
        """The bulletin's files: xlsx, html, docx, pdf and the results json."""
        return {**{kind: str(path) for kind, path in self.outputs.files.items()}, "json": str(self.outputs.json)}

    def to_json(self) -> dict[str, Any]:
        """The `run --json` document (period, assessments, outputs: a contract), plus `ingest`, `delivery`, `provisional` (a preview) and the
        bulletin's version (`bulletin_version`, and `correction`: what it changed, [] for the first)."""
        doc: dict[str, Any] = {
            "period": str(self.period),
            "provisional": self.provisional,
            "bulletin_version": self.bulletin_version,
            "correction": list(self.outputs.correction),
            "assessments": [r.to_json() for r in self.results],
            "outputs": self.output_paths(),
            "ingest": self.ingest,
            "delivery": {
                "delivered": self.delivered,
                "content_hash": self.content_hash,
                "mails": [d.to_json() for d in self.deliveries],
            },
        }
        if self.provisional:
            doc["preview"] = self.preview
            doc["delivery"]["skipped"] = PREVIEW_NOT_MAILED
        return doc

    def detail(self) -> dict[str, Any]:
        return {
            "provisional": self.provisional,
            "bulletin_version": self.bulletin_version,
            "content_hash": self.content_hash,
            "outputs": self.output_paths(),
            "assessments": [
                {"rulebook": r.rulebook, "version": r.version, "inputs_hash": r.inputs_hash}
                for r in self.results
            ],
            "ingest": self.ingest,
            "deliveries": [d.to_json() for d in self.deliveries],
        }


PREVIEW_NOT_MAILED = "预览不发送 / a provisional preview is never mailed"


def job_name(kind: Kind) -> str:
    return f"run_{kind}"


def preview_job_name(kind: Kind) -> str:
    """Previews are recorded apart: a preview's success must never count as the period's run."""
    return f"preview_{kind}"


def not_assessable_message(period: Period, results: Sequence[AssessmentResult]) -> str:
    """One line: which rulebooks cannot rank this period, and every reason why."""
    parts = [f"《{r.title}》（{r.rulebook}）：{'；'.join(r.reasons)}" for r in results]
    return (
        f"{period.label}不具备考核条件，未排名、未结算、未发布通报；补齐后重新运行，或加 --provisional 预览 / "
        f"{period} cannot be assessed, nothing ranked, settled or published: " + "；".join(parts)
    )


def run_period(
    ws: Workspace,
    period: Period,
    *,
    now: datetime,
    deliver: bool = True,
    resend: bool = False,
    provisional: bool = False,
    steps: Steps = DEFAULT_STEPS,
    origin: str = "cli",
    clock: Callable[[], datetime] | None = None,
    wait: float | None = None,
) -> RunResult:
    """The whole period job: collect, assess, render, deliver.

    Idempotent: the same inputs give the same bulletin, byte for byte, and a bulletin already
    sent with that content hash is not sent again (unless `resend`). Any change in what the
    bulletin prints (results, cluster tables, goals, reporting status) is a correction and
    goes out again as the period's next version (`bulletin_edition`): 【更正】…（第2版）, saying
    what changed against the version before.

    A period whose deadline has not passed is refused (`due.NotYetDue`, nothing recorded), and
    one with too little data or too few targets to rank on fails like any job (recorded, the
    administrator told), unless `provisional`: then the run writes a preview bulletin, marked
    on every page, stored nowhere and never mailed, that says why there is no ranking.
    """
    before_deadline = require_due(ws.settings.deadlines, period, now, provisional=provisional)
    preview_kw: dict[str, Any] = {"provisional": True} if provisional else {}

    def body(ctx: JobContext) -> RunResult:
        ingest = _ingest_summary(steps.collect_inbox(ws, now=now))
        lost = _not_stored(ingest)
        if lost:  # assessing without them would publish a bulletin that misses them
            raise SuperviseError(lost)
        ctx.checkpoint("collected")
        results = steps.run_assessments(ws, period, now=now, **preview_kw)
        if not results:
            raise SuperviseError(
                f"没有适用于{period.label}的考核规则 / no rulebook in {ws.rules_dir} has "
                f"period = \"{period.kind}\""
            )
        unranked = [r for r in results if not r.assessable]
        if unranked and not provisional:  # ranking on nothing would move money on nothing
            raise SuperviseError(not_assessable_message(period, unranked))
        ctx.checkpoint("assessed")
        if provisional:
            mark = preview_mark(before_deadline=before_deadline, reasons=[x for r in unranked for x in r.reasons])
            outputs = steps.render_bulletins(ws, period, results, now=now, preview=mark)
            log.warning("%s %s: %s", period, mark, PREVIEW_NOT_MAILED)
            return RunResult(period, results, outputs, ingest, delivered=False, provisional=True, preview=mark)
        # A run that delivers publishes a version (mailed, or kept in the outbox until it is);
        # --no-deliver shows which version it would be and records none.
        edition_of = functools.partial(
            bulletin_edition, ctx.conn, str(period), summarize_results(results), now=now, run_id=ctx.run_id,
            record=deliver,
        )
        outputs = steps.render_bulletins(ws, period, results, now=now, edition_of=edition_of)
        ctx.checkpoint("rendered")
        result = RunResult(period, results, outputs, ingest, delivered=deliver)
        if not deliver:
            return result
        outbox = Outbox.open(ws, ctx.conn, checkpoint=ctx.checkpoint)
        recipients = outbox.settings.recipients
        issuer = ws.settings.bureau.issuer
        if not recipients:
            log.warning("no [delivery] recipients configured: the bulletin for %s is not mailed", period)
        for recipient in recipients:
            queued = outbox.queue(
                kind="bulletin",
                period=str(period),
                recipient=recipient,
                subject=outputs.subject or outputs.title,
                content_hash=result.content_hash,
                message=functools.partial(
                    bulletin_message, outputs, recipient, sender=outbox.smtp.sender, issuer=issuer, now=now
                ),
                now=now,
                job_run_id=ctx.run_id,
                resend=resend,
            )
            if queued is None:
                log.info("bulletin %s already sent to %s; not sending it again", period, recipient)
                result.deliveries.append(
                    DeliveryOutcome(0, "bulletin", str(period), recipient, "skipped", "already sent")
                )
        ctx.checkpoint("queued")
        outbox.flush(now)
        result.deliveries += outbox.outcomes
        if outbox.failed:
            raise PartialFailure(_failed_message(outbox.failed), result)
        return result

    if provisional:  # asked for by a person, who sees any failure: no alert to the administrator
        return run_job(ws, preview_job_name(period.kind), str(period), body, now=now, origin=origin,
                       clock=clock, wait=wait, alert=False)
    return run_job(ws, job_name(period.kind), str(period), body, now=now, origin=origin, clock=clock, wait=wait)


def run_due(ws: Workspace, kind: Kind, *, now: datetime, **kw: Any) -> RunResult:
    """Run the period of `kind` whose deadline passed most recently."""
    return run_period(ws, ws.settings.deadlines.due_now(kind, now), now=now, **kw)


def summarize_results(results: Sequence[AssessmentResult]) -> dict[str, Any]:
    """Each rulebook's scores, ranks and ledger: what the next version's correction is told against."""
    from ..bulletin.edition import summarize

    return summarize(results)


def bulletin_edition(
    conn: sqlite3.Connection,
    period: str,
    summary: dict[str, Any],
    draft_hash: str,
    *,
    now: datetime,
    run_id: int | None,
    record: bool,
) -> Edition:
    """Which version of the period's bulletin one saying `draft_hash` is, and what it corrects.

    The same as the latest version published: that version again (a re-run changes nothing).
    Otherwise the next one, a correction of the latest, recorded when `record` (the run
    delivers it). A version is told against the one before it: a bulletin changed back to what
    an older version said is still a new version, since its readers have the latest.
    """
    from ..bulletin.edition import changes
    from ..bulletin.model import Edition
    from ..store import editions

    latest = editions.latest_edition(conn, period)
    if latest is not None and latest.draft_hash == draft_hash:
        before = editions.get_edition(conn, period, latest.version - 1)
        return Edition(latest.version, changes(before.summary, latest.summary) if before else ())
    if latest is None:
        edition = Edition(1)
    else:
        edition = Edition(latest.version + 1, changes(latest.summary, summary))
    if record:
        editions.add_edition(conn, period=period, version=edition.version, draft_hash=draft_hash,
                             summary=summary, now=now, job_run_id=run_id)
        log.info("bulletin %s: version %d recorded", period, edition.version)
    return edition


def bulletin_message(
    outputs: BulletinOutputs, recipient: str, *, sender: str, issuer: str, now: datetime
) -> EmailMessage:
    """The bulletin mail: title as subject (a correction's marked 【更正】), the mail-friendly HTML
    as body, files attached."""
    html = outputs.email_html.read_text(encoding="utf-8")
    text = outputs.email_text or html_to_text(html)   # outputs made without the model: from the HTML
    return build_message(
        sender=sender, recipient=recipient, subject=outputs.subject or outputs.title, text=text,
        html=html,
        attachments=[Attachment(path, name) for path, name in outputs.attachments], now=now,
        sender_name=issuer,
    )


# ------------------------------------------------------------------ remind


@dataclass
class RemindResult:
    windows: list[dict[str, Any]] = field(default_factory=list)
    reminded: list[dict[str, Any]] = field(default_factory=list)   # county, period, address
    no_address: list[dict[str, Any]] = field(default_factory=list)  # counties nobody can be mailed
    deliveries: list[DeliveryOutcome] = field(default_factory=list)

    def detail(self) -> dict[str, Any]:
        return {
            "windows": self.windows,
            "reminded": self.reminded,
            "no_address": self.no_address,
            "deliveries": [d.to_json() for d in self.deliveries],
        }

    def to_json(self) -> dict[str, Any]:
        return self.detail()


def remind(
    ws: Workspace,
    now: datetime,
    period: Period | None = None,
    *,
    steps: Steps = DEFAULT_STEPS,
    origin: str = "cli",
    clock: Callable[[], datetime] | None = None,
    wait: float | None = None,
) -> RemindResult:
    """Mail the contacts of counties that have not reported (missing or rejected).

    Without a period: every reminder window open at `now` (none: nothing to do). Each county
    is reminded once per window; running again in the same window sends nothing.
    """
    deadlines = ws.settings.deadlines
    days = ws.settings.reminder_days
    before, after = days.before, days.after
    if period is None:
        windows = windows_at(now, deadlines, before, after)
    elif isinstance(period, (Month, Quarter)):
        early = not_open(deadlines, period, now)
        if early:
            raise SuperviseError(early)
        windows = [window_now(period, now, deadlines, before, after)]
    else:
        raise SuperviseError(f"催报只针对月报或季度更新 / reminders are for a month or a quarter, not {period}")

    def body(ctx: JobContext) -> RemindResult:
        result = RemindResult()
        outbox = Outbox.open(ws, ctx.conn)
        for w in windows:
            _remind_window(ws, ctx, outbox, w, result, steps)
        outbox.flush(now)
        result.deliveries += outbox.outcomes
        if outbox.failed:
            raise PartialFailure(_failed_message(outbox.failed), result)
        return result

    label = str(period) if period else None
    return run_job(ws, "remind", label, body, now=now, origin=origin, clock=clock, wait=wait)


def _remind_window(
    ws: Workspace, ctx: JobContext, outbox: Outbox, w: Window, result: RemindResult, steps: Steps
) -> None:
    registry = ws.registry
    statuses = steps.reporting_status(ctx.conn, registry, w.period, ws.settings.deadlines)
    result.windows.append({"period": str(w.period), "window": w.key, "due_day": w.due_day.isoformat()})
    bureau = ws.settings.bureau
    today = ctx.now.astimezone(TZ).date()
    for s in statuses:
        if s.state not in ("missing", "rejected"):
            continue
        county = registry.counties.get(s.county_code)
        emails = county.emails if county else ()
        if not emails:
            log.warning("%s %s has not reported %s, but has no e-mail in reference/counties.csv",
                        s.county_code, s.county_name, w.period)
            result.no_address.append({"county_code": s.county_code, "county_name": s.county_name})
            continue
        subject, text = reminder_text(
            county_name=s.county_name,
            period=w.period,
            state=s.state,
            reason=s.reason,
            clusters=[c.name for c in registry.clusters_of(s.county_code)],
            due_day=w.due_day,
            today=today,
            issuer=bureau.issuer,
            city=bureau.city,
            returned=s.returned,
        )
        key = hashlib.sha256(f"{w.period}|{w.key}|{s.county_code}".encode()).hexdigest()
        for address in emails:
            queued = outbox.queue(
                kind="reminder",
                period=str(w.period),
                recipient=address,
                subject=subject,
                content_hash=key,
                message=functools.partial(
                    build_message, sender=outbox.smtp.sender, recipient=address, subject=subject,
                    text=text, now=ctx.now, sender_name=bureau.issuer,
                ),
                now=ctx.now,
                job_run_id=ctx.run_id,
            )
            if queued is not None:
                result.reminded.append(
                    {"county_code": s.county_code, "county_name": s.county_name, "period": str(w.period),
                     "window": w.key, "recipient": address, "state": s.state}
                )
