"""Per-county values from the current submissions: the sum over a county's clusters.

Indicators whose dictionary `agg` is `mean` (digital_rate) are averaged over the clusters. If any
cluster of the submission lacks a number for an indicator, the county's value cannot be computed
(None): a blank never becomes 0. A county with no current submission has no values at all (None).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from ..periods import Month, Quarter
from ..records import Value
from ..registry import Indicator

Values = dict[str, float | None]


def year_elapsed(p: Month | Quarter) -> float:
    """The share of the year that year-to-date data cover (March: 0.25; Q2: 0.5)."""
    if isinstance(p, Month):
        return p.month / 12
    return p.quarter / 4


def aggregate(
    clusters: Mapping[str, Mapping[str, Value]], dictionary: Mapping[str, Indicator], dataset: str
) -> Values:
    """One county's values from its clusters' rows (pure)."""
    out: Values = {}
    for code, ind in dictionary.items():
        if ind.dataset != dataset or not ind.is_number:
            continue
        numbers: list[float] = []
        for row in clusters.values():
            v = row.get(code)
            if v is None or isinstance(v, str) or not math.isfinite(float(v)):
                break
            numbers.append(float(v))
        else:
            if numbers:
                total = math.fsum(numbers)
                out[code] = total / len(numbers) if ind.agg == "mean" else total
                continue
        out[code] = None
    return out


def county_values(
    raw: Mapping[str, dict[str, dict[str, Value]]],
    period: Month | Quarter,
    counties: list[str],
    dictionary: Mapping[str, Indicator],
) -> tuple[dict[str, Values | None], dict[str, dict[str, dict[str, Value]]]]:
    """Aggregated values per county (None: no current submission) from the period's current
    cluster rows (`store.submissions.current_values`), and the rows of the counties asked for."""
    out: dict[str, Values | None] = {}
    for code in counties:
        rows = raw.get(code)
        out[code] = aggregate(rows, dictionary, period.dataset) if rows else None
    return out, {c: raw[c] for c in counties if c in raw}
