"""`supervise export`: the period's stored values as one table for analysts."""

from __future__ import annotations

from pathlib import Path

import click

from .cli import cli, emit_json, json_option, now, period_options, workspace_required
from .cli_text import safe_text
from .workspace import Workspace


@cli.command()
@period_options("month", "quarter")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write (default: reports/<period>/data-<period>.xlsx).")
@click.option("--format", "fmt", type=click.Choice(["xlsx", "csv"]), default=None,
              help="xlsx (default) or csv (UTF-8 with BOM); taken from --out's suffix when omitted.")
@json_option
@workspace_required
def export(ws: Workspace, period, out: Path | None, fmt: str | None, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Export every county's values in force for a period: a row per cluster, a column per indicator."""
    from .export import export_period

    path = export_period(ws, period, out, fmt, now())
    if as_json:
        emit_json({"period": str(period), "path": str(path)})
    else:
        click.echo(safe_text(path))
