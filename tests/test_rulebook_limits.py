"""Rulebooks that would pass `supervise rules` but break `supervise run` are refused on load, and
weights that do not add up to the rulebook's total are a warning. Through the real CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from supervise.cli import cli
from supervise.workspace import Workspace

from .conftest import store_submission

# Worked out by hand: 40 + 30 + 30 = 100, so the rulebook loads without a warning.
BASE = """
[rulebook]
id = "limits"
title = "边界测试考核"
version = "L1"
period = "month"

[[indicators]]
code = "park_new"
expr = "ent_in_park_new_ytd"
weight = 40
method = "completion"
target = "targets.park_new * year_elapsed"

[[indicators]]
code = "park_rate"
label = "入园进区率"
expr = "ent_in_park / ent_total * 100"
weight = 30
method = "bands"
bands = [[50, 0.6], [70, 0.8], [90, 1.0]]

[[indicators]]
code = "tax"
expr = "tax_ytd"
weight = 30
method = "rank"

[[deductions]]
on = "warning"
points = 0.5

[settlement]
rewards = [500, 300, 100]
reward_tally = true
reward_new = 2
reward_upgraded = 1
"""

DIGITS_309 = "9" * 309   # 10^309 − 1: more than the largest float (about 1.8 × 10^308)


def rules(ws: Workspace, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--home", str(ws.home), "rules", *args])


def write(ws: Workspace, text: str, name: str = "limits.toml") -> Path:
    path = ws.rules_dir / name
    path.write_text(text, encoding="utf-8")
    return path


def edited(old: str, new: str) -> str:
    assert BASE.count(old) == 1, old
    return BASE.replace(old, new)


def test_the_base_rulebook_loads_without_a_warning(ws: Workspace) -> None:
    write(ws, BASE)
    res = rules(ws, "--json")
    assert res.exit_code == 0, res.output
    (book,) = [b for b in json.loads(res.stdout)["rulebooks"] if b["id"] == "limits"]
    assert book["weight"] == 100 and book["weights_total"] == 100 and book["warnings"] == []


# (old text, new text, where the message points, the fix it gives)
REFUSED = [
    pytest.param('expr = "tax_ytd"', f'expr = "tax_ytd * {DIGITS_309}"',
                 "[[indicators]] #3 (tax) expr", "numbers in an expression must be at most 1e+15", id="expr-309-digits"),
    pytest.param('expr = "tax_ytd"', 'expr = "tax_ytd * 1e400"',
                 "[[indicators]] #3 (tax) expr", "the number 1e400 is too large", id="expr-1e400"),
    pytest.param('target = "targets.park_new * year_elapsed"', f"target = {DIGITS_309}",
                 "[[indicators]] #1 (park_new) target", "is too large", id="target-309-digits"),
    pytest.param('target = "targets.park_new * year_elapsed"', "target = inf",
                 "[[indicators]] #1 (park_new) target", "a finite number, not inf", id="target-inf"),
    pytest.param("weight = 40", "weight = 1.7e308",
                 "[[indicators]] #1 (park_new) weight", "weight must be ≤ 10000, not 1.7e+308", id="weight-1.7e308"),
    pytest.param("weight = 40", f"weight = {DIGITS_309}",
                 "[[indicators]] #1 (park_new) weight", "weight must be ≤ 10000, not 9999", id="weight-309-digits"),
    pytest.param("weight = 40", "weight = inf",
                 "[[indicators]] #1 (park_new) weight", "weight must be a finite number", id="weight-inf"),
    pytest.param('method = "completion"', 'method = "completion"\ncap = 1e308',
                 "[[indicators]] #1 (park_new) cap", "cap must be ≤ 100", id="cap-1e308"),
    pytest.param('method = "rank"', 'method = "rank"\nstep = 1e308',
                 "[[indicators]] #3 (tax) step", "step must be ≤ 10000", id="step-1e308"),
    pytest.param("[90, 1.0]", "[inf, 1.0]",
                 "[[indicators]] #2 (park_rate) bands", "band 3: threshold inf is not a number from", id="band-inf"),
    pytest.param("[50, 0.6]", "[-inf, 0.6]",
                 "[[indicators]] #2 (park_rate) bands", "band 1: threshold -inf is not a number from", id="band-minus-inf"),
    pytest.param("[70, 0.8]", "[nan, 0.8]",
                 "[[indicators]] #2 (park_rate) bands", "band 2: threshold nan is not a number from", id="band-nan"),
    pytest.param("[70, 0.8]", "[70, nan]",
                 "[[indicators]] #2 (park_rate) bands", "band 2: share nan is outside 0..1", id="band-share-nan"),
    pytest.param("[90, 1.0]", "[1e300, 1.0]",
                 "[[indicators]] #2 (park_rate) bands", "band 3: threshold 1e+300 is not a number from", id="band-1e300"),
    pytest.param("points = 0.5", "points = 1e308",
                 "[[deductions]] #1 (warning) points", "points must be ≤ 10000", id="deduction-1e308"),
    pytest.param("rewards = [500, 300, 100]", "rewards = [inf, 300, 100]",
                 "[settlement] rewards", "inf is not an amount in 万元 from 0 to 1000000", id="rewards-inf"),
    pytest.param("rewards = [500, 300, 100]", "rewards = [500, nan, 100]",
                 "[settlement] rewards", "nan is not an amount in 万元 from 0 to 1000000", id="rewards-nan"),
    pytest.param("rewards = [500, 300, 100]", "rewards = [1e305, 300, 100]",
                 "[settlement] rewards", "1e+305 is not an amount in 万元", id="rewards-1e305"),
    pytest.param("reward_new = 2", "reward_new = 1e308",
                 "[settlement] reward_new", "reward_new must be ≤ 1000000, not 1e+308", id="tally-new-1e308"),
    pytest.param("reward_new = 2", "reward_new = inf",
                 "[settlement] reward_new", "reward_new must be a finite number", id="tally-new-inf"),
    pytest.param("reward_upgraded = 1", "reward_upgraded = nan",
                 "[settlement] reward_upgraded", "reward_upgraded must be a finite number", id="tally-upgraded-nan"),
    pytest.param('version = "L1"', "version = inf",
                 "[rulebook] version", 'version must be text such as "2025.1", not inf', id="version-inf"),
]


@pytest.mark.parametrize("old, new, where, fix", REFUSED)
def test_rules_refuses_numbers_a_run_cannot_compute_with(
    ws: Workspace, old: str, new: str, where: str, fix: str
) -> None:
    path = write(ws, edited(old, new))
    res = rules(ws)
    assert res.exit_code == 1, res.output
    assert f"错误 / error: {path}: {where}: " in res.output
    assert fix in res.output
    assert "internal error" not in res.output and "Traceback" not in res.output


def march_row(in_park: float, tax: float) -> dict[str, float]:
    return {
        "ent_total": 100, "ent_above": 10, "ent_above_new_ytd": 2, "ent_above_upgraded_ytd": 2,
        "ent_in_park": in_park, "ent_in_park_new_ytd": 3, "revenue_ytd": 1000, "revenue_ytd_ly": 900,
        "profit_ytd": 50, "tax_ytd": tax, "export_ytd": 0, "employees": 500, "tech_invest_ytd": 100,
        "rd_ytd": 20, "land_disposed_ytd": 10,
    }


@pytest.fixture
def march_ws(ws: Workspace) -> Workspace:
    """Every assessed county has reported March 2025, on time."""
    conn = ws.connect()
    try:
        for n, county in enumerate(c.code for c in ws.registry.assessed_counties()):
            store_submission(conn, county, "2025-03", {f"X{county}": march_row(40 + 4 * n, 100 + n)},
                             "2025-04-03T10:00:00+08:00")
    finally:
        conn.close()
    return ws


def run_march(ws: Workspace) -> Result:
    return CliRunner().invoke(cli, ["--home", str(ws.home), "run", "--month", "2025-03", "--no-deliver"])


@pytest.mark.parametrize(
    "old, new, where",
    [
        ("weight = 40", "weight = 1.7e308", "[[indicators]] #1 (park_new) weight"),
        ('expr = "tax_ytd"', f'expr = "tax_ytd * {DIGITS_309}"', "[[indicators]] #3 (tax) expr"),
        ("[90, 1.0]", "[inf, 1.0]", "[[indicators]] #2 (park_rate) bands"),
        ("rewards = [500, 300, 100]", "rewards = [inf, 300, 100]", "[settlement] rewards"),
        ("reward_new = 2", "reward_new = 1e308", "[settlement] reward_new"),
    ],
    ids=["weight", "expr", "bands", "rewards", "tally"],
)
def test_run_stops_at_the_rulebook_not_in_the_middle_of_the_sums(
    march_ws: Workspace, old: str, new: str, where: str
) -> None:
    path = write(march_ws, edited(old, new))
    res = run_march(march_ws)
    assert res.exit_code == 1, res.output
    assert f"{path}: {where}: " in res.output
    for symptom in ("InvalidOperation", "OverflowError", "not JSON compliant", "internal error"):
        assert symptom not in res.output


def test_run_with_the_base_rulebook_succeeds(march_ws: Workspace) -> None:
    write(march_ws, BASE)
    res = run_march(march_ws)
    assert res.exit_code == 0, res.output
    assert "  limits L1：14 个单位参加排名\n" in res.output


# ------------------------------------------------------------------ nesting and size


def deep_brackets(depth: int) -> str:
    return "a = " + "[" * depth + "]" * depth + "\n"


@pytest.mark.parametrize(
    "text, fix",
    [
        pytest.param(deep_brackets(100_000), "line 1 (a): [ ] or { } nested more than 8 deep", id="arrays"),
        pytest.param("a = " + "{b=" * 50_000 + "1" + "}" * 50_000 + "\n",   # 200 KB
                     "line 1 (a): [ ] or { } nested more than 8 deep", id="inline-tables"),
        pytest.param(BASE.replace("bands = [[50, 0.6]", "bands = [[[[[[[[[[50]]]]]]]]], [[50, 0.6]"),
                     "line 21 (bands): [ ] or { } nested more than 8 deep", id="in-bands"),
    ],
)
def test_deep_nesting_is_a_rulebook_error_not_a_recursion_error(ws: Workspace, text: str, fix: str) -> None:
    path = write(ws, text, "deep.toml")
    res = rules(ws, str(path))
    assert res.exit_code == 1, res.output
    assert f"错误 / error: {path}: {fix}; a rulebook needs two at most" in res.output
    assert "RecursionError" not in res.output and "internal error" not in res.output


# Eleven brackets in each kind of string and in a comment: none of them is nesting.
BRACKETS_IN_STRINGS = (
    'title = "边界测试考核 \\" [[[[[[[[[[["  # [[[[[[[[[[[ in a comment\n'
    'description = """\n{{{{{{{{{{{ "[[[[[[[[[[["""\n'
    "version = '[[[[[[[[[[['\n"
)


def test_brackets_in_strings_and_comments_are_not_nesting(ws: Workspace) -> None:
    text = edited('title = "边界测试考核"\nversion = "L1"\n', BRACKETS_IN_STRINGS)
    path = write(ws, text)
    res = rules(ws, str(path), "--json")
    assert res.exit_code == 0, res.output
    (book,) = json.loads(res.stdout)["rulebooks"]
    assert book["title"] == '边界测试考核 " [[[[[[[[[[[' and book["version"] == "[[[[[[[[[[["


def supervise(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The installed command in its own process (stderr as a person sees it; a hang is a failure)."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [sys.executable, "-m", "supervise", "--home", str(home), *args],
        capture_output=True, text=True, timeout=timeout, env=env, check=False,
    )


def test_deep_nesting_prints_no_traceback(ws: Workspace) -> None:
    path = write(ws, deep_brackets(100_000), "deep.toml")
    proc = supervise(ws.home, "rules", str(path))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "RecursionError" not in proc.stderr
    assert proc.stderr.startswith(f"错误 / error: {path}: line 1 (a): [ ] or {{ }} nested more than 8 deep")


def test_a_dotted_key_of_100000_parts_is_refused_at_once(ws: Workspace) -> None:
    # tomllib's work grows with the square of the parts: this key alone would take minutes.
    path = write(ws, "a" + ".a" * 100_000 + " = 1\n", "dotted.toml")
    proc = supervise(ws.home, "rules", str(path), timeout=30)
    assert proc.returncode == 1
    assert proc.stderr.startswith(
        f"错误 / error: {path}: line 1 (a.a.a.a.a.a.a.a.a): a dotted key of more than 8 parts"
    )


def test_a_rulebook_larger_than_256_kb_is_refused(ws: Workspace) -> None:
    text = BASE + "# " + "x" * (256 * 1024) + "\n"   # valid TOML: a very long comment
    path = write(ws, text, "big.toml")
    res = rules(ws)
    assert res.exit_code == 1, res.output
    assert f"错误 / error: {path}: larger than 256 KB (a rulebook is a few KB)" in res.output


def test_a_rulebook_of_256_kb_exactly_loads(ws: Workspace) -> None:
    head = BASE + "# "
    text = head + "x" * (256 * 1024 - len(head.encode("utf-8")) - 1) + "\n"
    assert len(text.encode("utf-8")) == 256 * 1024
    write(ws, text)
    assert rules(ws).exit_code == 0


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_pipe_in_rules_is_refused_before_it_is_read(ws: Workspace) -> None:
    # Opening a pipe nobody writes to would wait forever: it must be refused on its stat alone.
    pipe = ws.rules_dir / "pipe.toml"
    os.mkfifo(pipe)
    proc = supervise(ws.home, "rules", timeout=30)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"错误 / error: {pipe}: not a regular file")


# ------------------------------------------------------------------ weights total


def warning_for(path: Path, got: str, want: str) -> str:
    return (
        f"{path}: [[indicators]] weight: the weights add up to {got}, not {want}（指标权重合计{got}分，"
        f"不是{want}分）; correct the weights, or write weights_total = {got} in [rulebook] if this total is meant"
    )


def test_weights_that_do_not_add_up_to_100_are_a_warning(ws: Workspace) -> None:
    path = write(ws, edited("weight = 40", "weight = 30"))   # 30 + 30 + 30 = 90
    res = rules(ws)
    assert res.exit_code == 0, res.output   # a warning, not a refusal
    assert "考核规则（均已通过校验，1条警告）" in res.output
    assert f"警告：{warning_for(path, '90', '100')}" in res.output
    res = rules(ws, str(path), "--json")
    assert res.exit_code == 0, res.output
    (book,) = json.loads(res.stdout)["rulebooks"]
    assert book["weight"] == 90 and book["weights_total"] == 100
    assert book["warnings"] == [warning_for(path, "90", "100")]


def test_the_default_rulebooks_have_no_warning(ws: Workspace) -> None:
    res = rules(ws)
    assert res.exit_code == 0, res.output
    assert "考核规则（均已通过校验）" in res.output and "警告" not in res.output


def with_weights(text: str, *weights: str) -> str:
    """The rulebook with its three weights replaced, in order."""
    given = iter(weights)
    return re.sub(r"^weight = .*$", lambda _m: f"weight = {next(given)}", text, flags=re.MULTILINE)


@pytest.mark.parametrize(
    "weights, total_line, total",
    [
        (("30", "30", "30"), "weights_total = 90", 90),        # 90, and the bureau says 90 is meant
        (("400", "300", "300"), "weights_total = 1000", 1000),  # a 1000-point scale
        (("33.3", "33.3", "33.4"), "", 100),                    # 100 on paper, and to 9 decimals
    ],
    ids=["90-meant", "1000-scale", "decimals"],
)
def test_weights_total_accepts_another_total(ws: Workspace, weights: tuple[str, ...], total_line: str,
                                             total: float) -> None:
    text = with_weights(edited('period = "month"', f'period = "month"\n{total_line}'), *weights)
    path = write(ws, text)
    res = rules(ws, str(path), "--json")
    assert res.exit_code == 0, res.output
    (book,) = json.loads(res.stdout)["rulebooks"]
    assert book["weights_total"] == total and book["warnings"] == []
    assert "警告" not in rules(ws, str(path)).output


def test_weights_total_other_than_the_weights_warns(ws: Workspace) -> None:
    path = write(ws, edited('period = "month"', 'period = "month"\nweights_total = 1000'))
    res = rules(ws, str(path))
    assert res.exit_code == 0, res.output
    assert f"警告：{warning_for(path, '100', '1000')}" in res.output


@pytest.mark.parametrize(
    "value, fix",
    [
        ("0", "weights_total must be > 0, not 0"),
        ("-100", "weights_total must be > 0, not -100"),
        ('"100"', "weights_total must be a number"),
        ("inf", "weights_total must be a finite number"),
        ("1e308", "weights_total must be ≤ 10000, not 1e+308"),
    ],
)
def test_weights_total_must_be_a_sensible_number(ws: Workspace, value: str, fix: str) -> None:
    path = write(ws, edited('period = "month"', f'period = "month"\nweights_total = {value}'))
    res = rules(ws, str(path))
    assert res.exit_code == 1, res.output
    assert f"错误 / error: {path}: [rulebook] weights_total: {fix}" in res.output
