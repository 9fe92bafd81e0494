"""Commands of the intake area: templates, ingest, status, history, reject."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, cast

import click

from .cli import cli, emit_json, json_option, now, period_options, workspace_required
from .cli_text import safe_markup, safe_text
from .periods import Period, parse_time
from .workspace import Workspace


# rich is imported when something is printed for a person, not for --json.
class _LazyConsole:
    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._console: Any = None
        self._columns: str | None = None

    def __getattr__(self, name: str) -> Any:
        # rich reads COLUMNS when a Console is made: a new width (another invocation in the same
        # process, as in tests) gets a new Console.
        columns = os.environ.get("COLUMNS")
        if self._console is None or columns != self._columns:
            from rich.console import Console

            self._console = Console(**self._kwargs)
            self._columns = columns
        return getattr(self._console, name)


def Table(*args: Any, **kwargs: Any) -> Any:
    from rich.table import Table as _Table

    return _Table(*args, **kwargs)


_err = _LazyConsole(stderr=True)
_out = _LazyConsole()
VERDICT_LABELS = {"accepted": "通过 accepted", "warning": "通过（有提示）warning", "rejected": "退回 rejected"}


@cli.command()
@period_options("month", "quarter")
@click.option("--county", metavar="CODE", help="Only this county (6-digit code).")
@json_option
@workspace_required
def templates(ws: Workspace, period: Period, county: str | None, as_json: bool) -> None:
    """Write blank templates (one .xlsx per county) into outbox/templates/<period>/."""
    from .intake.templates import write_templates

    written = write_templates(ws, period, county)
    if as_json:
        emit_json({"templates": written})
        return
    for t in written:
        click.echo(safe_text(t["path"]))
    click.echo(f"{len(written)} 份模板 / templates written", err=True)


@cli.command()
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--county", metavar="CODE", help="The sending county (6-digit code).")
@click.option("--received-at", metavar="ISO-8601", help="When the files really arrived (default: now).")
@click.option("--dry-run", is_flag=True, help="Validate and report; archive and store nothing.")
@json_option
@workspace_required
def ingest(ws: Workspace, files: tuple[Path, ...], county: str | None, received_at: str | None,
           dry_run: bool, as_json: bool) -> None:
    """Ingest FILES (default: everything in inbox/). A rejected file is a verdict, not a failure."""
    from .intake.ingest import collect_inbox, inbox_files, ingest_files

    when = None
    if received_at:
        try:
            when = parse_time(received_at)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--received-at") from None
    if county is not None and county not in ws.registry.counties:
        raise click.BadParameter(f"unknown county code {county!r}", param_hint="--county")
    if not files and county is not None:
        raise click.UsageError("--county names the sender of FILES; the inbox uses inbox/<code>/")
    at = now()
    with _write_locks(ws, inbox=not files, dry_run=dry_run, now=at):
        # Listing the inbox only sizes the bar: not done for --json, cron or a pipe.
        for_person = not as_json and _err.is_terminal
        count = len(files) if files else (len(inbox_files(ws)) if for_person else 0)
        show_bar = for_person and count >= 5
        with _progress(show_bar, count) as progress:
            if files:
                report = ingest_files(ws, files, county=county, received_at=when, dry_run=dry_run,
                                      now=at, progress=progress)
            else:
                report = collect_inbox(ws, now=at, dry_run=dry_run, received_at=when, progress=progress)
    if as_json:
        emit_json(report.to_json())
    else:
        _print_report(report)
    lost = report.summary.get("not_stored", 0)
    if lost:
        raise click.ClickException(
            f"{lost} 个文件未能保存（数据库写入失败），已留在原处 / {lost} file(s) not stored "
            "(the database rolled back their batch); they were left in place, ingest them again")


@contextmanager
def _write_locks(ws: Workspace, *, inbox: bool, dry_run: bool, now: Any) -> Iterator[None]:
    """The locks the scheduled jobs take: reading the inbox takes the collect job's lock (so a
    `collect` beside it never reads the same files), and any ingest that stores takes the
    workspace lock (so it never writes beside a job). A dry run stores nothing and takes none."""
    if dry_run:
        yield
        return
    from .jobs.locks import WORKSPACE_LOCK, hold

    wait = ws.settings.jobs.lock_wait
    with ExitStack() as stack:
        if inbox:
            stack.enter_context(hold(ws.home, "collect", wait=wait, now=now))
        stack.enter_context(hold(ws.home, WORKSPACE_LOCK, wait=wait, now=now))
        yield


class _progress:
    """A rich progress bar on stderr, or nothing."""

    def __init__(self, show: bool, total: int) -> None:
        self.show = show
        self.total = total
        self.bar: Any = None

    def __enter__(self) -> Any:
        if not self.show:
            return None
        from rich.progress import Progress

        self.bar = Progress(console=cast(Any, _err), transient=True)
        self.bar.start()
        task = self.bar.add_task("ingest", total=self.total)

        def update(i: int, n: int, name: str) -> None:
            self.bar.update(task, completed=i, description=safe_markup(os.path.basename(name) or "ingest"))

        return update

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _print_report(report: Any) -> None:
    table = Table(title="报送文件 / files", show_lines=False)
    for col in ("文件 file", "县 county", "报告期 period", "结论 verdict", "问题 problems"):
        table.add_column(col)
    for f in report.files:
        verdict = VERDICT_LABELS.get(f.verdict, f.verdict) + ("（未变 unchanged）" if f.unchanged else "")
        problems = "\n".join(safe_markup(f"[{p.code}] {p.where}: {p.message}") for p in f.problems[:8])
        if len(f.problems) > 8:
            problems += f"\n… 共 {len(f.problems)} 个问题"
        table.add_row(safe_markup(os.path.basename(f.file)), safe_markup(f.county_code or ""),
                      safe_markup(f.period or ""), verdict, problems)
    _out.print(table)
    s = report.summary
    prefix = "（试运行，未保存 / dry run, nothing stored）" if report.dry_run else ""
    _out.print(
        f"{prefix}通过 accepted {s['accepted']}，有提示 warning {s['warning']}，退回 rejected {s['rejected']}，"
        f"未变 unchanged {s['unchanged']}，存储数值 values {s['values']}"
    )
    for skipped in report.skipped:
        _out.print(safe_markup(f"未处理 skipped: {skipped['file']}（{skipped['reason']}）"))


@cli.command()
@period_options("month", "quarter")
@json_option
@workspace_required
def status(ws: Workspace, period: Period, as_json: bool) -> None:
    """Who reported on time, late (迟报), not at all (漏报), or was sent back (退回).

    Before the period's deadline a county that has sent nothing is shown as 未到截止 (not_due),
    not 漏报: the period is still open, and the board is what staff watch while it is."""
    from .status import status_report

    conn = ws.connect()
    try:
        doc = status_report(conn, ws.registry, period, ws.settings.deadlines, now())
    finally:
        conn.close()
    if as_json:
        emit_json(doc)
        return
    table = Table(title=f"{period.label} 报送情况 / reporting status (截止 due {doc['due']})")
    for col in ("代码 code", "县（市）county", "状态 state", "收到时间 received", "迟报天数 days late", "说明 note"):
        table.add_column(col)
    from .status import STATE_LABELS

    counties: list[dict[str, Any]] = doc["counties"]  # type: ignore[assignment]
    for c in counties:
        if c.get("returned_at"):
            note = f"退回原因 reason: {c['reason']}（{c['returned_at'][:16].replace('T', ' ')} 退回）"
        else:
            note = c["reason"] or (f"{c['warnings']} 条提示 warnings" if c["warnings"] else "")
        table.add_row(safe_markup(c["county_code"]), safe_markup(c["county_name"]),
                      f"{STATE_LABELS[c['state']]} {c['state']}",
                      safe_markup((c["received_at"] or "")[:16].replace("T", " ")), str(c["days_late"] or ""),
                      safe_markup(note))
    _out.print(table)
    _out.print(f"报送率 completeness {doc['completeness']}%，及时率 timeliness {doc['timeliness']}%")
    if "note" in doc:
        _out.print(safe_markup(f"{doc['note']} / not yet due: counties that have not reported are not_due, not missing"))


@cli.command()
@click.option("--county", metavar="CODE", required=True, help="County (6-digit code).")
@period_options("month", "quarter")
@json_option
@workspace_required
def history(ws: Workspace, county: str, period: Period, as_json: bool) -> None:
    """Every version a county sent for a period, and the values that changed between them."""
    from .intake.ingest import history as load_history

    if county not in ws.registry.counties:
        raise click.BadParameter(f"unknown county code {county!r}", param_hint="--county")
    doc = load_history(ws, county, period)
    if as_json:
        emit_json(doc)
        return
    table = Table(title=safe_markup(f"{ws.registry.county_name(county)} {period.label} 报送记录 / history"))
    for col in ("#", "收到 received", "来源 source", "文件 file", "SHA-256", "结论 verdict", "状态 state"):
        table.add_column(col)
    for v in doc["versions"]:
        table.add_row(str(v["submission_id"]), safe_markup(v["received_at"][:16].replace("T", " ")),
                      safe_markup(f"{v['source']} {v['sender_code'] or ''}"), safe_markup(v["file_name"]),
                      safe_markup(v["sha256"][:12]), safe_markup(v["verdict"]), safe_markup(v["state"]))
    _out.print(table)
    for ch in doc["changes"]:
        _out.print(f"#{ch['from']} → #{ch['to']}: {len(ch['changes'])} 项变化 changed")
        for c in ch["changes"]:   # submitted text may hold anything, "[/x]" and ESC included
            _out.print(safe_markup(f"  {c['cluster_code']} {c['indicator']}: {c['old']} → {c['new']}"))
    for a in doc["audit"]:
        if a["action"] == "reject":
            _out.print(safe_markup(f"退回 returned {a['at'][:16].replace('T', ' ')} by {a['actor']}: "
                                   f"{a['detail'].get('reason', '')}"))


@cli.command()
@click.option("--county", metavar="CODE", required=True, help="County (6-digit code).")
@period_options("month", "quarter")
@click.option("--reason", required=True, help="Why the data are sent back (mailed to the county's contacts).")
@click.option("--actor", default=None, help="Who sends it back (default: the login name).")
@json_option
@workspace_required
def reject(ws: Workspace, county: str, period: Period, reason: str, actor: str | None, as_json: bool) -> None:
    """退回: send a county's accepted submission back; it counts as rejected until resubmitted.

    The county's contacts (the email column of reference/counties.csv) are mailed the reason
    and what to do; a mail the server does not take waits in the outbox for the next collect.
    """
    from .intake.ingest import reject_submission

    who = actor or os.environ.get("USER") or "staff"
    doc = reject_submission(ws, county, period, reason, actor=who, now=now())
    notice = doc["notice"]
    if as_json:
        emit_json(doc)
    else:
        click.echo(safe_text(f"已退回 returned: {county} {period} (#{doc['submission_id']})：{reason}"))
        _echo_notice(notice)
    if notice["error"]:
        raise click.ClickException(
            f"已退回，但退回通知未能放入发件箱，请另行通知该县 / returned, but the notice could not be "
            f"queued; tell the county by other means: {notice['error']}")


def _echo_notice(notice: dict[str, Any]) -> None:
    """Where the 退回通知 went: sent, waiting in the outbox, or nobody to mail."""
    if notice["no_address"]:
        click.echo("  退回通知未发送：reference/counties.csv 中该县没有 email / no e-mail for this county; "
                   "tell it by other means")
        return
    for d in notice["deliveries"]:
        if d["state"] == "sent":
            click.echo(safe_text(f"  退回通知已发送 notice sent: {d['recipient']}"))
        elif d["state"] == "failed":
            click.echo(safe_text(f"  退回通知未能发出，已留在 outbox 待下次 collect 重发 / notice kept in the "
                                 f"outbox for the next collect: {d['recipient']} ({d['error']})"))
        else:
            click.echo(safe_text(f"  退回通知 notice {d['state']}: {d['recipient']}"))
