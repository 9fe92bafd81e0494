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
from .workspace import Workspace, home_from, init_workspace

log = logging.getLogger("supervise")


class OneLineUsageError(click.ClickException):
    """A usage error told in one line (cron mails and logs read better without the usage block)."""

    exit_code = 2

    def format_message(self) -> str:
        return self.message

    def show(self, file: Any = None) -> None:
        click.echo(f"错误 / error: {safe_text(self.format_message())} (see --help)", err=True)


class SuperviseGroup(click.Group):
    """Turns a SuperviseError into one line on stderr and exit status 1, a usage error into
    one line and exit status 2."""

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
    help="Workspace folder (default: $SUPERVISE_HOME, else the current folder).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log more detail to stderr.")
@click.version_option(__version__, prog_name="supervise")
@click.pass_context
def cli(ctx: click.Context, home: Path | None, verbose: bool) -> None:
    """supervise — 县域特色产业集群督导考核: collect county submissions, validate, score, rank,
    settle, publish and mail the bulletin (通报)."""
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
        "--json", "as_json", is_flag=True, help="Print one JSON document on stdout (logs go to stderr)."
    )(fn)


def period_options(*kinds: str, required: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--month / --quarter / --year, folded into one `period` argument."""

    helps = {
        "month": ("--month", "A month, e.g. 2025-03."),
        "quarter": ("--quarter", "A quarter, e.g. 2025Q1."),
        "year": ("--year", "A year, e.g. 2025."),
    }

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = [(k, kwargs.pop(f"{k}_opt")) for k in kinds]
            chosen = [(k, v) for k, v in given if v]
            if len(chosen) > 1:
                raise click.UsageError("give only one of " + ", ".join(f"--{k}" for k in kinds))
            period: Period | None = None
            if chosen:
                kind, text = chosen[0]
                period = parse_period(text)
                if period.kind != kind:
                    raise click.BadParameter(f"{text!r} is not a {kind}", param_hint=f"--{kind}")
            elif required:
                raise click.UsageError("give one of " + ", ".join(f"--{k}" for k in kinds))
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
@click.option("--force", is_flag=True, help="Overwrite settings, reference files and rulebooks with the defaults.")
@click.option("--start-empty", is_flag=True,
              help="Create an empty database although archive/ holds files (supervise.db was lost and "
                   "there is no backup to restore); the archive is kept as it is.")
@pass_workspace
def init(ws: Workspace, force: bool, start_empty: bool) -> None:
    """Create a workspace: folders, supervise.toml, the database, reference/ and rules/.

    Refuses to create a new database beside a non-empty archive/ (supervise.db was deleted or
    lost) unless --start-empty: restore supervise.db from the backup instead.
    """
    had_db = ws.db_path.exists()
    ws = init_workspace(ws.home, force=force, start_empty=start_empty)
    if start_empty and not had_db:
        click.echo("已新建空数据库，archive/ 中的文件保持不变，未导入 / "
                   "started an empty database; the files in archive/ are kept, not ingested", err=True)
    click.echo(f"workspace ready: {safe_text(ws.home)}")


def main() -> None:
    cli(prog_name="supervise")


# Register the commands of each area.
from . import cli_assess, cli_demo, cli_export, cli_intake, cli_jobs  # noqa: E402,F401

__all__ = ["cli", "main", "Month", "Quarter", "Year"]
