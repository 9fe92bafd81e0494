"""The bulletin as a standalone HTML page and as an e-mail body (Jinja2 templates).

The page (`bulletin.html`) needs nothing else: CSS inline, charts as inline SVG drawn from the
model, no script, no fonts or images from the network; it prints on A4 with a page break before
each part and table headers repeated on every page.

The e-mail (`email.html`) is a table layout with inline styles only (mail clients drop <style>
and SVG): the overall situation, top and bottom three, the ranking and the reporting status;
the full bulletin travels as attachments.

Large registries: up to `build.FULL_TABLE_MAX` (60) counties every table lists every county.
Above that the page shows the first and last 20 of the ranking and of the points table, the 20
clusters with the highest revenue and the counties that did not report on time, and says where
the full tables are (the workbook, which always has every row). Charts follow the same excerpt.

Text from submissions reaches the page only through autoescaping: it is shown, never run.
"""

from __future__ import annotations

from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined

from .charts import score_chart, tier_chart
from .model import Bulletin


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


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The one template environment: autoescaped, templates from supervise/reports/templates."""
    env = Environment(
        loader=PackageLoader("supervise", "reports/templates"),
        autoescape=True,
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


def render_page(b: Bulletin) -> str:
    return environment().get_template("bulletin.html").render(b=b)


def render_email(b: Bulletin) -> str:
    return environment().get_template("email.html").render(b=b)
