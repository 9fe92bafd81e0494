"""The assessment engine: rulebooks (TOML) → scores, ranks, deductions and the settlement ledger.

The pure core (expr, scoring, ranking, settlement, coverage, engine) takes plain data; runner.py reads the
workspace and stores results. `run_assessments` is the entry point for `supervise run`.
"""

from __future__ import annotations

from .model import (
    AssessmentResult,
    Deduction,
    IndicatorScore,
    RewardTally,
    Settlement,
    Transfer,
    UnitResult,
)
from .rulebook import Rulebook, RulebookError, load_rulebook, load_rulebooks, parse_rulebook
from .runner import (
    AssessError,
    explain,
    explain_unit,
    prepare,
    run_assessments,
    workspace_rulebooks,
)

__all__ = [
    "AssessError", "AssessmentResult", "Deduction", "IndicatorScore", "RewardTally", "Rulebook",
    "RulebookError", "Settlement", "Transfer", "UnitResult", "explain", "explain_unit",
    "load_rulebook", "load_rulebooks", "parse_rulebook", "prepare", "run_assessments",
    "workspace_rulebooks",
]
