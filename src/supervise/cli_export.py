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
              help="写到哪里（默认：reports/<报告期>/data-<报告期>.xlsx）。")
@click.option("--format", "fmt", type=click.Choice(["xlsx", "csv"]), default=None,
              help="xlsx（默认）或 csv（带 BOM 的 UTF-8）；不给时按 --out 的扩展名。")
@json_option
@workspace_required
def export(ws: Workspace, period, out: Path | None, fmt: str | None, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """导出某报告期各县现行有效的数值：每个集群一行，每个指标一列。"""
    from .export import export_period

    path = export_period(ws, period, out, fmt, now())
    if as_json:
        emit_json({"period": str(period), "path": str(path)})
    else:
        click.echo(safe_text(path))
