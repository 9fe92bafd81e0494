"""Geometry of the inline SVG charts on the bulletin page (the template draws them).

Only layout lives here (pixel positions from the model's numbers); labels reach the SVG through
the autoescaping template, never through string concatenation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .model import AssessmentSection, ClusterSummary

ROW = 22
LABEL_W = 150
PLOT_W = 460
VALUE_W = 60
TOP = 28
BOTTOM = 24


@dataclass
class Bar:
    label: str
    value_text: str
    y: float
    width: float
    mark: str = ""          # top | bottom | "" (colour)


@dataclass
class Tick:
    x: float
    text: str


@dataclass
class HBarChart:
    title: str
    width: int
    height: int
    label_w: int
    plot_w: int
    row: int
    top: int
    bars: list[Bar]
    ticks: list[Tick]
    gap_y: float | None      # where rows were left out (a dashed line), None if none
    gap_text: str


def _scale(top: float) -> float:
    """A round axis maximum at or above `top`."""
    if top <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(top))
    for step in (1, 2, 2.5, 5, 10):
        if step * mag >= top:
            return step * mag
    return 10 * mag


def _ticks(scale: float, fmt: str) -> list[Tick]:
    return [Tick(LABEL_W + PLOT_W * i / 4, format(scale * i / 4, fmt)) for i in range(5)]


def score_chart(s: AssessmentSection) -> HBarChart:
    """Horizontal bars of the scores, in rank order (head and tail only for a long ranking)."""
    ex = s.ranking_excerpt
    scale = _scale(s.max_score)
    bars: list[Bar] = []
    y = float(TOP)
    gap_y = None
    for i, r in enumerate(ex.rows):
        if ex.omitted and i == len(ex.head):
            gap_y = y + ROW / 2
            y += ROW
        w = PLOT_W * max(r.score, 0.0) / scale
        bars.append(Bar(f"{r.rank}. {r.county_name}", f"{r.score:.2f}", y, round(w, 1), r.mark))
        y += ROW
    height = int(y + BOTTOM)
    gap_text = f"……中间{ex.omitted}个县（市）从略" if ex.omitted else ""
    return HBarChart("综合得分", LABEL_W + PLOT_W + VALUE_W, height, LABEL_W, PLOT_W, ROW, TOP, bars,
                     _ticks(scale, "g"), gap_y, gap_text)


def tier_chart(summary: ClusterSummary) -> HBarChart:
    """How many clusters are in each revenue tier."""
    scale = _scale(max((t.count for t in summary.tiers), default=0))
    bars = []
    y = float(TOP)
    for t in summary.tiers:
        bars.append(Bar(t.tier, f"{t.count}个", y, round(PLOT_W * t.count / scale, 1)))
        y += ROW
    return HBarChart("集群规模档次分布", LABEL_W + PLOT_W + VALUE_W, int(y + BOTTOM), LABEL_W, PLOT_W, ROW, TOP,
                     bars, _ticks(scale, "g"), None, "")
