"""Totals to ranks (pure): round, order highest first, share ranks on ties (1, 2, 2, 4).

Totals are rounded half up (四舍五入) to `precision` decimals. Units with equal rounded totals
share a rank unless the tie-break indicators separate them: their points are compared in the
rulebook's order, higher points first (points equal to 9 decimals are equal).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

NDIGITS = 9


def round_half_up(x: float, precision: int) -> float:
    """四舍五入 to `precision` decimals, after removing float noise beyond 9 decimals."""
    d = Decimal(repr(round(x, NDIGITS)))
    return float(d.quantize(Decimal(1).scaleb(-precision), rounding=ROUND_HALF_UP)) + 0.0


@dataclass(frozen=True)
class Place:
    unit: str
    total: float        # unrounded
    score: float        # rounded to precision
    rank: int


def rank_units(
    totals: Mapping[str, float],
    precision: int = 2,
    tie_points: Mapping[str, Sequence[float]] | None = None,
) -> list[Place]:
    """Rank every unit; returned in rank order, then by unit code."""
    tie_points = tie_points or {}
    keys: dict[str, tuple[float, tuple[float, ...]]] = {}
    for unit, total in totals.items():
        keys[unit] = (
            round_half_up(total, precision),
            tuple(round(p, NDIGITS) for p in tie_points.get(unit, ())),
        )
    ordered = sorted(keys.values())
    comparable = not any(math.isnan(k[0]) or any(map(math.isnan, k[1])) for k in ordered)
    places = []
    for unit, key in keys.items():
        if comparable:   # the number of keys strictly greater, by bisection (n log n)
            ahead = len(ordered) - bisect.bisect_right(ordered, key)
        else:
            ahead = sum(1 for k in ordered if k > key)
        places.append(Place(unit, totals[unit], key[0], 1 + ahead))
    places.sort(key=lambda p: (p.rank, p.unit))
    return places
