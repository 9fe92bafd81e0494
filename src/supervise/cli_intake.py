"""Commands of the intake area: templates, ingest, status, history, reject."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, cast

import click

from .cli import cli, county_option, emit_json, json_option, now, period_options, workspace_required
from .cli_text import safe_markup, safe_text
from .labels import SOURCE_LABELS
from .periods import Period, parse_time
from .workspace import Workspace


# rich is imported when something is printed for a person, not for --json.
class _LazyConsole:
    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._console: Any = None

    def __getattr__(self, name: str) -> Any:
        # rich reads COLUMNS when a Console is made: a new width (another invocation in the same
        # process, as in tests) gets a new Console. The width is kept on the Console itself, so a
        # Console put back from elsewhere is never taken for one of another width.
        columns = os.environ.get("COLUMNS")
        if self._console is None or getattr(self._console, "_made_for_columns", None) != columns:
            from rich.console import Console

            self._console = Console(**self._kwargs)
            self._console._made_for_columns = columns
        return getattr(self._console, name)


def Table(*args: Any, **kwargs: Any) -> Any:
    from rich.table import Table as _Table

    return _Table(*args, **kwargs)


_err = _LazyConsole(stderr=True)
_out = _LazyConsole()
VERDICT_LABELS = {"accepted": "已受理", "warning": "有提示", "rejected": "退回"}
UNCHANGED_LABEL = "未变化"
VERSION_STATE_LABELS = {"current": "有效", "superseded": "已被替代", "rejected": "校验未通过", "returned": "已退回"}
DELIVERY_STATE_LABELS = {"pending": "待发送", "sent": "已发送", "failed": "发送失败", "superseded": "已被替代",
                         "skipped": "已跳过"}


@cli.command()
@period_options("month", "quarter")
@county_option(required=False, help="只生成该县（6位代码）的模板。")
@json_option
@workspace_required
def templates(ws: Workspace, period: Period, county: str | None, as_json: bool) -> None:
    """生成空白报送模板（每县一个 .xlsx），写入 outbox/templates/<报告期>/。"""
    from .intake.templates import write_templates

    written = write_templates(ws, period, county)
    if as_json:
        emit_json({"templates": written})
        return
    for t in written:
        click.echo(safe_text(t["path"]))
    click.echo(f"已生成 {len(written)} 份模板", err=True)


@cli.command()
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@county_option(required=False, help="报送单位（6位县代码）。")
@click.option("--received-at", metavar="ISO-8601", help="文件实际收到的时间（默认：现在）。")
@click.option("--dry-run", is_flag=True, help="只校验并报告，不归档、不保存。")
@json_option
@workspace_required
def ingest(ws: Workspace, files: tuple[Path, ...], county: str | None, received_at: str | None,
           dry_run: bool, as_json: bool) -> None:
    """收取 FILES（默认：inbox/ 中的全部文件）。退回是结论，不是失败。"""
    from .intake.inbox import inbox_files
    from .intake.ingest import collect_inbox, ingest_files

    when = None
    if received_at:
        try:
            when = parse_time(received_at)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--received-at") from None
    if not files and county is not None:
        raise click.UsageError("--county 指明 FILES 的报送单位；收件箱按 inbox/<代码>/ 区分报送单位")
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
    table = Table(title="报送文件", show_lines=False)
    for col in ("文件", "县（市、区）", "报告期", "结论", "问题"):
        table.add_column(col)
    for f in report.files:
        verdict = VERDICT_LABELS.get(f.verdict, f.verdict) + (f"（{UNCHANGED_LABEL}）" if f.unchanged else "")
        problems = "\n".join(safe_markup(f"[{p.code}] {p.where}: {p.message}") for p in f.problems[:8])
        if len(f.problems) > 8:
            problems += f"\n… 共 {len(f.problems)} 个问题"
        table.add_row(safe_markup(os.path.basename(f.file)), safe_markup(f.county_code or ""),
                      safe_markup(f.period or ""), verdict, problems)
    if report.files:
        _out.print(table)
    prefix = "（试运行，未保存）" if report.dry_run else ""
    _out.print(prefix + ingest_summary_line(report.summary))
    for skipped in report.skipped:
        _out.print(safe_markup(f"未处理：{skipped['file']}（{skipped['reason']}）"))


def ingest_summary_line(summary: dict[str, Any]) -> str:
    """The counts of an ingest in one Chinese line, saying 未变化 when nothing new was stored."""
    line = (f"已受理 {summary.get('accepted', 0)}，有提示 {summary.get('warning', 0)}，"
            f"退回 {summary.get('rejected', 0)}，{UNCHANGED_LABEL} {summary.get('unchanged', 0)}，"
            f"存储数值 {summary.get('values', 0)}")
    if not summary.get("files"):
        return f"没有新文件，{UNCHANGED_LABEL}"
    if summary.get("unchanged", 0) == summary["files"]:
        return f"{line}（所有文件与已保存的版本相同，{UNCHANGED_LABEL}）"
    return line


@cli.command()
@period_options("month", "quarter")
@json_option
@workspace_required
def status(ws: Workspace, period: Period, as_json: bool) -> None:
    """各县报送情况：按时报送、迟报、漏报或退回。

    报送截止前尚未报送的县显示为“未到截止”，而不是漏报：报告期仍在报送中。"""
    from .jobs.reporting import status_report

    conn = ws.connect()
    try:
        doc = status_report(conn, ws.registry, period, ws.settings.deadlines, now())
    finally:
        conn.close()
    if as_json:
        emit_json(doc)
        return
    table = Table(title=f"{period.label} 报送情况（截止 {doc['due']}）")
    for col in ("代码", "县（市、区）", "状态", "收到时间", "迟报天数", "说明"):
        table.add_column(col)
    from .status import STATE_LABELS

    counties: list[dict[str, Any]] = doc["counties"]  # type: ignore[assignment]
    for c in counties:
        if c.get("returned_at"):
            note = f"退回原因：{c['reason']}（{c['returned_at'][:16].replace('T', ' ')} 退回）"
        else:
            note = c["reason"] or (f"{c['warnings']} 条数据质量提示" if c["warnings"] else "")
        table.add_row(safe_markup(c["county_code"]), safe_markup(c["county_name"]),
                      STATE_LABELS[c["state"]],
                      safe_markup((c["received_at"] or "")[:16].replace("T", " ")), str(c["days_late"] or ""),
                      safe_markup(note))
    _out.print(table)
    _out.print(f"报送率 {doc['completeness']}%，及时率 {doc['timeliness']}%")
    if "note" in doc:
        _out.print(safe_markup(doc["note"]))


@cli.command()
@county_option(required=True, help="县（6位代码）。")
@period_options("month", "quarter")
@json_option
@workspace_required
def history(ws: Workspace, county: str, period: Period, as_json: bool) -> None:
    """某县某报告期报送的每个版本，以及版本之间变化的数值。"""
    from .intake.versions import history as load_history

    doc = load_history(ws, county, period)
    if as_json:
        emit_json(doc)
        return
    table = Table(title=safe_markup(f"{ws.registry.county_name(county)} {period.label} 报送记录"))
    for col in ("#", "收到时间", "来源", "文件", "SHA-256", "结论", "状态"):
        table.add_column(col)
    for v in doc["versions"]:
        table.add_row(str(v["submission_id"]), safe_markup(v["received_at"][:16].replace("T", " ")),
                      safe_markup(f"{SOURCE_LABELS.get(v['source'], v['source'])} {v['sender_code'] or ''}"), safe_markup(v["file_name"]),
                      safe_markup(v["sha256"][:12]), safe_markup(VERDICT_LABELS.get(v["verdict"], v["verdict"])),
                      safe_markup(VERSION_STATE_LABELS.get(v["state"], v["state"])))
    _out.print(table)
    for ch in doc["changes"]:
        _out.print(f"#{ch['from']} → #{ch['to']}：{len(ch['changes'])} 项变化")
        for c in ch["changes"]:   # submitted text may hold anything, "[/x]" and ESC included
            _out.print(safe_markup(f"  {c['cluster_code']} {c['indicator']}: {c['old']} → {c['new']}"))
    for a in doc["audit"]:
        if a["action"] == "reject":
            _out.print(safe_markup(f"退回：{a['at'][:16].replace('T', ' ')}，{a['actor']}："
                                   f"{a['detail'].get('reason', '')}"))


@cli.command()
@county_option(required=True, help="县（6位代码）。")
@period_options("month", "quarter")
@click.option("--reason", required=True, help="退回原因（邮寄给该县联系人）。")
@click.option("--actor", default=None, help="退回人（默认：登录名）。")
@json_option
@workspace_required
def reject(ws: Workspace, county: str, period: Period, reason: str, actor: str | None, as_json: bool) -> None:
    """退回某县已受理的报送；重新报送前按退回计。

    退回原因和处理办法邮寄给该县联系人（reference/counties.csv 的 email 列）；
    邮件服务器未接收的邮件留在 outbox，下次 collect 时重发。
    """
    from .intake.versions import reject_submission

    who = actor or os.environ.get("USER") or "staff"
    doc = reject_submission(ws, county, period, reason, actor=who, now=now())
    notice = doc["notice"]
    if as_json:
        emit_json(doc)
    else:
        click.echo(safe_text(f"已退回：{county} {period}（#{doc['submission_id']}）：{reason}"))
        _echo_notice(notice)
    if notice["error"]:
        raise click.ClickException(
            f"已退回，但退回通知未能放入发件箱，请另行通知该县 / returned, but the notice could not be "
            f"queued; tell the county by other means: {notice['error']}")


def _echo_notice(notice: dict[str, Any]) -> None:
    """Where the 退回通知 went: sent, waiting in the outbox, or nobody to mail."""
    if notice["no_address"]:
        click.echo("  退回通知未发送：reference/counties.csv 中该县没有 email，请另行通知")
        return
    for d in notice["deliveries"]:
        if d["state"] == "sent":
            click.echo(safe_text(f"  退回通知已发送：{d['recipient']}"))
        elif d["state"] == "failed":
            click.echo(safe_text(f"  退回通知未能发出，已留在 outbox 待下次 collect 重发：{d['recipient']}"
                                 f"（{d['error']}）"))
        else:
            click.echo(safe_text(f"  退回通知{DELIVERY_STATE_LABELS.get(d['state'], d['state'])}：{d['recipient']}"))
