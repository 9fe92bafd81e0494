"""Settlement (pure): the 入园进区 reward ledger and the 新建入统 / 小升规 tally.

Ranks 1, 2, 3 receive `rewards`; ranks n, n−1, n−2 pay them (the last place funds the first
place's reward). Places are 1..n; a group of m units sharing rank r occupies places r..r+m−1.
When a tie cannot be broken, the group shares equally the amounts of the places it occupies, both
received and paid (a tie across places 3 and 4 shares place 3's reward: 50 each of 100).

Amounts are settled in whole 元 (万元 with 4 decimals) so the ledger balances exactly. A share
that does not divide evenly gives the leftover 元 one each to the group's units in county-code
order. The ledger is built from each unit's net: payers from the last place upwards are matched
against payees from the first place downwards, so without ties last → first, n−1 → 2, n−2 → 3.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from .model import RewardTally, Settlement, Transfer

YUAN_PER_WAN = 10_000

# The 新建入统 / 小升规 tally: the indicators it counts and the default rates (万元 per
# enterprise; a rulebook's [settlement] reward_new / reward_upgraded override them).
TALLY_NEW = "ent_above_new_ytd"
TALLY_UPGRADED = "ent_above_upgraded_ytd"
REWARD_NEW = 2.0
REWARD_UPGRADED = 1.0


def settle(
    ranks: Mapping[str, int], rewards: Sequence[float], min_units: int
) -> Settlement:
    """The transfer ledger and each unit's net (万元) from the final ranks of every ranked unit."""
    n = len(ranks)
    rewards = [float(r) for r in rewards]
    k = len(rewards)
    if n < max(min_units, k):
        return Settlement(
            applies=False,
            reason=(
                f"参加排名的单位仅{n}个，少于规则要求的{max(min_units, k)}个，"
                "本期不进行奖惩资金结算。"
            ),
            rewards=rewards,
        )
    amounts = [round(r * YUAN_PER_WAN) for r in rewards]
    receive = {p: amounts[p - 1] for p in range(1, k + 1)}
    pay = {p: amounts[n - p] for p in range(n - k + 1, n + 1)}

    groups: dict[int, list[str]] = {}
    for unit, rank in ranks.items():
        groups.setdefault(rank, []).append(unit)
    net: dict[str, int] = {u: 0 for u in ranks}
    for rank, members in groups.items():
        members.sort()
        places = range(rank, rank + len(members))
        got = _split(sum(receive.get(p, 0) for p in places), members)
        paid = _split(sum(pay.get(p, 0) for p in places), members)
        for u in members:
            net[u] = got[u] - paid[u]

    payees = sorted((u for u in net if net[u] > 0), key=lambda u: (ranks[u], u))
    payers = sorted((u for u in net if net[u] < 0), key=lambda u: (-ranks[u], u))
    ledger = [Transfer(a, b, amount / YUAN_PER_WAN) for a, b, amount in _match(payers, payees, net)]
    order = sorted(ranks, key=lambda u: (ranks[u], u))
    return Settlement(
        applies=True,
        reason="",
        rewards=rewards,
        ledger=ledger,
        net={u: net[u] / YUAN_PER_WAN + 0.0 for u in order},
    )


def _split(total: int, members: Sequence[str]) -> dict[str, int]:
    """Equal shares in whole 元; the leftover 元 go one each in the members' (sorted) order."""
    base, rest = divmod(total, len(members))
    return {u: base + (1 if i < rest else 0) for i, u in enumerate(members)}


def _match(payers: Sequence[str], payees: Sequence[str], net: Mapping[str, int]) -> Iterable[tuple[str, str, int]]:
    owe = {u: -net[u] for u in payers}
    due = {u: net[u] for u in payees}
    i = j = 0
    while i < len(payers) and j < len(payees):
        a, b = payers[i], payees[j]
        amount = min(owe[a], due[b])
        if amount:
            yield a, b, amount
        owe[a] -= amount
        due[b] -= amount
        if owe[a] == 0:
            i += 1
        if due[b] == 0:
            j += 1


def reward_tally(
    counts: Mapping[str, tuple[str, float | None, float | None]],
    reward_new: float = REWARD_NEW,
    reward_upgraded: float = REWARD_UPGRADED,
) -> list[RewardTally]:
    """Per county, in the given order: (name, 新建入统, 小升规) → the reward in 万元; missing counts 0."""
    out = []
    for code, (name, new, upgraded) in counts.items():
        new_ = float(new or 0)
        up_ = float(upgraded or 0)
        note = "" if new is not None and upgraded is not None else "未报送或数据缺失，按0计"
        out.append(
            RewardTally(
                county_code=code, county_name=name, new_entered=new_, upgraded=up_,
                amount=round(new_ * reward_new + up_ * reward_upgraded, 4), note=note,
            )
        )
    return out
