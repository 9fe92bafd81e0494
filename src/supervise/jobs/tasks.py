"""The jobs: collect, remind and the period runs. Each takes `now`; none reads the clock.

They call the same library functions as the CLI (intake, assessment, bulletins), passed in
as `Steps` so that each piece can be tested with small fakes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from ..delivery import Attachment, DeliveryOutcome, Outbox, build_message, html_to_text
from ..errors import SuperviseError
from ..periods import TZ, Kind, Month, Period, Quarter
from ..workspace import Workspace
from .reminders import Window, reminder_text, window_now, windows_at
from .runner import JobContext, PartialFailure, run_job

log = logging.getLogger("supervise.jobs")


# ------------------------------------------------------------------ the other areas


def _collect_inbox(ws: Workspace, *, now: datetime) -> Any:
    from ..intake.ingest import collect_inbox

    return collect_inbox(ws, now=now)


def _run_assessments(ws: Workspace, period: Period, *, now: datetime) -> list[Any]:
    from ..assess import run_assessments  # type: ignore[attr-defined]

    return list(run_assessments(ws, period, now=now))


def _render_bulletins(ws: Workspace, period: Period, results: list[Any], *, now: datetime) -> Any:
    from ..bulletin import render_bulletins  # type: ignore[attr-defined]

    return render_bulletins(ws, period, results, now=now)


def _reporting_status(conn: Any, registry: Any, period: Period, deadlines: Any) -> list[Any]:
    from ..status import reporting_status

    return reporting_status(conn, registry, period, deadlines)


@dataclass(frozen=True)
class Steps:
    """The library calls a job makes, replaceable in tests."""

    collect_inbox: Callable[..., Any] = _collect_inbox
    run_assessments: Callable[..., list[Any]] = _run_assessments
    render_bulletins: Callable[..., Any] = _render_bulletins
    reporting_status: Callable[..., list[Any]] = _reporting_status


DEFAULT_STEPS = Steps()


def _ingest_summary(report: Any) -> dict[str, Any]:
    doc = report.to_json() if hasattr(report, "to_json") else dict(report or {})
    summary = dict(doc.get("summary", {}))
    summary.setdefault("files", len(doc.get("files", [])))
    return summary


# ------------------------------------------------------------------ collect


@dataclass
class CollectResult:
    ingest: dict[str, Any]
    deliveries: list[DeliveryOutcome] = field(default_factory=list)

    def detail(self) -> dict[str, Any]:
        return {"ingest": self.ingest, "deliveries": [d.to_json() for d in self.deliveries]}

    def to_json(self) -> dict[str, Any]:
        return self.detail()


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
        outbox = Outbox.open(ws, ctx.conn)
        outbox.flush(now)
        result.deliveries = outbox.outcomes
        if outbox.failed:
            raise PartialFailure(_failed_message(outbox.failed), result)
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
    results: list[Any]
    outputs: Any
    ingest: dict[str, Any]
    content_hash: str
    deliveries: list[DeliveryOutcome] = field(default_factory=list)
    delivered: bool = True

    def output_paths(self) -> dict[str, str | None]:
        return {k: _path(getattr(self.outputs, k, None)) for k in ("xlsx", "html", "json")}

    def to_json(self) -> dict[str, Any]:
        """The SPEC §10 run document, plus `ingest` and `delivery`."""
        return {
            "period": str(self.period),
            "assessments": [r.to_json() for r in self.results],
            "outputs": self.output_paths(),
            "ingest": self.ingest,
            "delivery": {
                "delivered": self.delivered,
                "content_hash": self.content_hash,
                "mails": [d.to_json() for d in self.deliveries],
            },
        }

    def detail(self) -> dict[str, Any]:
        return {
            "content_hash": self.content_hash,
            "outputs": self.output_paths(),
            "assessments": [
                {"rulebook": r.rulebook, "version": r.version, "inputs_hash": getattr(r, "inputs_hash", "")}
                for r in self.results
            ],
            "ingest": self.ingest,
            "deliveries": [d.to_json() for d in self.deliveries],
        }


def _path(p: Any) -> str | None:
    return str(p) if p else None


def results_hash(results: Sequence[Any]) -> str:
    """What a bulletin says: the same results give the same hash, whenever they are computed."""
    doc = [r.to_json() for r in results]
    return hashlib.sha256(json.dumps(doc, ensure_ascii=False, sort_keys=True, default=str).encode()).hexdigest()


def job_name(kind: Kind) -> str:
    return f"run_{kind}"


def run_period(
    ws: Workspace,
    period: Period,
    *,
    now: datetime,
    deliver: bool = True,
    resend: bool = False,
    steps: Steps = DEFAULT_STEPS,
    origin: str = "cli",
    clock: Callable[[], datetime] | None = None,
    wait: float | None = None,
) -> RunResult:
    """The whole period job: collect, assess, render, deliver.

    Idempotent: the same inputs give the same results and the same content hash, and a
    bulletin already sent with that hash is not sent again (unless `resend`). Changed results
    are a correction and go out again.
    """

    def body(ctx: JobContext) -> RunResult:
        ingest = _ingest_summary(steps.collect_inbox(ws, now=now))
        ctx.checkpoint("collected")
        results = steps.run_assessments(ws, period, now=now)
        if not results:
            raise SuperviseError(
                f"没有适用于{period.label}的考核规则 / no rulebook in {ws.rules_dir} has "
                f"period = \"{period.kind}\""
            )
        ctx.checkpoint("assessed")
        outputs = steps.render_bulletins(ws, period, results, now=now)
        ctx.checkpoint("rendered")
        result = RunResult(period, results, outputs, ingest, results_hash(results), delivered=deliver)
        if not deliver:
            return result
        outbox = Outbox.open(ws, ctx.conn, checkpoint=ctx.checkpoint)
        recipients = outbox.settings.recipients
        if not recipients:
            log.warning("no [delivery] recipients configured: the bulletin for %s is not mailed", period)
        for recipient in recipients:
            queued = outbox.queue(
                kind="bulletin",
                period=str(period),
                recipient=recipient,
                subject=_title(outputs, period),
                content_hash=result.content_hash,
                message=functools.partial(bulletin_message, ws, outputs, period, recipient, now=now),
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

    return run_job(ws, job_name(period.kind), str(period), body, now=now, origin=origin, clock=clock, wait=wait)


def run_due(ws: Workspace, kind: Kind, *, now: datetime, **kw: Any) -> RunResult:
    """Run the period of `kind` whose deadline passed most recently."""
    return run_period(ws, ws.settings.deadlines.due_now(kind, now), now=now, **kw)


def _title(outputs: Any, period: Period) -> str:
    title = getattr(outputs, "title", "") or ""
    return str(title) or f"{period.label}县域特色产业集群督导考核通报"


def _attachment_names(outputs: Any, period: Period) -> dict[str, str]:
    """The Chinese file names the recipient sees, from the bulletin (or its title)."""
    names = getattr(outputs, "attachment_names", None)
    if isinstance(names, dict) and names:
        return {str(k): str(v) for k, v in names.items()}
    title = _title(outputs, period)
    return {"xlsx": f"{title}.xlsx", "html": f"{title}.html"}


def bulletin_message(
    ws: Workspace, outputs: Any, period: Period, recipient: str, *, now: datetime
) -> EmailMessage:
    """The bulletin mail: title as subject, the mail-friendly HTML as body, files attached."""
    from ..delivery import SmtpSettings

    smtp = SmtpSettings.from_settings(ws.settings)
    email_html = getattr(outputs, "email_html", None)
    html = Path(email_html).read_text(encoding="utf-8") if email_html else None
    if html is None and getattr(outputs, "html", None):
        html = Path(outputs.html).read_text(encoding="utf-8")
    names = _attachment_names(outputs, period)
    attachments = [
        Attachment(Path(getattr(outputs, key)), names.get(key, Path(getattr(outputs, key)).name))
        for key in ("xlsx", "html")
        if getattr(outputs, key, None)
    ]
    text = html_to_text(html) if html else _title(outputs, period) + "\n"
    issuer = str(ws.settings.section("bureau").get("issuer", ""))
    return build_message(
        sender=smtp.sender, recipient=recipient, subject=_title(outputs, period), text=text, html=html,
        attachments=attachments, now=now, sender_name=issuer,
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


def _remind_days(ws: Workspace) -> tuple[list[int], list[int]]:
    d = ws.settings.section("deadlines")
    return [int(n) for n in d.get("remind_days_before", [])], [int(n) for n in d.get("remind_days_after", [])]


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
    before, after = _remind_days(ws)
    if period is None:
        windows = windows_at(now, deadlines, before, after)
    elif isinstance(period, (Month, Quarter)):
        windows = [window_now(period, now, deadlines, before, after)]
    else:
        raise SuperviseError(f"催报只针对月报或季度更新 / reminders are for a month or a quarter, not {period}")

    def body(ctx: JobContext) -> RemindResult:
        result = RemindResult()
        outbox = Outbox.open(ws, ctx.conn)
        for w in windows:
            _remind_window(ws, ctx, outbox, w, result, steps)
        outbox.flush(now, kinds=("reminder", "bulletin", "alert"))
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
    bureau = ws.settings.section("bureau")
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
            reason=getattr(s, "reason", ""),
            clusters=[c.name for c in registry.clusters_of(s.county_code)],
            due_day=w.due_day,
            today=today,
            issuer=str(bureau.get("issuer", "")),
            city=str(bureau.get("city", "")),
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
                    text=text, now=ctx.now, sender_name=str(bureau.get("issuer", "")),
                ),
                now=ctx.now,
                job_run_id=ctx.run_id,
            )
            if queued is not None:
                result.reminded.append(
                    {"county_code": s.county_code, "county_name": s.county_name, "period": str(w.period),
                     "window": w.key, "recipient": address, "state": s.state}
                )
