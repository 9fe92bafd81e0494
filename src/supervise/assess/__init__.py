"""The assessment engine: rulebooks (TOML) → scores, ranks, deductions and the settlement ledger.

The pure core: rulebook, expr, aggregate, scoring, ranking, settlement, coverage, engine and
explain take plain data and return plain data. Reading the store and saving results is
`jobs.assessment` (`run_assessments`, `explain`), the entry points of `supervise run` and
`supervise explain`.
"""

from __future__ import annotations

from ..errors import SuperviseError
from .explain import explain_unit
from .loading import load_rulebook, load_rulebooks, parse_rulebook
from .model import (
    AssessmentResult,
    Deduction,
    IndicatorScore,
    RewardTally,
    Settlement,
    Transfer,
    UnitResult,
)
from .rulebook import Rulebook, RulebookError


class AssessError(SuperviseError, ValueError):
    """An assessment that cannot be run as asked."""


__all__ = [
    "AssessError", "AssessmentResult", "Deduction", "IndicatorScore", "RewardTally", "Rulebook",
    "RulebookError", "Settlement", "Transfer", "UnitResult", "explain_unit",
    "load_rulebook", "load_rulebooks", "parse_rulebook",
]
