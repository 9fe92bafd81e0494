"""Rulebook loading: every mistake names the file, the key and the fix; docs list every key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from supervise.assess.loading import load_rulebook, load_rulebooks, parse_rulebook
from supervise.assess.rulebook import KEYS, RulebookError
from supervise.registry import default_data_dir, load_registry

DICT = load_registry().indicators
DOCS = Path(__file__).resolve().parents[1] / "docs" / "rulebooks.md"

GOOD = """
[rulebook]
id = "t"
title = "测试"
version = "1"
period = "month"
data = "monthly"

[[indicators]]
code = "growth"
label = "营业收入同比增速"
expr = "(revenue_ytd - revenue_ytd_ly) / revenue_ytd_ly * 100"
weight = 30
method = "minmax"

[[indicators]]
code = "park"
expr = "ent_in_park_new_ytd"
weight = 20
method = "completion"
target = "targets.park_new"

[[deductions]]
on = "late"
per_day = 1
max = 5

[ranking]
precision = 2
tie_break = ["growth"]

[settlement]
rewards = [500, 300, 100]
min_units = 6
"""


def load(text: str, name: str = "t.toml") -> object:
    return parse_rulebook(text, DICT, source=name)


def test_good_rulebook() -> None:
    book = parse_rulebook(GOOD, DICT, source="t.toml")
    assert book.id == "t" and book.period == "month" and book.data == "monthly"
    assert [i.code for i in book.indicators] == ["growth", "park"]
    park = book.indicator("park")
    assert park.cap == 1.0 and park.target is not None and park.target.text == "targets.park_new"
    assert park.label == "本年新增入园企业数"  # from the data dictionary
    assert book.indicator("growth").floor == 60.0
    assert book.deductions[0].per_day == 1 and book.deductions[0].max == 5
    assert book.settlement is not None and book.settlement.rewards == (500, 300, 100)


@pytest.mark.parametrize(
    "old, new, key, fix",
    [
        ('weight = 30', 'wieght = 30', "wieght", "did you mean 'weight'"),
        ('[ranking]', '[ranking]\nsort = "desc"', "sort", "the keys allowed here are"),
        ('[settlement]', '[settlement]\nrewardz = 1', "rewardz", "the keys allowed here are"),
        ('on = "late"', 'on = "late"\ncolor = 1', "color", "unknown key"),
        ('id = "t"', 'id = "t"\nowner = "x"', "owner", "unknown key"),
        ('[ranking]', '[rankings]', "rankings", "did you mean 'ranking'"),
        ('revenue_ytd_ly * 100', 'revenue_ytd_lastyear * 100', "expr", "unknown indicator code 'revenue_ytd_lastyear'"),
        ('"targets.park_new"', '"targets.park"', "target", "unknown target targets.park"),
        ('expr = "ent_in_park_new_ytd"', 'expr = "hitech_ent"', "expr", "quarterly data"),
        ('expr = "ent_in_park_new_ytd"', 'expr = "progress"', "expr", "text indicator"),
        ('expr = "ent_in_park_new_ytd"', 'expr = "__import__(\'os\')"', "expr", "only the functions"),
        ('method = "minmax"', 'method = "topsis"', "method", "must be one of rank, minmax"),
        ('weight = 30', 'weight = "30"', "weight", "must be a number"),
        ('weight = 30', 'weight = true', "weight", "must be a number"),
        ('weight = 30', 'weight = -1', "weight", "must be ≥ 0"),
        ('weight = 30', '', "weight", "weight is missing"),
        ('tie_break = ["growth"]', 'tie_break = ["revenue_ytd"]', "tie_break", "not an indicator of this rulebook"),
        ('period = "month"', 'period = "week"', "period", "must be one of month, quarter, year"),
        ('data = "monthly"', 'data = "daily"', "data", "must be one of monthly, quarterly"),
        ('data = "monthly"', 'data = "quarterly"', "data", "a monthly rulebook cannot read quarterly data"),
        ('method = "minmax"', 'method = "minmax"\nstep = 2', "step", 'belongs to method = "rank"'),
        ('target = "targets.park_new"', '', "target", "needs a target"),
        ('on = "late"\nper_day = 1', 'on = "missing"\nper_day = 1', "per_day", "only applies"),
        ('on = "late"', 'on = "early"', "on", "must be one of late, missing, rejected, warning"),
        ('precision = 2', 'precision = 2.5', "precision", "whole number from 0 to 6"),
        ('min_units = 6', 'min_units = 2', "min_units", "at least 3"),
        ('rewards = [500, 300, 100]', 'rewards = [500, "300"]', "rewards", "list of amounts"),
        ('version = "1"', '', "version", "version is missing"),
        ('code = "park"', 'code = "growth"', "code", "used twice"),
        ('code = "park"', 'code = "Park Rate"', "code", "lower-case"),
    ],
)
def test_loader_errors_name_file_key_and_fix(old: str, new: str, key: str, fix: str) -> None:
    assert old in GOOD
    with pytest.raises(RulebookError) as info:
        load(GOOD.replace(old, new, 1), "rules/bad.toml")
    msg = str(info.value)
    assert msg.startswith("rules/bad.toml: ")
    assert key in msg
    assert fix in msg


BANDS = GOOD.replace(
    'method = "minmax"', 'method = "bands"\nbands = BANDS'
)


@pytest.mark.parametrize(
    "bands, fix",
    [
        ("[]", "non-empty list"),
        ("[[0, 0.5, 1]]", "not a pair of numbers"),
        ("[[0, 60]]", "outside 0..1"),
        ("[[0, 0.5], [0, 0.6]]", "appears twice"),
        ('"0:0.5"', "non-empty list"),
    ],
)
def test_bands_malformed(bands: str, fix: str) -> None:
    with pytest.raises(RulebookError) as info:
        load(BANDS.replace("BANDS", bands), "x.toml")
    assert "x.toml: [[indicators]] #1 (growth) bands" in str(info.value)
    assert fix in str(info.value)


def test_bands_sorted_whatever_order_written() -> None:
    book = parse_rulebook(BANDS.replace("BANDS", "[[10, 1.0], [0, 0.6], [5, 0.8]]"), DICT)
    assert book.indicator("growth").bands == ((0, 0.6), (5, 0.8), (10, 1.0))


def test_not_toml(tmp_path: Path) -> None:
    p = tmp_path / "broken.toml"
    p.write_text("[rulebook\nid=", encoding="utf-8")
    with pytest.raises(RulebookError, match=r"broken.toml: not valid TOML"):
        load_rulebook(p, DICT)


def test_year_must_say_which_data() -> None:
    with pytest.raises(RulebookError, match=r"\[rulebook\] data: a yearly rulebook must say"):
        load(GOOD.replace('period = "month"\ndata = "monthly"', 'period = "year"'))


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "b.toml").write_text(GOOD, encoding="utf-8")
    with pytest.raises(RulebookError) as info:
        load_rulebooks(tmp_path, DICT)
    assert "b.toml: [rulebook] id 't' is already used by" in str(info.value)
    assert "a.toml" in str(info.value)


def test_default_rulebooks_load() -> None:
    books = load_rulebooks(default_data_dir() / "rules", DICT)
    assert [b.id for b in books] == ["cz-monthly", "cz-park-annual", "cz-quarterly"]
    for b in books:
        assert sum(i.weight for i in b.indicators) == 100
    annual = books[1]
    assert annual.period == "year" and annual.data == "monthly"
    assert annual.settlement is not None
    assert annual.settlement.rewards == (500, 300, 100) and annual.settlement.min_units == 6


def _documented() -> dict[str, set[str]]:
    """Keys in the tables of docs/rulebooks.md, per `## \\`[table]\\`` section."""
    out: dict[str, set[str]] = {}
    section = None
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^## `\[+(\w+)\]+`", line)
        if m:
            section = m.group(1)
            out[section] = set()
            continue
        if line.startswith("## "):
            section = None
        m = re.match(r"^\| `(\w+)` \|", line)
        if section and m:
            out[section].add(m.group(1))
    return out


def test_docs_and_loader_keys_in_step() -> None:
    assert _documented() == {k: set(v) for k, v in KEYS.items()}


def test_per_day_charges_instead_of_points() -> None:
    from supervise.assess.engine import compute_deductions

    book = parse_rulebook(GOOD.replace("per_day = 1", "per_day = 1\npoints = 4"), DICT)
    # late 2 days: per_day 1 × 2 = 2 (points = 4 is replaced: per_day is charged instead)
    assert [d.points for d in compute_deductions(book.deductions, "late", 2, 0)] == [2]
