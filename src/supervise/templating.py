"""The one Jinja environment: pages, bulletins and mails, autoescaped.

Templates come from the workspace's `reports/templates/` first (a bureau may restyle a bulletin
or a mail by copying a shipped template there and editing it), then from the shipped ones
(`reports/templates/` of the source tree, see `assets`). Filters format numbers the way every
output writes them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

from .assets import shipped


def fmt_number(value: float | None, digits: int = 2) -> str:
    """12,345.68; '—' for no value."""
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def fmt_signed(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "—"
    return f"{value:+,.{digits}f}" if value else f"{0:.{digits}f}"


def fmt_percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}%"


def fmt_count(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def fmt_general(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


CN_NUMERALS = "一二三四五六七八九十"


def cn_numeral(n: int) -> str:
    """1 → 一 … 10 → 十 (section numbering)."""
    if 1 <= n <= 10:
        return CN_NUMERALS[n - 1]
    if n < 20:
        return "十" + CN_NUMERALS[n - 11]
    return str(n)


@lru_cache(maxsize=8)
def environment(overrides: Path | None = None) -> Environment:
    """The template environment; `overrides` (a workspace's reports/templates) wins over the shipped."""
    from .bulletin.charts import score_chart, tier_chart

    loaders = [FileSystemLoader(str(overrides))] if overrides is not None and overrides.is_dir() else []
    env = Environment(
        loader=ChoiceLoader([*loaders, FileSystemLoader(str(shipped("templates")))]),
        # Everything is escaped but the plain-text parts of mails (*.txt), where there is no markup.
        autoescape=select_autoescape(disabled_extensions=("txt",), default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = fmt_number
    env.filters["signed"] = fmt_signed
    env.filters["pct"] = fmt_percent
    env.filters["count"] = fmt_count
    env.filters["g"] = fmt_general
    env.filters["cn"] = cn_numeral
    env.globals["score_chart"] = score_chart
    env.globals["tier_chart"] = tier_chart
    return env
