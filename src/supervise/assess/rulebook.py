"""Rulebooks: TOML files that define an assessment, validated on load.

Every problem is refused with a message that names the file, the key and the fix. The keys a
rulebook may hold are listed once, in `KEYS`; docs/rulebooks.md documents each of them (a test
keeps the two in step). Every number is bounded so that no sum, rounding or JSON document of a
run can overflow: a rulebook that loads can always be run. Doubts that are not mistakes (weights
that do not add up to `weights_total`) are kept as the rulebook's `warnings`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import SuperviseError
from . import expr as expr_mod
from .expr import Expr
from .settlement import REWARD_NEW, REWARD_UPGRADED

# The default rulebooks are under 6 KB; a file far larger is not a rulebook, and is refused before
# it is read.
MAX_RULEBOOK_BYTES = 256 * 1024
# Brackets inside brackets ([ ] and { }): a rulebook needs two (bands = [[0, 0.6], [10, 1.0]]).
# Deeper nesting is refused before tomllib sees it (it recurses once per level).
MAX_NESTING = 8
# Parts of one dotted key (a.b.c = 1): a rulebook needs none; tomllib's work grows with the square.
MAX_KEY_PARTS = 8
# Points (weight, step, deduction points, weights_total): far above any scale a bureau uses (100,
# 1000), far below anything a sum of points could overflow or a rounding could not represent.
MAX_POINTS = 10_000
# completion: the highest x / target counted (1.0 = the target; 100 = a hundred times the target).
MAX_CAP = 100
# 万元 (100亿元): rewards and the 新建入统 / 小升规 rates.
MAX_AMOUNT = 1_000_000
# Band thresholds, measured against values (which are below 1万亿), as expression literals are.
MAX_THRESHOLD = expr_mod.MAX_CONSTANT
DEFAULT_WEIGHTS_TOTAL = 100.0

METHODS = ("rank", "minmax", "completion", "bands", "ratio_to_best")
MISSING = ("zero", "min", "mean")
DEDUCTIONS = ("late", "missing", "rejected", "warning")
PERIODS = ("month", "quarter", "year")
DATASETS = ("monthly", "quarterly")

# Every key a rulebook may use, by table. docs/rulebooks.md documents each one.
KEYS: dict[str, tuple[str, ...]] = {
    "rulebook": ("id", "title", "version", "period", "data", "weights_total", "description"),
    "indicators": (
        "code", "label", "expr", "unit", "weight", "method", "higher_is_better", "missing",
        "step", "floor", "target", "cap", "bands", "description",
    ),
    "deductions": ("on", "points", "per_day", "max", "description"),
    "ranking": ("precision", "tie_break"),
    "settlement": ("rewards", "min_units", "reward_tally", "reward_new", "reward_upgraded"),
}
# Keys that belong to one method only.
METHOD_KEYS = {"step": "rank", "floor": "minmax", "target": "completion", "cap": "completion", "bands": "bands"}

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
CODE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class RulebookError(SuperviseError, ValueError):
    """A rulebook that cannot be used as it is."""


@dataclass(frozen=True)
class IndicatorRule:
    code: str
    label: str
    expr: Expr
    unit: str
    weight: float
    method: str
    higher_is_better: bool = True
    missing: str = "zero"
    step: float | None = None               # rank: points lost per place (default weight / n)
    floor: float = 60.0                     # minmax: share (0-100) of the weight the worst unit gets
    target: Expr | None = None              # completion: the target expression
    cap: float = 1.0                        # completion: highest x / target counted
    bands: tuple[tuple[float, float], ...] = ()  # bands: (threshold, share), sorted by threshold
    description: str = ""

    def describe(self) -> dict[str, Any]:
        """The indicator as results, bulletins and explain show it."""
        d: dict[str, Any] = {
            "code": self.code, "label": self.label, "unit": self.unit, "weight": self.weight,
            "method": self.method, "expr": self.expr.text, "higher_is_better": self.higher_is_better,
            "missing": self.missing,
        }
        if self.method == "rank" and self.step is not None:
            d["step"] = self.step
        if self.method == "minmax":
            d["floor"] = self.floor
        if self.method == "completion":
            d["target"] = self.target.text if self.target else None
            d["cap"] = self.cap
        if self.method == "bands":
            d["bands"] = [list(b) for b in self.bands]
        if self.description:
            d["description"] = self.description
        return d


@dataclass(frozen=True)
class DeductionRule:
    on: str
    points: float | None = None             # per occurrence (late: once; warning: per warning)
    per_day: float | None = None            # late only: per calendar day late
    max: float | None = None                # cap on this deduction
    description: str = ""


@dataclass(frozen=True)
class RankingRule:
    precision: int = 2
    tie_break: tuple[str, ...] = ()


@dataclass(frozen=True)
class SettlementRule:
    rewards: tuple[float, ...] = ()         # 万元 to ranks 1, 2, 3...; () = no transfer ledger
    min_units: int = 6
    reward_tally: bool = False              # the 新建入统 / 小升规 tally
    reward_new: float = REWARD_NEW          # 万元 per 新建入统 enterprise
    reward_upgraded: float = REWARD_UPGRADED  # 万元 per 小升规 enterprise


@dataclass(frozen=True)
class Rulebook:
    id: str
    title: str
    version: str
    period: str                             # month | quarter | year
    data: str                               # monthly | quarterly
    indicators: tuple[IndicatorRule, ...]
    deductions: tuple[DeductionRule, ...] = ()
    ranking: RankingRule = field(default_factory=RankingRule)
    settlement: SettlementRule | None = None
    description: str = ""
    path: str = ""                          # the file it came from
    text: str = field(default="", repr=False)  # its source text (part of the inputs hash)
    weights_total: float = DEFAULT_WEIGHTS_TOTAL  # what the indicator weights should add up to
    warnings: tuple[str, ...] = ()          # doubts shown by `supervise rules`, not refusals

    def indicator(self, code: str) -> IndicatorRule:
        for i in self.indicators:
            if i.code == code:
                return i
        raise KeyError(code)


# ------------------------------------------------------------------------- loading


