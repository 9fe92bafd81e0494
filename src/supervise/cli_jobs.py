"""Commands of the jobs area: run, collect, remind, catch-up, scheduler, crontab, runs."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, TypeVar

import click

from .cli import (
    cli,
    emit_json,
    json_option,
    now,
    pass_workspace,
    period_options,
    workspace_required,
)
from .cli_text import safe_text
from .periods import Kind, Period
from .workspace import Workspace

if TYPE_CHECKING:  # the jobs are imported when a job command runs, not at start-up
    from .jobs.runner import JobFailed


class _Document(Protocol):
    def to_json(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=_Document)


def _fail_after_printing(exc: JobFailed, as_json: bool) -> NoReturn:
    """A failed job still shows what it did (the JSON document), then exits non-zero."""
    result = exc.result
    if as_json and result is not None:
        emit_json(result.to_json())
    raise exc


def _job(call: Callable[[], R], as_json: bool) -> R | None:
    """Run a job for the CLI: its result, or None once `--json` printed it (then nothing else
    is to be printed). A failed job prints what it did and exits non-zero."""
    from .jobs.runner import JobFailed

    try:
        result = call()
    except JobFailed as exc:
        _fail_after_printing(exc, as_json)
    if as_json:
        emit_json(result.to_json())
        return None
    return result


@cli.command()
@period_options("month", "quarter", "year", required=False)
@click.option("--due", type=click.Choice(["month", "quarter", "year"]), default=None,
              help="Without a period: the month, quarter or year due now (default: month).")
@click.option("--no-deliver", is_flag=True, help="Write the bulletins but mail nothing.")
@click.option("--resend", is_flag=True, help="Mail the bulletin again even if it was already sent.")
@click.option("--provisional", is_flag=True,
              help="A preview: allowed before the deadline and without enough data to rank; marked "
                   "预览 on every page, written beside the bulletin, never stored or mailed.")
@json_option
@workspace_required
def run(ws: Workspace, period: Period | None, due: Kind | None, no_deliver: bool, resend: bool,
        provisional: bool, as_json: bool) -> None:
    """Run the period job: collect the inbox, assess, write the bulletins, mail them.

    Without --month/--quarter/--year it runs the period whose deadline passed last. Running a
    period again with the same data changes nothing and mails nothing; changed results are
    mailed again as a correction. A period whose deadline has not passed is refused, and one
    with too little data or too few targets to rank on fails, unless --provisional.
    """
    from .jobs import run_due, run_period

    if period is not None and due is not None:
        raise click.UsageError("give a period or --due, not both")
    if provisional and period is None:
        raise click.UsageError("--provisional previews a period: give --month, --quarter or --year")
    result = _job(
        lambda: run_period(ws, period, now=now(), deliver=not no_deliver, resend=resend,
                           provisional=provisional, clock=now)
        if period is not None
        else run_due(ws, due or "month", now=now(), deliver=not no_deliver, resend=resend, clock=now),
        as_json,
    )
    if result is None:
        return
    click.echo(safe_text(f"{result.period}: {len(result.results)} assessment(s)"))
    if result.provisional:
        click.echo(safe_text(f"  {result.preview}"))
    for r in result.results:
        if getattr(r, "assessable", True):
            click.echo(safe_text(f"  {r.rulebook} {r.version}: {len(getattr(r, 'units', []))} counties ranked"))
        else:
            click.echo(safe_text(f"  {r.rulebook} {r.version}: 不予排名 / not ranked: {'；'.join(r.reasons)}"))
    for key, path in result.output_paths().items():
        if path:
            click.echo(safe_text(f"  {key}: {path}"))
    _echo_deliveries(result.deliveries, result.delivered, result.provisional)


def _echo_deliveries(deliveries: list[Any], delivered: bool = True, provisional: bool = False) -> None:
    if provisional:
        from .jobs.tasks import PREVIEW_NOT_MAILED

        click.echo(f"  mail: {PREVIEW_NOT_MAILED}")
        return
    if not delivered:
        click.echo("  mail: not delivered (--no-deliver)")
        return
    counts: dict[str, int] = {}
    for d in deliveries:
        counts[d.state] = counts.get(d.state, 0) + 1
    if counts:
        click.echo(safe_text("  mail: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))))


@cli.command()
@json_option
@workspace_required
def collect(ws: Workspace, as_json: bool) -> None:
    """Ingest the inbox and retry mail waiting in the outbox (the hourly job)."""
    from .jobs import collect as collect_job

    result = _job(lambda: collect_job(ws, now(), clock=now), as_json)
    if result is None:
        return
    summary = ", ".join(f"{k} {v}" for k, v in result.ingest.items())
    click.echo(safe_text(f"inbox: {summary or 'nothing new'}"))
    _echo_deliveries(result.deliveries)


@cli.command()
@period_options("month", "quarter", required=False)
@json_option
@workspace_required
def remind(ws: Workspace, period: Period | None, as_json: bool) -> None:
    """Mail a 催报 to the contacts of counties that have not reported (漏报 or 退回).

    Without a period: the reminder windows open today (see [deadlines] remind_days_before
    and remind_days_after). Each county is reminded at most once per window.
    """
    from .jobs import remind as remind_job

    result = _job(lambda: remind_job(ws, now(), period, clock=now), as_json)
    if result is None:
        return
    if not result.windows:
        click.echo("no reminder is due today")
    for w in result.windows:
        click.echo(safe_text(f"{w['period']} ({w['window']}, due {w['due_day']})"))
    for r in result.reminded:
        click.echo(safe_text(f"  reminded {r['county_name']} <{r['recipient']}>"))
    for r in result.no_address:
        click.echo(safe_text(f"  no e-mail for {r['county_name']} ({r['county_code']}) in reference/counties.csv"))
    _echo_deliveries(result.deliveries)


@cli.command("catch-up")
@json_option
@workspace_required
def catch_up_command(ws: Workspace, as_json: bool) -> None:
    """Run what the schedule missed while the server was down, and retry failed period runs."""
    from .scheduler import catch_up

    result = _job(lambda: catch_up(ws, now(), clock=now), as_json)
    if result is None:
        return
    if not result.items:
        click.echo("nothing was missed")
    for i in result.items:
        click.echo(safe_text(f"{i.job} {i.period or ''} (missed {i.missed_at}): {i.state}"))


@cli.command()
@workspace_required
def scheduler(ws: Workspace) -> None:
    """Run the schedule (jobs/schedule.toml) in the foreground, for systemd.

    Catches up missed runs at start; stops on SIGTERM after the running job. Logs to stderr.
    """
    from .scheduler import serve

    serve(ws, clock=now)


def default_executable() -> str:
    """The absolute path of the `supervise` command that cron and systemd should run.

    The command being run now (a venv's bin/supervise need not be on cron's PATH), else the
    script installed beside this interpreter, else one on PATH, else `python -m supervise`.
    """
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    candidates = [
        argv0 if argv0 is not None and argv0.name == "supervise" else None,
        Path(sys.executable).with_name("supervise"),
        Path(shutil.which("supervise") or "supervise"),
    ]
    for c in candidates:
        if c is not None and c.is_file() and os.access(c, os.X_OK):
            return str(c.absolute())
    return f"{sys.executable} -m supervise"


@cli.command()
@click.option("--executable", metavar="PATH", help="The supervise command to run (default: this one).")
@click.option("--systemd", "systemd_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Instead of printing cron lines, write a .service and .timer per job into DIR.")
@click.option("--user", default="supervise", show_default=True, help="User= of the systemd services.")
@pass_workspace
def crontab(ws: Workspace, executable: str | None, systemd_dir: Path | None, user: str) -> None:
    """Print the schedule as cron lines (install with `supervise crontab | crontab -`)."""
    from .jobs.schedule import crontab_text, systemd_units
    from .scheduler import workspace_schedule

    exe = executable or default_executable()
    schedule = workspace_schedule(ws)
    if systemd_dir is None:
        click.echo(crontab_text(schedule, home=ws.home, executable=exe), nl=False)
        return
    systemd_dir.mkdir(parents=True, exist_ok=True)
    for name, text in systemd_units(schedule, home=ws.home, executable=exe, user=user).items():
        (systemd_dir / name).write_text(text, encoding="utf-8")
        click.echo(safe_text(systemd_dir / name))


@cli.command()
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--job", help="Only this job (collect, remind, run_month, ...).")
@json_option
@workspace_required
def runs(ws: Workspace, limit: int, job: str | None, as_json: bool) -> None:
    """List recent job runs (newest first) and mail waiting in the outbox."""
    from .store import runs as store_runs

    conn = ws.connect()
    try:
        recent = store_runs.recent_runs(conn, limit=limit, job=job)
        unsent = store_runs.unsent_deliveries(conn)
    finally:
        conn.close()
    if as_json:
        emit_json({"runs": [r.to_json() for r in recent], "outbox": [d.to_json() for d in unsent]})
        return
    for r in recent:
        line = f"{r.id:>5} {r.started_at} {r.job:<11} {r.period or '-':<8} {r.state:<8} {r.origin}"
        if r.error:
            line += f"  {r.error}"
        click.echo(safe_text(line))
    if unsent:
        click.echo(f"outbox: {len(unsent)} mail(s) waiting to be sent again")
        for d in unsent:
            click.echo(safe_text(f"  {d.id} {d.kind} {d.period or ''} {d.recipient} ({d.attempts} attempts): "
                                 f"{d.last_error}"))
