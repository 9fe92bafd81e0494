"""The bulletin's words and measures: titles, subjects, period labels, revenue tiers, excerpts
of long tables, and the sizes above which a page shows only the head and tail of a table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from ..periods import Month, Period, Quarter, Year
from .model import (
    TIER_100,
    TIER_200,
    TIER_500,
    TIER_BELOW,
    TIER_NONE,
    Edition,
    Excerpt,
    RankingRow,
)

T = TypeVar("T")


Values = Mapping[str, Mapping[str, Mapping[str, float | str | None]]]


# A page lists every county up to this many; above it, the head and tail of each table.
FULL_TABLE_MAX = 60


EXCERPT_HEAD = 20


EXCERPT_TAIL = 20


# Long lists without a meaningful order (clusters, warnings, texts) are cut at this many rows.
FULL_LIST_MAX = 200


YI = 10_000.0                 # 万元 per 亿元


TIER_BOUNDS = ((500 * YI, TIER_500), (200 * YI, TIER_200), (100 * YI, TIER_100))


def bulletin_title(period: Period) -> str:
    """关于2025年3月全市县域特色产业集群发展情况的通报 (quarter: 第一季度; year: 2025年度)."""
    return f"关于{period_label(period)}全市县域特色产业集群发展情况的通报"


def bulletin_subject(title: str, edition: Edition | None) -> str:
    """The mail's subject: the title; a correction says so: 【更正】关于…的通报（第2版）."""
    if edition is None or edition.version <= 1:
        return title
    return f"【更正】{title}（第{edition.version}版）"


def correction_heading(edition: Edition) -> str:
    """The first line of a correction, on the page, the workbook's cover and the mail."""
    before = edition.version - 1
    return (f"更正：本通报为第{edition.version}版，更正此前发出的第{before}版，请以本版为准。"
            f"与第{before}版相比：")


def period_label(period: Period) -> str:
    p = period
    if isinstance(p, Year):
        return f"{p.year}年度"
    return p.label


def ytd_span(period: Period) -> str:
    """The months a year-to-date figure covers: 1—3月, 1月, 1—12月."""
    if isinstance(period, Month):
        last = period.month
    elif isinstance(period, Quarter):
        last = 3 * period.quarter
    else:
        last = 12
    return f"{period.year}年1月" if last == 1 else f"{period.year}年1—{last}月"


def tier_of(revenue: float | None) -> str:
    if revenue is None:
        return TIER_NONE
    for bound, tier in TIER_BOUNDS:
        if revenue >= bound:
            return tier
    return TIER_BELOW


def number(v: object) -> float | None:
    """A numeric value from the data, or None (text, blank, bool)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def excerpt(rows: list[T], limit: int = FULL_TABLE_MAX, head: int = EXCERPT_HEAD, tail: int = EXCERPT_TAIL) -> Excerpt[T]:
    if len(rows) <= limit:
        return Excerpt(list(rows))
    return Excerpt(rows[:head], len(rows) - head - tail, rows[len(rows) - tail:] if tail else [])


def fmt(v: float, digits: int = 2) -> str:
    return f"{v:,.{digits}f}"


def names_of(rows: Sequence[RankingRow]) -> str:
    return "、".join(f"{r.county_name}（{r.score:.2f}分）" for r in rows)
