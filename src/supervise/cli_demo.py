"""`supervise demo`: a workspace with realistic synthetic submissions, assessed and published."""

from __future__ import annotations

from pathlib import Path

import click

from .cli import cli, now, pass_workspace
from .cli_text import safe_text
from .periods import Month, Quarter, Year
from .workspace import Workspace


@cli.command()
@click.option("--months", default=6, show_default=True, type=click.IntRange(1, 12),
              help="模拟2025年的几个月（从1月起）。")
@click.option("--force", is_flag=True,
              help="目录中已有数据时清空后重建（只删除该目录中的数据库、inbox/、archive/、reports/、outbox/、"
                   "demo-files/，并恢复默认设置）。")
@pass_workspace
def demo(ws: Workspace, months: int, force: bool) -> None:
    """生成演示工作目录（14个县、模拟报送）并运行各项任务。

    模拟2024年12月和2024年第四季度（以便运行含奖惩结算的2024年度入园进区考核），再模拟
    2025年1月至第N月及其季度更新。不发送邮件。已有数据的目录拒绝写入，除非加 --force。
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
        echo=lambda s: click.echo(safe_text(s), err=True),
        force=force,
    )
    bulletins = [Path(p) for p in summary["bulletins"]]  # type: ignore[attr-defined]
    click.echo(safe_text(f"演示工作目录：{summary['home']}"))
    click.echo(f"已受理报送：{summary['files_accepted']} 份")
    click.echo(f"通报文件（{len(bulletins)} 个）：")
    for path in bulletins:
        click.echo(safe_text(f"  {path}"))
    pages = [p for p in bulletins if p.suffix == ".html"]
    if pages:
        latest = next((p for p in pages if p.parent.name == str(year_months[-1])), pages[-1])
        click.echo("用浏览器打开 .html 文件即可查看通报，例如：")
        click.echo(safe_text(f"  {latest.resolve().as_uri()}"))
