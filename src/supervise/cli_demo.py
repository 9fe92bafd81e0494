"""`supervise demo`: a workspace with realistic synthetic submissions, assessed and published."""

from __future__ import annotations

import click

from .cli import cli, now, pass_workspace
from .periods import Month, Quarter, Year
from .workspace import Workspace


@cli.command()
@click.option("--months", default=6, show_default=True, type=click.IntRange(1, 12),
              help="How many months of 2025 to simulate (from January).")
@pass_workspace
def demo(ws: Workspace, months: int) -> None:
    """Build a demo workspace (14 counties, synthetic submissions) and run the jobs.

    Simulates 2024-12 and 2024Q4 (so the annual 入园进区 assessment with its settlement runs for
    2024), then January..N of 2025 with their quarterly updates. Nothing is mailed.
    """
    from .demo import build_demo

    year_months = [Month(2025, m) for m in range(1, months + 1)]
    quarters = [Quarter(2025, q) for q in range(1, months // 3 + 1)]
    summary = build_demo(
        ws.home,
        months=[Month(2024, 12), *year_months],
        quarters=[Quarter(2024, 4), *quarters],
        years=[Year(2024)],
        now=now(),
        echo=lambda s: click.echo(s, err=True),
    )
    click.echo(f"demo workspace: {summary['home']}")
    click.echo(f"accepted submissions: {summary['files_accepted']}")
    for period in [*year_months, *quarters, Year(2024)]:
        folder = ws.report_dir(period)
        for f in sorted(folder.glob("bulletin-*")):
            click.echo(f"  {f}")
