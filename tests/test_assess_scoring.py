"""The five methods, the missing policies and the deductions, with numbers worked out by hand."""

from __future__ import annotations

import pytest

from supervise.assess.engine import compute_deductions
from supervise.assess.rulebook import DeductionRule
from supervise.assess.scoring import score


def pts(result: dict) -> dict[str, float]:
    return {u: round(p.points, 9) for u, p in result.items()}


# ---------------------------------------------------------------- rank


def test_rank_shares_the_better_place() -> None:
    # weight 12, n = 4, step = 12/4 = 3. Places: A 1, B 2, C 2 (equal to B), D 4.
    # A 12; B, C 12 - 3*1 = 9; D 12 - 3*3 = 3.
    r = score("rank", {"A": 30, "B": 20, "C": 20, "D": 10}, weight=12)
    assert pts(r) == {"A": 12, "B": 9, "C": 9, "D": 3}
    assert r["D"].reference == {"place": 4, "n": 4, "step": 3}


def test_rank_lower_is_better() -> None:
    # smallest first: D 1 -> 12; B, C 2 -> 9; A 4 -> 3.
    r = score("rank", {"A": 30, "B": 20, "C": 20, "D": 10}, weight=12, higher_is_better=False)
    assert pts(r) == {"A": 3, "B": 9, "C": 9, "D": 12}


def test_rank_step_and_floor_at_zero() -> None:
    # step 5: A 12, B/C 12-5 = 7, D 12-15 = -3 -> 0 (not below 0).
    r = score("rank", {"A": 30, "B": 20, "C": 20, "D": 10}, weight=12, step=5)
    assert pts(r) == {"A": 12, "B": 7, "C": 7, "D": 0}


def test_rank_n_counts_units_that_cannot_be_computed() -> None:
    # n = 5 (E is ranked but has no value): step 12/5 = 2.4.
    # A 12; B, C 12 - 2.4 = 9.6; D (place 4) 12 - 7.2 = 4.8; E missing=zero -> 0.
    r = score("rank", {"A": 30, "B": 20, "C": 20, "D": 10, "E": None}, weight=12)
    assert pts(r) == {"A": 12, "B": 9.6, "C": 9.6, "D": 4.8, "E": 0}
    assert r["E"].reference["place"] is None and not r["E"].computed


# ---------------------------------------------------------------- minmax


def test_minmax_worked_by_hand() -> None:
    # weight 20, floor 60, min 10, max 30.
    # A (10): 20*60/100 = 12; B (20): 20*(60+40*0.5)/100 = 16; C (30): 20.
    r = score("minmax", {"A": 10, "B": 20, "C": 30}, weight=20)
    assert pts(r) == {"A": 12, "B": 16, "C": 20}
    assert r["B"].reference == {"min": 10, "max": 30, "floor": 60}


def test_minmax_lower_is_better_uses_max_minus_x() -> None:
    # (max - x)/(max - min): A (10) 1 -> 20; B 0.5 -> 16; C 0 -> 12.
    r = score("minmax", {"A": 10, "B": 20, "C": 30}, weight=20, higher_is_better=False)
    assert pts(r) == {"A": 20, "B": 16, "C": 12}


def test_minmax_floor_zero_and_all_equal() -> None:
    # floor 0: A 0, B 20*50/100 = 10, C 20.
    assert pts(score("minmax", {"A": 10, "B": 20, "C": 30}, weight=20, floor=0)) == {"A": 0, "B": 10, "C": 20}
    # max = min: every unit the full weight.
    assert pts(score("minmax", {"A": 7, "B": 7}, weight=20)) == {"A": 20, "B": 20}


# ---------------------------------------------------------------- completion


def test_completion_worked_by_hand() -> None:
    # weight 40, cap 1: A 15/30 = 0.5 -> 20; B 45/30 = 1.5 capped at 1 -> 40;
    # C -3/30 = -0.1 -> -4 (lost enterprises lose points).
    r = score("completion", {"A": 15, "B": 45, "C": -3}, weight=40, targets={"A": 30, "B": 30, "C": 30})
    assert pts(r) == {"A": 20, "B": 40, "C": -4}
    assert r["A"].reference == {"target": 30, "ratio": 0.5, "cap": 1.0}
    # cap 1.2: B min(1.5, 1.2) * 40 = 48.
    r = score("completion", {"B": 45}, weight=40, targets={"B": 30}, cap=1.2)
    assert pts(r) == {"B": 48}


def test_completion_bad_target_cannot_be_computed() -> None:
    # A's target 0 and B's missing: neither can be computed; C 10/20 -> 20.
    # missing=mean: the mean of the computed units' points = 20.
    r = score(
        "completion", {"A": 5, "B": 5, "C": 10}, weight=40, targets={"A": 0, "B": None, "C": 20}, missing="mean"
    )
    assert pts(r) == {"A": 20, "B": 20, "C": 20}
    assert not r["A"].computed and "目标值缺失或不大于0" in r["A"].note


def test_completion_lower_is_better() -> None:
    # target / x: A 40/50 = 0.8 -> 32; B 40/20 = 2 capped -> 40; C x = 0 -> the cap -> 40.
    r = score("completion", {"A": 50, "B": 20, "C": 0}, weight=40,
              targets={"A": 40, "B": 40, "C": 40}, higher_is_better=False)
    assert pts(r) == {"A": 32, "B": 40, "C": 40}


# ---------------------------------------------------------------- bands


def test_bands_highest_threshold_reached() -> None:
    # [[0, .6], [10, .8], [20, 1]] of 10 points: -1 -> 0; 0 -> 6; 9.99 -> 6; 10 -> 8; 25 -> 10.
    bands = [(0, 0.6), (10, 0.8), (20, 1.0)]
    r = score("bands", {"A": -1, "B": 0, "C": 9.99, "D": 10, "E": 25}, weight=10, bands=bands)
    assert pts(r) == {"A": 0, "B": 6, "C": 6, "D": 8, "E": 10}
    assert r["D"].reference["band"] == [10, 0.8]
    assert r["A"].reference["band"] is None


def test_bands_lower_is_better() -> None:
    # ceilings [[5, 1], [10, .8], [20, .5]]: 3 -> under 5 -> 10; 10 -> 8; 15 -> under 20 -> 5; 21 -> 0.
    bands = [(5, 1.0), (10, 0.8), (20, 0.5)]
    r = score("bands", {"A": 3, "B": 10, "C": 15, "D": 21}, weight=10, bands=bands, higher_is_better=False)
    assert pts(r) == {"A": 10, "B": 8, "C": 5, "D": 0}


# ---------------------------------------------------------------- ratio_to_best


def test_ratio_to_best() -> None:
    # max 40: A 15; B 15*10/40 = 3.75; C 0.
    assert pts(score("ratio_to_best", {"A": 40, "B": 10, "C": 0}, weight=15)) == {"A": 15, "B": 3.75, "C": 0}
    # lower is better, min 10: B 15; A 15*10/40 = 3.75.
    r = score("ratio_to_best", {"A": 40, "B": 10}, weight=15, higher_is_better=False)
    assert pts(r) == {"A": 3.75, "B": 15}
    # everybody at 0: all at the best value.
    assert pts(score("ratio_to_best", {"A": 0, "B": 0}, weight=15)) == {"A": 15, "B": 15}


# ---------------------------------------------------------------- missing


@pytest.mark.parametrize(
    "policy, expected",
    [
        ("zero", 0),
        ("min", 12),   # lowest computed points: A's 12
        ("mean", 16),  # (12 + 16 + 20) / 3
    ],
)
def test_missing_policies(policy: str, expected: float) -> None:
    # minmax weight 20, floor 60 over A 10, B 20, C 30: 12, 16, 20 (see above). D cannot be computed.
    r = score("minmax", {"A": 10, "B": 20, "C": 30, "D": None}, weight=20, missing=policy)
    assert pts(r) == {"A": 12, "B": 16, "C": 20, "D": expected}
    assert f"missing={policy}" in r["D"].note


def test_nobody_computed_gets_zero() -> None:
    assert pts(score("minmax", {"A": None, "B": None}, weight=20, missing="mean")) == {"A": 0, "B": 0}


# ---------------------------------------------------------------- deductions


LATE_PER_DAY = DeductionRule(on="late", per_day=1, max=5)
LATE_ONCE = DeductionRule(on="late", points=2)
MISSING = DeductionRule(on="missing", points=10)
REJECTED = DeductionRule(on="rejected", points=5)
WARNING = DeductionRule(on="warning", points=0.5, max=2)
ALL = [LATE_PER_DAY, LATE_ONCE, MISSING, REJECTED, WARNING]


def total(state: str, days: int = 0, warnings: int = 0, rejections: int = 0) -> float:
    occurrences = [{"kind": "invalid", "file": f"f{i}.xlsx", "at": "2025-04-03T10:00:00+08:00", "reason": "x"}
                   for i in range(rejections)]
    return sum(d.points for d in compute_deductions(ALL, state, days, warnings, occurrences))


def test_deductions_worked_by_hand() -> None:
    assert total("on_time") == 0
    # late 3 days: 3*1 (per day) + 2 (once) = 5
    assert total("late", days=3) == 5
    # late 7 days: 7 capped at 5, + 2 = 7
    assert total("late", days=7) == 7
    assert total("missing") == 10
    # rejected: once per rejection for the period, whatever the state now
    # nothing accepted is 漏报 whether nothing came or everything was rejected: sending a bad
    # file never costs less than sending nothing (10 + 5 for the one rejection)
    assert total("rejected") == 10
    assert total("rejected", rejections=1) == 15
    assert total("on_time", rejections=2) == 10    # rejected twice, then resubmitted on time
    assert total("late", days=1, rejections=1) == 1 + 2 + 5
    # 3 warnings: 1.5; 6 warnings: 3 capped at 2; late 1 day + 2 warnings: 1 + 2 + 1 = 4
    assert total("on_time", warnings=3) == 1.5
    assert total("on_time", warnings=6) == 2
    assert total("late", days=1, warnings=2) == 4


def test_deduction_notes_say_why() -> None:
    (d,) = compute_deductions([LATE_PER_DAY], "late", 7, 0)
    assert (d.on, d.count, d.points) == ("late", 7, 5)
    assert d.note == "迟报7天，每天扣1分，以5分为限"
