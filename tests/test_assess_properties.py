"""Properties of the pure core that must hold for any data."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from supervise.assess.engine import UnitInput, assess
from supervise.assess.loading import parse_rulebook
from supervise.assess.ranking import rank_units
from supervise.assess.scoring import score
from supervise.assess.settlement import settle
from supervise.registry import load_registry

DICT = load_registry().indicators

BOOK = parse_rulebook(
    """
[rulebook]
id = "p"
title = "性质"
version = "1"
period = "month"

[[indicators]]
code = "a"
expr = "revenue_ytd"
weight = 20
method = "rank"
missing = "mean"

[[indicators]]
code = "b"
expr = "tax_ytd"
weight = 20
method = "minmax"
higher_is_better = false
missing = "min"

[[indicators]]
code = "c"
expr = "export_ytd"
weight = 20
method = "completion"
target = "targets.park_new"

[[indicators]]
code = "d"
expr = "rd_ytd"
weight = 20
method = "bands"
bands = [[0, 0.5], [50, 0.8], [100, 1]]

[[indicators]]
code = "e"
expr = "employees"
weight = 20
method = "ratio_to_best"

[[deductions]]
on = "late"
per_day = 1
max = 3

[ranking]
precision = 1
tie_break = ["a"]

[settlement]
rewards = [500, 300, 100]
""",
    DICT,
)

values = st.one_of(st.none(), st.integers(0, 200).map(float))
unit_data = st.fixed_dictionaries(
    {
        "values": st.one_of(
            st.none(),
            st.fixed_dictionaries({k: values for k in ("revenue_ytd", "tax_ytd", "export_ytd", "rd_ytd", "employees")}),
        ),
        "target": st.one_of(st.none(), st.integers(0, 50).map(float)),
        "days_late": st.integers(0, 6),
    }
)


def make_units(data: list[dict]) -> list[UnitInput]:
    return [
        UnitInput(
            county_code=f"C{i:02d}", county_name=f"县{i}", values=d["values"],
            targets={"park_new": d["target"]},
            state="missing" if d["values"] is None else ("late" if d["days_late"] else "on_time"),
            days_late=d["days_late"] if d["values"] is not None else 0,
        )
        for i, d in enumerate(data)
    ]


@settings(max_examples=150, deadline=None)
@given(st.lists(unit_data, min_size=1, max_size=16), st.randoms(use_true_random=False))
def test_shuffling_units_never_changes_a_rank(data: list[dict], rnd) -> None:  # type: ignore[no-untyped-def]
    units = make_units(data)
    shuffled = list(units)
    rnd.shuffle(shuffled)
    a = assess(BOOK, "2025-03", "2025-03", 0.25, units)
    b = assess(BOOK, "2025-03", "2025-03", 0.25, shuffled)
    assert {u.county_code: (u.rank, u.score, u.net) for u in a.units} == {
        u.county_code: (u.rank, u.score, u.net) for u in b.units
    }
    assert a.to_json() == b.to_json()


quarters = st.integers(-4_000_000, 4_000_000).map(lambda i: i / 4)  # exact in binary floating point


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.text("ABCDEFGH", min_size=1, max_size=2), st.one_of(st.none(), quarters), min_size=1),
    quarters,
    st.booleans(),
    st.sampled_from([0.0, 60.0, 100.0]),
)
def test_adding_a_constant_never_changes_minmax_points(vals, c, hib, floor) -> None:  # type: ignore[no-untyped-def]
    before = score("minmax", vals, weight=30, higher_is_better=hib, floor=floor)
    after = score("minmax", {u: None if v is None else v + c for u, v in vals.items()},
                  weight=30, higher_is_better=hib, floor=floor)
    assert {u: round(p.points, 9) for u, p in before.items()} == {u: round(p.points, 9) for u, p in after.items()}


totals = st.dictionaries(
    st.text("ABCDEFGHIJKLMNOP", min_size=1, max_size=3),
    st.one_of(st.integers(-50, 100).map(float), st.floats(-50, 100)),
    min_size=1, max_size=20,
)


@settings(max_examples=300, deadline=None)
@given(totals, st.integers(0, 3))
def test_a_higher_total_never_ranks_below_a_lower_one(t: dict[str, float], precision: int) -> None:
    places = {p.unit: p for p in rank_units(t, precision)}
    for a in t:
        for b in t:
            if t[a] > t[b]:
                assert places[a].rank <= places[b].rank
            if places[a].score > places[b].score:
                assert places[a].rank < places[b].rank


@settings(max_examples=300, deadline=None)
@given(
    totals,
    st.lists(st.integers(0, 1000).map(float) | st.sampled_from([0.3333, 12.5, 99.99]), min_size=0, max_size=4),
    st.integers(0, 8),
)
def test_ledger_always_sums_to_zero(t: dict[str, float], rewards: list[float], min_units: int) -> None:
    ranks = {p.unit: p.rank for p in rank_units(t, 0)}
    s = settle(ranks, rewards, max(min_units, len(rewards)))
    if not s.applies:
        assert s.ledger == [] and s.reason
        return
    yuan = {u: round(n * 10000) for u, n in s.net.items()}
    assert sum(yuan.values()) == 0
    flows = {u: 0 for u in ranks}
    for row in s.ledger:
        assert row.amount > 0 and row.payer != row.payee
        flows[row.payer] -= round(row.amount * 10000)
        flows[row.payee] += round(row.amount * 10000)
    assert flows == yuan
    # without ties every reward is paid in full by its own payer
    if len(set(ranks.values())) == len(ranks) and len(ranks) >= 2 * len(rewards):
        assert sorted(yuan.values(), reverse=True)[: len(rewards)] == sorted(
            (round(r * 10000) for r in rewards), reverse=True
        ) or not any(rewards)
