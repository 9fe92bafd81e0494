"""The five scoring methods (rank, minmax, completion, bands, ratio_to_best) and the `missing` policies (pure).

Every function takes the values of all ranked units (None = cannot be computed) and returns each
unit's points with what they were measured against, so that every score can be explained.

Conventions where the methods leave room (documented in docs/rulebooks.md):

- n (rank) counts every ranked unit, also those whose value cannot be computed;
  only computed units take places; min, max and the best value come from computed units only.
- Values are compared after rounding to 9 decimals, so that float noise (0.1 + 0.2) never
  separates two values that are equal on paper.
- higher_is_better = false: rank orders ascending; minmax uses (max − x)/(max − min); completion
  uses target / x (x ≤ 0 counts as reaching the cap); bands award the share of the lowest
  threshold that x does not exceed (0 above the highest); ratio_to_best uses min / x.
- completion with a target that cannot be computed or is ≤ 0: the value cannot be computed.
- missing: zero → 0; min → the lowest points of the computed units; mean → their mean;
  with no computed unit at all every unit gets 0.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

NDIGITS = 9  # values equal to 9 decimals are equal


@dataclass
class Points:
    points: float
    reference: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    computed: bool = True


def _k(x: float) -> float:
    return round(x, NDIGITS)


def score(
    method: str,
    values: Mapping[str, float | None],
    *,
    weight: float,
    higher_is_better: bool = True,
    missing: str = "zero",
    step: float | None = None,
    floor: float = 60.0,
    targets: Mapping[str, float | None] | None = None,
    cap: float = 1.0,
    bands: Sequence[tuple[float, float]] = (),
) -> dict[str, Points]:
    """Points of every unit on one indicator. `values` holds every ranked unit."""
    n = len(values)
    computed = {u: v for u, v in values.items() if v is not None and math.isfinite(v)}
    out: dict[str, Points] = {}
    hib = higher_is_better
    if method == "completion":
        out, computed = _completion(values, targets or {}, weight, hib, cap)
    elif method == "rank":
        out = _rank(computed, n, weight, hib, step)
    elif method == "minmax":
        out = _minmax(computed, weight, hib, floor)
    elif method == "bands":
        out = _bands(computed, weight, hib, bands)
    elif method == "ratio_to_best":
        out = _ratio(computed, weight, hib)
    else:
        raise ValueError(f"unknown method {method!r}")
    _apply_missing(out, values, computed, missing, method, n)
    if method == "completion":
        for u, x in values.items():
            if u not in computed:
                out[u].reference["target"] = (targets or {}).get(u)
                if x is not None:
                    out[u].note = "目标值缺失或不大于0，" + out[u].note
    return {u: out[u] for u in values}


def _rank(computed: Mapping[str, float], n: int, weight: float, hib: bool, step: float | None) -> dict[str, Points]:
    step_ = (weight / n if n else 0.0) if step is None else step
    keys = sorted(_k(v) for v in computed.values())   # finite values only: a total order
    out = {}
    for u, v in computed.items():
        # Equal values share the better place: 1 + the number of units strictly ahead
        # (found by bisection: n log n for a national registry, not n²).
        kv = _k(v)
        ahead = len(keys) - bisect.bisect_right(keys, kv) if hib else bisect.bisect_left(keys, kv)
        place = 1 + ahead
        pts = max(0.0, weight - step_ * (place - 1))
        out[u] = Points(pts, {"place": place, "n": n, "step": step_})
    return out


def _minmax(computed: Mapping[str, float], weight: float, hib: bool, floor: float) -> dict[str, Points]:
    if not computed:
        return {}
    lo, hi = min(computed.values()), max(computed.values())
    out = {}
    for u, x in computed.items():
        ref = {"min": lo, "max": hi, "floor": floor}
        if _k(hi) == _k(lo):
            out[u] = Points(weight, ref, "各单位数值相同，得满分")
            continue
        share = (x - lo) / (hi - lo) if hib else (hi - x) / (hi - lo)
        out[u] = Points(weight * (floor + (100 - floor) * share) / 100, ref)
    return out


def _completion(
    values: Mapping[str, float | None], targets: Mapping[str, float | None], weight: float, hib: bool, cap: float
) -> tuple[dict[str, Points], dict[str, float]]:
    out: dict[str, Points] = {}
    computed: dict[str, float] = {}
    for u, x in values.items():
        t = targets.get(u)
        if x is None or not math.isfinite(x) or t is None or not math.isfinite(t) or t <= 0:
            continue
        if hib:
            ratio = x / t
        else:
            ratio = cap if x <= 0 else t / x
        out[u] = Points(weight * min(ratio, cap), {"target": t, "ratio": ratio, "cap": cap})
        computed[u] = x
    return out, computed


def _bands(computed: Mapping[str, float], weight: float, hib: bool, bands: Sequence[tuple[float, float]]) -> dict[str, Points]:
    ordered = sorted(bands)
    out = {}
    for u, x in computed.items():
        if hib:
            reached = [b for b in ordered if _k(x) >= _k(b[0])]
            band = reached[-1] if reached else None
        else:
            reached = [b for b in ordered if _k(x) <= _k(b[0])]
            band = reached[0] if reached else None
        share = band[1] if band else 0.0
        out[u] = Points(weight * share, {"bands": [list(b) for b in ordered], "band": list(band) if band else None})
    return out


def _ratio(computed: Mapping[str, float], weight: float, hib: bool) -> dict[str, Points]:
    if not computed:
        return {}
    best = max(computed.values()) if hib else min(computed.values())
    out = {}
    for u, x in computed.items():
        ref = {"best": best}
        if _k(x) == _k(best):
            out[u] = Points(weight, ref)
        elif hib:
            out[u] = Points(0.0 if best <= 0 else weight * x / best, ref)
        else:
            out[u] = Points(0.0 if best <= 0 else weight * best / x, ref)
    return out


_POLICY_LABEL = {"zero": "记0分", "min": "记可计算单位的最低分", "mean": "记可计算单位的平均分"}


def _apply_missing(
    out: dict[str, Points], values: Mapping[str, float | None], computed: Mapping[str, float],
    missing: str, method: str, n: int,
) -> None:
    got = [out[u].points for u in computed]
    if missing == "zero" or not got:
        fill = 0.0
    elif missing == "min":
        fill = min(got)
    elif missing == "mean":
        fill = math.fsum(got) / len(got)
    else:
        raise ValueError(f"unknown missing policy {missing!r}")
    for u in values:
        if u in computed:
            continue
        ref: dict[str, Any] = {"missing": missing}
        if method == "rank":
            ref.update({"place": None, "n": n})
        out[u] = Points(
            fill, ref, f"无法计算，按 missing={missing} {_POLICY_LABEL[missing]}（{fill:g}分）", computed=False
        )
