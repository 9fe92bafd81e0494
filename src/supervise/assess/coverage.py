"""Whether a period can be assessed at all (pure): is there enough to rank on?

A ranking moves money between county budgets, so it must rest on data. Before any unit is
scored, `check` looks at what the rulebook needs and how much of it is there:

- submissions: the share of units with data in force for the period (an accepted submission);
- targets: for each `targets.<name>` the rulebook reads, the share of units with that target for
  the assessed year (reference/targets.csv);
- indicators: for each indicator, the share of the units with data whose value can be computed.

Any of these below `min_coverage` (supervise.toml [assessment]), or none at all whatever the
setting, makes the period **not assessable**: nothing is ranked or settled, and the verdict says,
in Chinese, what is missing (which submissions, which targets for which year, which inputs).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..registry import TARGET_LABELS
from .rulebook import IndicatorRule, Rulebook

if TYPE_CHECKING:
    from .engine import UnitInput

TARGETS_FILE = "reference/targets.csv"
SETTING = "supervise.toml [assessment] min_coverage"
# Why a unit has no data, as people say it (the unit's reporting state).
NO_DATA_LABELS = {"missing": "漏报", "rejected": "退回", "not_due": "未到截止", "on_time": "数据缺失", "late": "数据缺失"}
# A list of county names in a reason stops after this many ("…等N个").
NAMES_SHOWN = 20


@dataclass(frozen=True)
class Verdict:
    """Whether the units can be ranked, why not (one Chinese sentence each), and the counts."""

    assessable: bool
    reasons: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)


def env_of(values: Mapping[str, float | None] | None, targets: Mapping[str, float | None],
           elapsed: float) -> dict[str, float | None]:
    """The names an expression may read for one unit: its values, `targets.<name>`, year_elapsed."""
    env: dict[str, float | None] = dict(values or {})
    env.update({f"targets.{k}": v for k, v in targets.items()})
    env["year_elapsed"] = elapsed
    return env


def target_names(book: Rulebook) -> dict[str, list[IndicatorRule]]:
    """Each annual target the rulebook reads, with the indicators that read it, in rulebook order."""
    out: dict[str, list[IndicatorRule]] = {}
    for rule in book.indicators:
        names = list(rule.expr.targets) + (list(rule.target.targets) if rule.target else [])
        for name in dict.fromkeys(names):
            out.setdefault(name, []).append(rule)
    return out


def check(
    book: Rulebook,
    units: Sequence[UnitInput],
    *,
    data_label: str,
    year: int,
    elapsed: float,
    min_coverage: float,
) -> Verdict:
    """The verdict on one rulebook's units for one period, before anything is scored."""
    n = len(units)
    detail: dict[str, Any] = {"units": n, "min_coverage": min_coverage}
    if n == 0:
        return Verdict(False, ("没有参加考核的县（市）：reference/counties.csv 中没有标为参加考核（assessed）的单位",), detail)
    reasons: list[str] = []
    with_data = [u for u in units if u.values is not None]
    detail["with_data"] = len(with_data)
    detail["missing_data"] = sorted(u.county_code for u in units if u.values is None)
    reasons += _data_reasons(units, with_data, data_label, min_coverage)
    targets = {u.county_code: u.targets for u in units}
    names = {u.county_code: u.county_name for u in units}
    blamed, target_lines, missing_targets = _targets(book, targets, names, year, min_coverage)
    reasons += target_lines
    detail["missing_targets"] = missing_targets
    computable: dict[str, int] = {}
    for rule in book.indicators:
        ok = [u for u in with_data if _computable(rule, env_of(u.values, u.targets, elapsed))]
        computable[rule.code] = len(ok)
        if rule.code in blamed or not with_data:
            continue
        if not _enough(len(ok), len(with_data), min_coverage):
            reasons.append(_indicator_reason(rule, with_data, ok, elapsed, min_coverage))
    detail["computable"] = computable
    return Verdict(not reasons, tuple(reasons), detail)


def check_targets(
    book: Rulebook,
    targets: Mapping[str, Mapping[str, float | None]],
    names: Mapping[str, str],
    year: int,
    min_coverage: float,
) -> list[str]:
    """Only the targets part of `check`: what `supervise rules` can tell before any data arrive."""
    return _targets(book, targets, names, year, min_coverage)[1]


# --------------------------------------------------------------------------- the parts


def _enough(have: int, of: int, min_coverage: float) -> bool:
    """None is never enough; otherwise at least `min_coverage` of the units."""
    return have > 0 and have >= min_coverage * of


def _share(x: float) -> str:
    return f"{100 * x:.0f}%"


def _names(codes: Iterable[str], names: Mapping[str, str]) -> str:
    """County names in county-code order (the same reasons whatever order the units came in)."""
    ordered = [names.get(c, c) for c in sorted(codes)]
    shown = "、".join(ordered[:NAMES_SHOWN])
    return shown + (f"等{len(ordered)}个" if len(ordered) > NAMES_SHOWN else "")


def _data_reasons(
    units: Sequence[UnitInput], with_data: Sequence[UnitInput], data_label: str, min_coverage: float
) -> list[str]:
    n, k = len(units), len(with_data)
    if _enough(k, n, min_coverage):
        return []
    lacking = [u for u in units if u.values is None]
    counts = {label: 0 for label in NO_DATA_LABELS.values()}  # in a fixed order, whatever the units'
    for u in lacking:
        label = NO_DATA_LABELS.get(u.state, u.state)
        counts[label] = counts.get(label, 0) + 1
    why = "、".join(f"{label}{c}个" for label, c in counts.items() if c)
    if k == 0:
        return [f"{data_label}：参加考核的{n}个县（市）均没有可用的报送数据（{why}），无法排名"]
    names = {u.county_code: u.county_name for u in units}
    return [
        f"{data_label}：参加考核的{n}个县（市）中仅{k}个有可用的报送数据（{_share(k / n)}，"
        f"低于{SETTING} 要求的{_share(min_coverage)}），无法排名；"
        f"缺少数据的：{_names((u.county_code for u in lacking), names)}（{why}）"
    ]


def _targets(
    book: Rulebook,
    targets: Mapping[str, Mapping[str, float | None]],
    names: Mapping[str, str],
    year: int,
    min_coverage: float,
) -> tuple[set[str], list[str], dict[str, list[str]]]:
    """(indicators blamed on a missing target, the reasons, target → counties lacking it)."""
    n = len(targets)
    blamed: set[str] = set()
    reasons: list[str] = []
    lacking_by_name: dict[str, list[str]] = {}
    for name, rules in target_names(book).items():
        lacking = sorted(c for c, t in targets.items() if not _finite(t.get(name)))
        if lacking:
            lacking_by_name[name] = lacking
        have = n - len(lacking)
        if n == 0 or _enough(have, n, min_coverage):
            continue
        blamed.update(r.code for r in rules)
        label = TARGET_LABELS.get(name, name)
        uses = "、".join(f"{r.code}（{r.label}，{r.weight:g}分）" for r in rules)
        if have == 0:
            reasons.append(
                f"{TARGETS_FILE} 没有{year}年的年度目标 {name}（{label}）：参加考核的{n}个县（市）均缺少，"
                f"依赖它的指标 {uses}无法计算"
            )
        else:
            reasons.append(
                f"{TARGETS_FILE} 中{year}年的年度目标 {name}（{label}）仅{have}个县（市）有（{_share(have / n)}，"
                f"低于{SETTING} 要求的{_share(min_coverage)}），缺少的：{_names(lacking, names)}；"
                f"依赖它的指标 {uses}无法计算"
            )
    return blamed, reasons, lacking_by_name


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _computable(rule: IndicatorRule, env: Mapping[str, float | None]) -> bool:
    """Whether the scoring methods can compute this unit's value (completion: and its target)."""
    if not _finite(rule.expr.evaluate(env)):
        return False
    if rule.method != "completion":
        return True
    target = rule.target.evaluate(env) if rule.target else None
    return target is not None and math.isfinite(target) and target > 0


def _indicator_reason(
    rule: IndicatorRule, with_data: Sequence[UnitInput], ok: Sequence[UnitInput], elapsed: float,
    min_coverage: float,
) -> str:
    done = {u.county_code for u in ok}
    names = list(dict.fromkeys(list(rule.expr.inputs) + (list(rule.target.inputs) if rule.target else [])))
    absent: set[str] = set()
    for u in with_data:
        if u.county_code not in done:
            env = env_of(u.values, u.targets, elapsed)
            absent.update(n for n in names if not _finite(env.get(n)))
    why = f"缺少 {'、'.join(n for n in names if n in absent)}" if absent else "除数为0或目标不大于0"
    k, c = len(with_data), len(ok)
    head = f"指标 {rule.code}（{rule.label}，{rule.weight:g}分）"
    if c == 0:
        return f"{head}：有数据的{k}个县（市）均无法计算（{why}）"
    return (
        f"{head}：有数据的{k}个县（市）中仅{c}个可以计算（{_share(c / k)}，低于{SETTING} 要求的"
        f"{_share(min_coverage)}；{why}）"
    )
