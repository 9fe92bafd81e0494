"""The `supervise` command line: thin wrappers over library functions.

This module holds the group, the shared options and `init`. Each area adds its commands
from its own module (cli_intake, cli_assess, cli_jobs, cli_demo), imported at the bottom.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from . import __version__
from .cli_text import SafeFormatter, safe_json, safe_text
from .errors import SuperviseError
from .periods import TZ, Month, Period, Quarter, Year, parse_period
from .registry import unknown_county_message
from .workspace import Workspace, home_from, init_workspace

log = logging.getLogger("supervise")


class OneLineUsageError(click.ClickException):
    """A usage error told in one line (cron mails and logs read better without the usage block)."""

    exit_code = 2

    def format_message(self) -> str:
        return self.message

    def show(self, file: Any = None) -> None:
        click.echo(f"错误 / error: {safe_text(self.format_message())}（见 --help）", err=True)


HELP_OPTION_HELP = "显示本帮助并退出。"


class ChineseHelp:
    """The -h/--help option told in Chinese, like every other option."""

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.help = HELP_OPTION_HELP
        return option  # type: ignore[no-any-return]


class SuperviseCommand(ChineseHelp, click.Command):
    """A command of `supervise`: help in Chinese."""


class UnknownCounty(OneLineUsageError):
    """An unknown --county: one message and exit status 2 in every command that takes it."""

    def __init__(self, code: str) -> None:
        super().__init__(unknown_county_message(code))


class SuperviseGroup(ChineseHelp, click.Group):
    """Turns a SuperviseError into one line on stderr and exit status 1, a usage error into
    one line and exit status 2."""

    command_class = SuperviseCommand

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            raise OneLineUsageError(_usage_text(exc)) from exc

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise OneLineUsageError(_usage_text(exc)) from exc
        except SuperviseError as exc:
            click.echo(f"错误 / error: {safe_text(exc)}", err=True)
            ctx.exit(1)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:  # a bug: still one line for cron and the log, the traceback with -v
            log.debug("unexpected failure", exc_info=True)
            click.echo(
                f"错误 / error: internal error {type(exc).__name__}: {safe_text(exc)} "
                "(rerun with -v for the traceback)",
                err=True,
            )
            ctx.exit(1)


def _usage_text(exc: click.UsageError) -> str:
    where = f"supervise {exc.ctx.info_name}" if exc.ctx is not None and exc.ctx.parent is not None else "supervise"
    return f"{where}: {exc.format_message()}"


@click.group(cls=SuperviseGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="SUPERVISE_HOME",
    help="工作目录（默认：$SUPERVISE_HOME，否则为当前目录）。",
)
@click.option("-v", "--verbose", is_flag=True, help="在 stderr 输出更详细的日志。")
@click.version_option(__version__, prog_name="supervise", help="显示版本并退出。")
@click.pass_context
def cli(ctx: click.Context, home: Path | None, verbose: bool) -> None:
    """supervise — 县域特色产业集群督导考核：收取各县报送、校验、评分、排名、结算，发布并邮寄通报。"""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    ctx.obj = Workspace(home_from(home))


# ------------------------------------------------------------------ shared options

pass_workspace = click.make_pass_decorator(Workspace)


def workspace_required(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Pass the workspace as the first argument, refusing a folder that is not one."""

    @pass_workspace
    @functools.wraps(fn)
    def wrapper(ws: Workspace, *args: Any, **kwargs: Any) -> Any:
        return fn(ws.require(), *args, **kwargs)

    return wrapper


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--json", "as_json", is_flag=True, help="在 stdout 输出一个 JSON 文档（日志写入 stderr）。"
    )(fn)


def county_option(*, required: bool, help: str, dest: str = "county") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--county CODE, refused with the same line (UnknownCounty) in every command if the code is unknown."""

    def known(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        ws = ctx.find_object(Workspace)
        if value is not None and ws is not None and value not in ws.require().registry.counties:
            raise UnknownCounty(value)
        return value

    return click.option("--county", dest, metavar="CODE", required=required, help=help, callback=known)


def period_options(*kinds: str, required: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--month / --quarter / --year, folded into one `period` argument."""

    helps = {
        "month": ("--month", "月份，如 2025-03。"),
        "quarter": ("--quarter", "季度，如 2025Q1。"),
        "year": ("--year", "年度，如 2025。"),
    }

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = [(k, kwargs.pop(f"{k}_opt")) for k in kinds]
            chosen = [(k, v) for k, v in given if v]
            if len(chosen) > 1:
                raise click.UsageError("只能给出其中一个 / give only one of " + ", ".join(f"--{k}" for k in kinds))
            period: Period | None = None
            if chosen:
                kind, text = chosen[0]
                period = parse_period(text)
                if period.kind != kind:
                    raise click.BadParameter(f"{text!r} is not a {kind}", param_hint=f"--{kind}")
            elif required:
                raise click.UsageError("请给出其中一个 / give one of " + ", ".join(f"--{k}" for k in kinds))
            kwargs["period"] = period
            return fn(*args, **kwargs)

        for kind in reversed(kinds):
            flag, text = helps[kind]
            wrapper = click.option(flag, f"{kind}_opt", metavar=_METAVAR[kind], help=text)(wrapper)
        return wrapper

    return decorator


_METAVAR = {"month": "YYYY-MM", "quarter": "YYYYQn", "year": "YYYY"}


def emit_json(doc: Any) -> None:
    """Print one JSON document on stdout (Chinese kept readable, no control character raw)."""
    click.echo(safe_json(json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=False, default=str)))


def now() -> datetime:
    """The real clock: only the CLI and the scheduler read it."""
    return datetime.now(TZ)


# ------------------------------------------------------------------ init


@cli.command()
@click.option("--force", is_flag=True, help="用默认内容覆盖设置、参考文件和考核规则。")
@click.option("--start-empty", is_flag=True,
              help="archive/ 中已有文件时仍新建空数据库（supervise.db 丢失且无备份可恢复）；archive/ 保持不变。")
@pass_workspace
def init(ws: Workspace, force: bool, start_empty: bool) -> None:
    """创建工作目录：各文件夹、supervise.toml、数据库、reference/ 和 rules/。

    archive/ 非空而数据库不存在（supervise.db 被删除或丢失）时拒绝新建，除非加 --start-empty；
    应先从备份恢复 supervise.db。
    """
    had_db = ws.db_path.exists()
    ws = init_workspace(ws.home, force=force, start_empty=start_empty)
    if start_empty and not had_db:
        click.echo("已新建空数据库，archive/ 中的文件保持不变，未导入 / "
                   "started an empty database; the files in archive/ are kept, not ingested", err=True)
    click.echo(f"工作目录已就绪：{safe_text(ws.home)}")


def main() -> None:
    cli(prog_name="supervise")


# Register the commands of each area.
from . import cli_assess, cli_demo, cli_export, cli_intake, cli_jobs, cli_web  # noqa: E402,F401

__all__ = ["cli", "main", "Month", "Quarter", "Year"]
