"""Commands of the jobs area: run, collect, remind, catch-up, scheduler, crontab, runs."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, TypeVar

import click

from . import cli_intake  # its names are read at call time: cli_intake may import this module first
from .cli import (
    cli,
    emit_json,
    json_option,
    now,
    pass_workspace,
    period_options,
    workspace_required,
)
from .cli_text import safe_markup, safe_text
from .labels import ORIGIN_LABELS
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
              help="不给报告期时：现在到期的月份、季度或年度（默认：month）。")
@click.option("--no-deliver", is_flag=True, help="只生成通报，不发送邮件。")
@click.option("--resend", is_flag=True, help="已发送过的通报也重新发送。")
@click.option("--provisional", is_flag=True,
              help="预览：截止前或数据不足时也可运行；每页标注“预览”，不保存、不发送。")
@json_option
@workspace_required
def run(ws: Workspace, period: Period | None, due: Kind | None, no_deliver: bool, resend: bool,
        provisional: bool, as_json: bool) -> None:
    """运行报告期任务：收取收件箱、考核、生成通报并发送。

    不给 --month/--quarter/--year 时，运行最近一个已过截止的报告期。数据不变时再次运行
    不改变任何内容、不发送邮件；结果有变化时作为更正重新发送。未到截止的报告期拒绝运行，
    数据或目标不足以排名的报告期运行失败，除非加 --provisional。
    """
    from .jobs import run_due, run_period

    if period is not None and due is not None:
        raise click.UsageError("报告期和 --due 只能给一个 / give a period or --due, not both")
    if provisional and period is None:
        raise click.UsageError("--provisional 预览一个报告期，请给出 --month、--quarter 或 --year / "
                               "--provisional previews a period: give --month, --quarter or --year")
    result = _job(
        lambda: run_period(ws, period, now=now(), deliver=not no_deliver, resend=resend,
                           provisional=provisional, clock=now)
        if period is not None
        else run_due(ws, due or "month", now=now(), deliver=not no_deliver, resend=resend, clock=now),
        as_json,
    )
    if result is None:
        return
    click.echo(safe_text(f"{result.period}：{len(result.results)} 项考核"))
    if result.provisional:
        click.echo(safe_text(f"  {result.preview}"))
    for r in result.results:
        if getattr(r, "assessable", True):
            click.echo(safe_text(f"  {r.rulebook} {r.version}：{len(getattr(r, 'units', []))} 个单位参加排名"))
        else:
            click.echo(safe_text(f"  {r.rulebook} {r.version}：不予排名：{'；'.join(r.reasons)}"))
    for key, path in result.output_paths().items():
        if path:
            click.echo(safe_text(f"  {OUTPUT_LABELS.get(key, key)}：{path}"))
    if not result.provisional and _same_as_last_run(ws, result):
        click.echo(f"  {cli_intake.UNCHANGED_LABEL}：通报与上次运行时相同")
    _echo_deliveries(result.deliveries, result.delivered, result.provisional)


OUTPUT_LABELS = {"xlsx": "Excel 通报", "html": "网页通报", "docx": "Word 公文", "pdf": "PDF 通报", "json": "结果数据"}
MAIL_STATE_LABELS = {"sent": "已发送", "failed": "未发出（留在 outbox 待重发）", "pending": "待发送",
                     "skipped": "已发送过，未重发", "superseded": "已被替代"}


def _same_as_last_run(ws: Workspace, result: Any) -> bool:
    """Whether the period's previous successful run wrote the same bulletin (a re-run that changed nothing)."""
    from .jobs.tasks import job_name
    from .store import runs as store_runs

    conn = ws.connect()
    try:
        done = [r for r in store_runs.recent_runs(conn, limit=50, job=job_name(result.period.kind))
                if r.period == str(result.period) and r.state == "success"]
    finally:
        conn.close()
    return len(done) >= 2 and done[1].detail.get("content_hash") == result.content_hash


def _echo_deliveries(deliveries: list[Any], delivered: bool = True, provisional: bool = False) -> None:
    if provisional:
        click.echo("  邮件：预览不发送")
        return
    if not delivered:
        click.echo("  邮件：未发送（--no-deliver）")
        return
    counts: dict[str, int] = {}
    for d in deliveries:
        counts[d.state] = counts.get(d.state, 0) + 1
    if counts:
        click.echo(safe_text("  邮件：" + "，".join(f"{MAIL_STATE_LABELS.get(k, k)} {v}"
                                                 for k, v in sorted(counts.items()))))


@cli.command()
@json_option
@workspace_required
def collect(ws: Workspace, as_json: bool) -> None:
    """收取收件箱和报送邮箱（[imap]）中的文件，并重发 outbox 中待发的邮件（每小时任务）。"""
    from .jobs import collect as collect_job

    result = _job(lambda: collect_job(ws, now(), clock=now), as_json)
    if result is None:
        return
    click.echo(safe_text(f"收件箱：{cli_intake.ingest_summary_line(result.ingest)}"))
    if result.mail is not None and result.mail.enabled:
        click.echo(safe_text(f"报送邮箱：{result.mail.summary_line()}"))
        for m in result.mail.set_aside:
            click.echo(safe_text(f"  未收取：{m.sender or '（无发件人）'}「{m.subject}」：{m.reason_text}"))
    _echo_deliveries(result.deliveries)


@cli.command()
@period_options("month", "quarter", required=False)
@json_option
@workspace_required
def remind(ws: Workspace, period: Period | None, as_json: bool) -> None:
    """向尚未报送（未报送或被退回）的县联系人发送催报邮件。

    不给报告期时：今天开放的催报时段（见 [deadlines] remind_days_before 和
    remind_days_after）。每个时段每县最多催报一次。
    """
    from .jobs import remind as remind_job

    result = _job(lambda: remind_job(ws, now(), period, clock=now), as_json)
    if result is None:
        return
    if not result.windows:
        click.echo("今天没有需要发送的催报")
    for w in result.windows:
        click.echo(safe_text(f"{w['period']}（{window_label(str(w['window']))}，截止 {w['due_day']}）"))
    for r in result.reminded:
        click.echo(safe_text(f"  已催报：{r['county_name']} <{r['recipient']}>"))
    for r in result.no_address:
        click.echo(safe_text(f"  reference/counties.csv 中没有{r['county_name']}（{r['county_code']}）的 email，未催报"))
    _echo_deliveries(result.deliveries)


def window_label(key: str) -> str:
    """A reminder window in words: before2 → 截止前2天, before0 → 截止当天, after1 → 截止后1天."""
    for prefix, words in (("before", "截止前{}天"), ("after", "截止后{}天")):
        if key.startswith(prefix) and key[len(prefix):].isdigit():
            days = int(key[len(prefix):])
            return "截止当天" if days == 0 else words.format(days)
    if key.startswith("manual-"):
        return f"手动催报 {key[len('manual-'):]}"
    return key


@cli.command("catch-up")
@json_option
@workspace_required
def catch_up_command(ws: Workspace, as_json: bool) -> None:
    """补跑停机期间调度错过的任务，并重试失败的报告期任务。"""
    from .scheduler import catch_up

    result = _job(lambda: catch_up(ws, now(), clock=now), as_json)
    if result is None:
        return
    if not result.items:
        click.echo("没有错过的任务")
    for i in result.items:
        click.echo(safe_text(f"{i.job} {i.period or ''}（错过 {i.missed_at}）：{RUN_STATE_LABELS.get(i.state, i.state)}"))


@cli.command()
@workspace_required
def scheduler(ws: Workspace) -> None:
    """在前台按计划（jobs/schedule.toml）运行任务，供 systemd 使用。

    启动时补跑错过的任务；收到 SIGTERM 时等正在运行的任务结束后停止。日志写入 stderr。
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
@click.option("--executable", metavar="PATH", help="要运行的 supervise 命令（默认：当前这个）。")
@click.option("--systemd", "systemd_dir", type=click.Path(file_okay=False, path_type=Path),
              help="不输出 cron 行，而是在 DIR 中为每个任务写一个 .service 和 .timer。")
@click.option("--user", default="supervise", show_default=True, help="systemd 服务的 User=。")
@pass_workspace
def crontab(ws: Workspace, executable: str | None, systemd_dir: Path | None, user: str) -> None:
    """以 cron 行输出计划（用 `supervise crontab | crontab -` 安装）。"""
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
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000), help="最多列出几条。")
@click.option("--job", help="只看该任务（collect、remind、run_month……）。")
@json_option
@workspace_required
def runs(ws: Workspace, limit: int, job: str | None, as_json: bool) -> None:
    """列出最近的任务运行记录（最新的在前）和 outbox 中待发的邮件。"""
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
    if recent:
        _print_runs(recent)
    else:
        click.echo("没有任务运行记录")
    if unsent:
        click.echo(f"outbox：{len(unsent)} 封邮件待重发")
        for d in unsent:
            click.echo(safe_text(f"  {d.id} {d.kind} {d.period or ''} {d.recipient}（已尝试 {d.attempts} 次）："
                                 f"{d.last_error}"))


RUN_STATE_LABELS = {"running": "运行中", "success": "成功", "error": "失败", "skipped": "跳过"}
RUNS_HEADER = ("编号", "任务", "报告期", "开始", "结束", "用时", "结果", "来源", "说明")


def _print_runs(recent: list[Any]) -> None:
    table = cli_intake.Table(box=None, show_edge=False, pad_edge=False, header_style="bold")
    for col in RUNS_HEADER:
        table.add_column(col, justify="right" if col == "编号" else "left", no_wrap=col != "说明",
                         overflow="fold")
    for r in recent:
        table.add_row(str(r.id), safe_markup(r.job), safe_markup(r.period or "-"), _clock(r.started_at),
                      _clock(r.ended_at) if r.ended_at else "-", duration_text(r.started_at, r.ended_at),
                      RUN_STATE_LABELS.get(r.state, safe_markup(r.state)),
                      ORIGIN_LABELS.get(r.origin, safe_markup(r.origin)), safe_markup(r.error or ""))
    with cli_intake._out.capture() as captured:  # plain lines for cron mails and logs: no trailing padding
        cli_intake._out.print(table)
    click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))


def _clock(stamp: str) -> str:
    """A stored time (2025-04-06T08:00:00+08:00) as the operator reads it: 2025-04-06 08:00:00."""
    return safe_markup(stamp[:19].replace("T", " "))


def duration_text(started_at: str, ended_at: str | None) -> str:
    """How long a run took, in Chinese (12秒, 3分05秒, 1小时02分); 运行中 while it has not ended."""
    from datetime import datetime

    if not ended_at:
        return "运行中"
    try:
        seconds = int((datetime.fromisoformat(ended_at) - datetime.fromisoformat(started_at)).total_seconds())
    except ValueError:
        return "-"
    seconds = max(seconds, 0)
    if seconds < 60:
        return f"{seconds}秒"
    if seconds < 3600:
        return f"{seconds // 60}分{seconds % 60:02d}秒"
    return f"{seconds // 3600}小时{seconds % 3600 // 60:02d}分"
