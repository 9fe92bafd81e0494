"""Versions of a period's bulletin: what a correction (更正) tells its readers changed.

Pure: a version's summary (each rulebook's scores, ranks and settlement ledger) is plain JSON
data, stored with the version (`store.editions`); `changes` compares two of them and says, in
Chinese, which counties' scores or ranks moved (old → new) and whether the ledger changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, Protocol

from .model import Bulletin


class _Result(Protocol):
    def to_json(self) -> dict[str, Any]: ...


def draft_hash(bulletin: Bulletin, document: dict[str, Any]) -> str:
    """What the bulletin says before its edition marks are printed: the same data, the same hash.

    Everything the writers print comes from the model, so a hash of the model and of the
    results document stands for the files (which then also carry the version). Where the files
    are written (`outputs`) is not what the bulletin says: a workspace moved is no correction."""
    said = {k: v for k, v in document.items() if k != "outputs"}
    text = json.dumps({"bulletin": asdict(bulletin), "document": said}, ensure_ascii=False,
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def summarize(results: Sequence[_Result]) -> dict[str, Any]:
    """Each rulebook's ranking (code, name, score, rank) and ledger, as a correction compares them."""
    sections = []
    for r in results:
        doc = r.to_json()
        names = {u["county_code"]: u["county_name"] for u in doc["ranking"]}
        settlement = doc.get("settlement") or {}
        ledger = doc.get("ledger", []) if settlement.get("applies", True) else []
        sections.append({
            "rulebook": doc["rulebook"],
            "title": doc.get("title") or doc["rulebook"],
            "ranking": [[u["county_code"], u["county_name"], float(u["score"]), int(u["rank"])]
                        for u in doc["ranking"]],
            "ledger": sorted(
                [t["payer"], names.get(t["payer"], t["payer"]), t["payee"], names.get(t["payee"], t["payee"]),
                 float(t["amount"])]
                for t in ledger
            ),
        })
    return {"sections": sections}


def _score(v: float) -> str:
    """75.25; more digits only where a rulebook keeps them (75.255)."""
    text = f"{v:.2f}"
    return text if float(text) == v else f"{v:.6f}".rstrip("0")


def _moves(before: list[list[Any]], after: list[list[Any]]) -> list[str]:
    """Counties whose score or rank changed, in the new order; then those no longer ranked."""
    old = {row[0]: row for row in before}
    new_codes = {row[0] for row in after}
    parts = []
    for code, name, score, rank in after:
        was = old.get(code)
        if was is None:
            parts.append(f"{name}新列入排名（{_score(score)}分，第{rank}名）")
            continue
        bits = []
        if was[2] != score:
            bits.append(f"得分{_score(was[2])}→{_score(score)}")
        if was[3] != rank:
            bits.append(f"名次第{was[3]}名→第{rank}名")
        if bits:
            parts.append(f"{name}{'、'.join(bits)}")
    for code, name, _score_was, rank in before:
        if code not in new_codes:
            parts.append(f"{name}不再列入排名（原第{rank}名）")
    return parts


def _transfers(rows: list[list[Any]]) -> str:
    return "、".join(f"{payer}→{payee}{amount:,.2f}万元" for _p, payer, _q, payee, amount in rows)


def _key(row: list[Any]) -> tuple[Any, ...]:
    """A transfer is its payer, payee and amount (a county renamed is not a change of the ledger)."""
    return row[0], row[2], row[4]


def _ledger(title: str, before: list[list[Any]], after: list[list[Any]]) -> str:
    key = _key
    old, new = {key(r) for r in before}, {key(r) for r in after}
    if old == new:
        return f"{title}奖惩结算台账未变化{'' if new else '（本期无结算）'}。"
    parts = []
    removed = [r for r in before if key(r) not in new]
    added = [r for r in after if key(r) not in old]
    if removed:
        parts.append(f"撤销{_transfers(removed)}")
    if added:
        parts.append(f"新增{_transfers(added)}")
    return f"{title}奖惩结算台账有变化：{'；'.join(parts)}。"


def changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[str, ...]:
    """What a version says differently from the one before it, one line per point."""
    lines = []
    old = {s["rulebook"]: s for s in before.get("sections", [])}
    new = {s["rulebook"] for s in after.get("sections", [])}
    for s in after.get("sections", []):
        title = f"《{s['title']}》"
        was = old.get(s["rulebook"])
        if was is None:
            lines.append(f"{title}为本版新增的考核结果。")
            continue
        moves = _moves(was["ranking"], s["ranking"])
        lines.append(f"{title}得分、名次有变化的县（市）：{'；'.join(moves)}。" if moves
                     else f"{title}各县（市）得分、名次未变化。")
        lines.append(_ledger(title, was["ledger"], s["ledger"]))
    for code, s in old.items():
        if code not in new:
            lines.append(f"《{s['title']}》的考核结果本版不再列出。")
    if before == after:
        lines.append("各县（市）得分、名次和奖惩结算台账均未变化，更新的是集群情况、报送情况等其他内容。")
    return tuple(lines)
