"""Plain data that the assessment engine returns and that bulletins, JSON and explain read.

These dataclasses are the contract between assess/ and bulletin/, jobs and the CLI.
Every number a bulletin prints comes from here; writers compute nothing themselves.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any

_FIELDS: dict[type, tuple[str, ...]] = {}


def _plain(obj: Any) -> Any:
    """dataclasses.asdict, without its deep copies of plain values (a national result has
    ~50,000 of them): the same output, several times faster."""
    t = type(obj)
    if t is str or t is float or t is int or t is bool or obj is None:
        return obj
    if t is dict:
        return {_plain(k): _plain(v) for k, v in obj.items()}
    if t is list:
        return [_plain(v) for v in obj]
    if is_dataclass(obj) and not isinstance(obj, type):
        names = _FIELDS.get(t)
        if names is None:
            names = _FIELDS[t] = tuple(f.name for f in fields(obj))
        return {n: _plain(getattr(obj, n)) for n in names}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return t(*[_plain(v) for v in obj])
    if isinstance(obj, (list, tuple)):
        return t(_plain(v) for v in obj)
    if isinstance(obj, dict):
        return t((_plain(k), _plain(v)) for k, v in obj.items())
    return copy.deepcopy(obj)


@dataclass
class IndicatorScore:
    """One unit's score on one rulebook indicator, with everything needed to explain it."""

    code: str                       # rulebook indicator code, e.g. "revenue_growth"
    label: str                      # 营业收入同比增速
    method: str                     # rank | minmax | completion | bands | ratio_to_best
    weight: float
    value: float | None             # the unit's computed value; None = cannot be computed
    points: float                   # points awarded (unrounded)
    inputs: dict[str, float | None] # aggregated inputs used by expr (and target), by name
    reference: dict[str, Any]       # what it was measured against: min, max, target, place, n, step, bands...
    note: str = ""                  # e.g. "无法计算（除数为0），按 missing=zero 记0分"


@dataclass
class Deduction:
    on: str                         # late | missing | rejected | warning
    count: float                    # occurrences (or days late)
    points: float                   # points deducted (positive number), after the cap
    note: str = ""
    occurrences: list[dict[str, str]] = field(default_factory=list)   # what was counted (rejections)


@dataclass
class UnitResult:
    county_code: str
    county_name: str
    scores: dict[str, IndicatorScore]   # by rulebook indicator code, in rulebook order
    deductions: list[Deduction]
    total: float                        # sum(points) - sum(deductions), unrounded
    score: float                        # total rounded to ranking.precision
    rank: int
    reporting_state: str                # on_time | late | missing | rejected
    net: float | None = None            # settlement net (万元), None without settlement
    values: dict[str, float | None] = field(default_factory=dict)  # aggregated dictionary values read
    days_late: int = 0
    warnings: int = 0                   # data-quality warnings of the version in force

    @property
    def deduction_points(self) -> float:
        return sum((d.points for d in self.deductions), 0.0)

    @property
    def points(self) -> dict[str, float]:
        return {code: s.points for code, s in self.scores.items()}


@dataclass
class Transfer:
    payer: str        # county code
    payee: str        # county code
    amount: float     # 万元


@dataclass
class Settlement:
    applies: bool
    reason: str                          # why there is no settlement (Chinese), "" when it applies
    rewards: list[float]                 # 万元 for ranks 1, 2, 3
    ledger: list[Transfer] = field(default_factory=list)
    net: dict[str, float] = field(default_factory=dict)


@dataclass
class RewardTally:
    """The yearly 新建入统 / 小升规 tally for one county, at the rulebook's rates per enterprise."""

    county_code: str
    county_name: str
    new_entered: float
    upgraded: float
    amount: float                        # 万元
    note: str = ""


@dataclass
class AssessmentResult:
    rulebook: str                        # rulebook id
    title: str
    version: str
    period: str                          # 2025-03 | 2025Q1 | 2025
    period_kind: str                     # month | quarter | year
    data: str                            # monthly | quarterly
    indicators: list[dict[str, Any]]     # the rulebook's indicators: code, label, unit, weight, method...
    units: list[UnitResult]              # sorted by rank, then county code
    settlement: Settlement | None
    rewards_tally: list[RewardTally] = field(default_factory=list)
    inputs_hash: str = ""
    assessment_id: int | None = None
    issued_at: str = ""                  # ISO time these inputs were first assessed (bulletin date)
    data_period: str = ""                # the submissions read: 2025-03, 2025Q1, or 2025-12 / 2025Q4 for a year
    deductions: list[dict[str, Any]] = field(default_factory=list)  # the rulebook's deduction rules
    ranking: dict[str, Any] = field(default_factory=dict)           # precision, tie_break
    reward_new: float | None = None      # 万元 per 新建入统 enterprise in rewards_tally (None: no tally)
    reward_upgraded: float | None = None # 万元 per 小升规 enterprise
    # Whether there was enough to rank on (assess.coverage): when not, `units` is empty, there is
    # no settlement or tally, and `reasons` says what was missing (Chinese, one sentence each).
    assessable: bool = True
    reasons: list[str] = field(default_factory=list)
    coverage: dict[str, Any] = field(default_factory=dict)   # counts: units, with_data, computable...

    def to_dict(self) -> dict[str, Any]:
        """Everything, as plain JSON-ready data (stored with the result; see from_dict)."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AssessmentResult:
        """Rebuild a result stored with to_dict()."""
        d = dict(d)
        units = []
        for u in d.pop("units"):
            u = dict(u)
            u["scores"] = {k: IndicatorScore(**s) for k, s in u["scores"].items()}
            u["deductions"] = [Deduction(**x) for x in u["deductions"]]
            units.append(UnitResult(**u))
        s = d.pop("settlement")
        settlement = None
        if s is not None:
            s = dict(s)
            s["ledger"] = [Transfer(**t) for t in s["ledger"]]
            settlement = Settlement(**s)
        tally = [RewardTally(**t) for t in d.pop("rewards_tally", [])]
        return cls(units=units, settlement=settlement, rewards_tally=tally, **d)

    def unit(self, county_code: str) -> UnitResult:
        for u in self.units:
            if u.county_code == county_code:
                return u
        raise KeyError(county_code)

    def to_json(self) -> dict[str, Any]:
        """The `run --json` shape of one assessment (a contract: rulebook, version, ranking, ledger, net; plus extra keys)."""
        s = self.settlement
        return {
            "rulebook": self.rulebook,
            "title": self.title,
            "version": self.version,
            "period": self.period,
            "ranking": [
                {
                    "county_code": u.county_code,
                    "county_name": u.county_name,
                    "score": u.score,
                    "rank": u.rank,
                    "points": {k: round(v, 6) for k, v in u.points.items()},
                    "deductions": round(u.deduction_points, 6),
                    "reporting_state": u.reporting_state,
                }
                for u in self.units
            ],
            "ledger": [asdict(t) for t in (s.ledger if s else [])],
            "net": dict(s.net) if s and s.applies else {},
            "settlement": None if s is None else {"applies": s.applies, "reason": s.reason, "rewards": s.rewards},
            "inputs_hash": self.inputs_hash,
            "assessable": self.assessable,
            "reasons": list(self.reasons),
        }
