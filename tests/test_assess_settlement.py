"""Ranking (ties, tie-break, rounding) and the settlement ledger, worked out by hand."""

from __future__ import annotations

from supervise.assess.ranking import rank_units, round_half_up
from supervise.assess.settlement import reward_tally, settle

REWARDS = [500, 300, 100]


def ranks(places: list) -> dict[str, int]:
    return {p.unit: p.rank for p in places}


# ---------------------------------------------------------------- ranking


def test_equal_rounded_totals_share_a_rank() -> None:
    # 90.004 and 90.0 both round to 90.00: ranks 1, 1; 85 and 85: 3, 3; 80: 5.
    places = rank_units({"A": 90.004, "B": 90.0, "C": 85, "D": 85, "E": 80}, precision=2)
    assert ranks(places) == {"A": 1, "B": 1, "C": 3, "D": 3, "E": 5}
    assert [p.unit for p in places] == ["A", "B", "C", "D", "E"]


def test_rounding_is_half_up() -> None:
    # 四舍五入: 85.125 -> 85.13 (banker's rounding would give 85.12); 2.675 -> 2.68.
    assert round_half_up(85.125, 2) == 85.13
    assert round_half_up(2.675, 2) == 2.68
    assert round_half_up(-0.004, 2) == 0.0
    # 0.1 + 0.2 = 0.30000000000000004 is 0.3
    assert round_half_up(0.1 + 0.2, 1) == 0.3


def test_tie_break_separates_by_points_in_order() -> None:
    # A and B tie on 90; first tie-break points equal (10, 10), second 5 vs 7: B ahead.
    # C and D tie on 80 and on every tie-break indicator: they still share rank 3.
    places = rank_units(
        {"A": 90, "B": 90, "C": 80, "D": 80},
        tie_points={"A": [10, 5], "B": [10, 7], "C": [3, 3], "D": [3, 3]},
    )
    assert ranks(places) == {"B": 1, "A": 2, "C": 3, "D": 3}


# ---------------------------------------------------------------- settlement


def test_no_ties_last_pays_first() -> None:
    # 8 units ranked 1..8: 8 pays 1 500, 7 pays 2 300, 6 pays 3 100.
    s = settle({f"U{i}": i for i in range(1, 9)}, REWARDS, 6)
    assert s.applies
    assert [(t.payer, t.payee, t.amount) for t in s.ledger] == [
        ("U8", "U1", 500), ("U7", "U2", 300), ("U6", "U3", 100),
    ]
    assert s.net == {"U1": 500, "U2": 300, "U3": 100, "U4": 0, "U5": 0, "U6": -100, "U7": -300, "U8": -500}


def test_tie_at_the_top() -> None:
    # A and B share rank 1: places 1 and 2, (500 + 300) / 2 = 400 each; C (rank 3) 100.
    s = settle({"A": 1, "B": 1, "C": 3, "D": 4, "E": 5, "F": 6, "G": 7, "H": 8}, REWARDS, 6)
    assert s.net["A"] == 400 and s.net["B"] == 400 and s.net["C"] == 100
    # payers H (rank 8) 500, G 300, F 100; H -> A 400, H -> B 100, G -> B 300, F -> C 100
    assert [(t.payer, t.payee, t.amount) for t in s.ledger] == [
        ("H", "A", 400), ("H", "B", 100), ("G", "B", 300), ("F", "C", 100),
    ]


def test_tie_spanning_places_3_and_4() -> None:
    # 8 units; C and D share rank 3 = places 3 and 4: place 3's 100 + place 4's 0 -> 50 each.
    s = settle({"A": 1, "B": 2, "C": 3, "D": 3, "E": 5, "F": 6, "G": 7, "H": 8}, REWARDS, 6)
    assert s.net == {"A": 500, "B": 300, "C": 50, "D": 50, "E": 0, "F": -100, "G": -300, "H": -500}
    assert [(t.payer, t.payee, t.amount) for t in s.ledger] == [
        ("H", "A", 500), ("G", "B", 300), ("F", "C", 50), ("F", "D", 50),
    ]


def test_tie_spanning_places_3_and_4_of_six() -> None:
    # 6 units: place 4 is also n-2, which pays 100. C and D (places 3, 4) receive 100 and pay
    # 100 between them: 50 - 50 = 0 each. E (5) pays 300, F (6) pays 500.
    s = settle({"A": 1, "B": 2, "C": 3, "D": 3, "E": 5, "F": 6}, REWARDS, 6)
    assert s.net == {"A": 500, "B": 300, "C": 0, "D": 0, "E": -300, "F": -500}
    assert [(t.payer, t.payee, t.amount) for t in s.ledger] == [("F", "A", 500), ("E", "B", 300)]


def test_tie_at_the_bottom() -> None:
    # 8 units; G and H share rank 7 = places 7 and 8: they pay 300 + 500 = 800, 400 each.
    s = settle({"A": 1, "B": 2, "C": 3, "D": 4, "E": 5, "F": 6, "G": 7, "H": 7}, REWARDS, 6)
    assert s.net["G"] == -400 and s.net["H"] == -400 and s.net["F"] == -100
    assert [(t.payer, t.payee, t.amount) for t in s.ledger] == [
        ("G", "A", 400), ("H", "A", 100), ("H", "B", 300), ("F", "C", 100),
    ]
    assert sum(t.amount for t in s.ledger) == 900


def test_three_way_tie_splits_to_the_yuan() -> None:
    # C, D, E share rank 3 = places 3, 4, 5: 100万 = 1,000,000 元 / 3 = 333,333 元 rest 1;
    # the leftover 元 goes to C (first by code): 33.3334, 33.3333, 33.3333 万元.
    s = settle({"A": 1, "B": 2, "C": 3, "D": 3, "E": 3, "F": 6, "G": 7, "H": 8}, REWARDS, 6)
    assert (s.net["C"], s.net["D"], s.net["E"]) == (33.3334, 33.3333, 33.3333)
    assert round(sum(s.net.values()) * 10000) == 0


def test_everybody_tied_nobody_pays() -> None:
    s = settle({u: 1 for u in "ABCDEF"}, REWARDS, 6)
    assert s.applies and s.ledger == [] and set(s.net.values()) == {0}


def test_fewer_than_min_units() -> None:
    s = settle({u: i for i, u in enumerate("ABCDE", start=1)}, REWARDS, 6)
    assert not s.applies and s.ledger == [] and s.net == {}
    assert s.reason == "参加排名的单位仅5个，少于规则要求的6个，本期不进行奖惩资金结算。"


def test_reward_tally() -> None:
    # 3 新建入统 * 2万 + 4 小升规 * 1万 = 10万; a county without data counts 0.
    tally = reward_tally({"A": ("甲县", 3, 4), "B": ("乙县", None, None)})
    assert [(t.county_code, t.amount) for t in tally] == [("A", 10), ("B", 0)]
    assert tally[1].note
