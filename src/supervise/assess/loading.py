"""Loading a rulebook: the file read under its size limit, the TOML parsed within bounds of
nesting, every key and value checked (`tomlcheck.TomlChecker`) against the vocabulary of
`rulebook` and the data dictionary, expressions parsed by the safe evaluator (never `eval`).

Every problem is refused with a message that names the file, the key and the fix.
"""

from __future__ import annotations

import math
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..registry import TARGET_NAMES, Indicator
from ..tomlcheck import TomlChecker, as_float, close_match, cut_short, plain_number, quoted
from . import expr as expr_mod
from .expr import Expr, ExprError
from .rulebook import (
    CODE_PATTERN,
    DATASETS,
    DEDUCTIONS,
    DEFAULT_WEIGHTS_TOTAL,
    ID_PATTERN,
    KEYS,
    MAX_AMOUNT,
    MAX_CAP,
    MAX_KEY_PARTS,
    MAX_NESTING,
    MAX_POINTS,
    MAX_RULEBOOK_BYTES,
    MAX_THRESHOLD,
    METHOD_KEYS,
    METHODS,
    MISSING,
    PERIODS,
    DeductionRule,
    IndicatorRule,
    RankingRule,
    Rulebook,
    RulebookError,
    SettlementRule,
)
from .settlement import REWARD_NEW, REWARD_UPGRADED, TALLY_NEW, TALLY_UPGRADED


def load_rulebooks(rules_dir: Path, dictionary: Mapping[str, Indicator]) -> list[Rulebook]:
    """Every `*.toml` rulebook in `rules_dir`, validated, sorted by id; duplicate ids refused."""
    if not rules_dir.is_dir():
        raise RulebookError(f"{rules_dir}: rules folder not found; run `supervise init` to copy the defaults")
    books: dict[str, Rulebook] = {}
    for path in sorted(rules_dir.glob("*.toml")):
        book = load_rulebook(path, dictionary)
        if book.id in books:
            raise RulebookError(
                f"{path}: [rulebook] id {book.id!r} is already used by {books[book.id].path}; "
                "give each rulebook its own id"
            )
        books[book.id] = book
    return [books[k] for k in sorted(books)]


def load_rulebook(path: Path, dictionary: Mapping[str, Indicator]) -> Rulebook:
    """Read and validate one rulebook file; its size is checked before anything is read."""
    too_large = (
        f"{path}: larger than {MAX_RULEBOOK_BYTES // 1024} KB (a rulebook is a few KB); "
        "check that this is the rulebook you meant"
    )
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):   # a pipe or a device would never end
            raise RulebookError(f"{path}: not a regular file; a rulebook is a .toml text file")
        if info.st_size > MAX_RULEBOOK_BYTES:
            raise RulebookError(too_large)
        with path.open("rb") as f:
            data = f.read(MAX_RULEBOOK_BYTES + 1)   # the file may have grown since stat
    except OSError as exc:
        raise RulebookError(f"{path}: cannot be read ({exc.strerror or exc}); check the file and its permissions") from None
    if len(data) > MAX_RULEBOOK_BYTES:
        raise RulebookError(too_large)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RulebookError(f"{path}: not UTF-8 text ({exc}); save the file as UTF-8") from None
    return parse_rulebook(text, dictionary, source=str(path))


def parse_rulebook(text: str, dictionary: Mapping[str, Indicator], *, source: str = "<rulebook>") -> Rulebook:
    """Validate a rulebook's TOML text against the keys of docs/rulebooks.md and the data dictionary."""
    shape = _shape_problem(text)
    if shape:
        raise RulebookError(f"{source}: {shape}")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulebookError(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:   # _shape_problem keeps nesting shallow; never a traceback all the same
        raise RulebookError(
            f"{source}: not valid TOML: nested too deeply; a rulebook needs at most {MAX_NESTING} "
            "levels of [ ] and { }"
        ) from None
    except ValueError:   # int() refuses integers of more than 4300 digits
        raise RulebookError(
            f"{source}: not valid TOML: a number is thousands of digits long; write numbers of "
            "ordinary size (e.g. weight = 25)"
        ) from None
    return _Loader(source, dictionary).build(doc, text)


_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def _shape_problem(text: str) -> str | None:
    """What makes the text too deep for tomllib ([ ] and { } nesting, dotted-key parts), else None.

    A scan of TOML's lexical shape only: strings and comments are skipped (a bracket in a
    description counts for nothing); whether the text is valid TOML is left to tomllib.
    """
    depth = parts = run = 0
    after_dot = False
    key = ""                                 # the key of the line being read, for messages
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "\"'" or ch in _BARE:      # a key part (or a value: one part, numbers 0.6 two)
            if not after_dot:
                run = i
            if ch in "\"'":
                i = _string_end(text, i)
            else:
                while i < n and text[i] in _BARE:
                    i += 1
            parts = parts + 1 if after_dot else 1
            after_dot = False
            if parts > MAX_KEY_PARTS:
                return (
                    f"line {_line(text, i)} ({cut_short(text[run:i])}): a dotted key of more than "
                    f"{MAX_KEY_PARTS} parts (a.b.c...); write the keys of docs/rulebooks.md, each on "
                    "its own line under its [table]"
                )
            continue
        i += 1
        if ch in " \t":
            continue
        if ch == ".":
            after_dot = True
            continue
        if depth == 0 and ch in "=\n":
            key = cut_short(text[run:i - 1].strip()) if ch == "=" else ""
        after_dot, parts = False, 0
        if ch == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif ch in "[{":
            depth += 1
            if depth > MAX_NESTING:
                where = f"line {_line(text, i)}" + (f" ({key})" if key else "")
                return (
                    f"{where}: [ ] or {{ }} nested more than {MAX_NESTING} deep; a rulebook needs two "
                    "at most (bands = [[0, 0.6], [10, 1.0]]): remove the extra brackets"
                )
        elif ch in "]}":
            depth = max(0, depth - 1)
    return None


def _string_end(text: str, i: int) -> int:
    """The index after the TOML string that opens at text[i]; an unclosed one ends at its line's
    end (one-line strings) or the text's end (multi-line), and tomllib will say what is wrong."""
    quote = text[i]
    triple = text.startswith(quote * 3, i)
    close = quote * 3 if triple else quote
    stop = len(text)
    if not triple:
        newline = text.find("\n", i)
        stop = stop if newline < 0 else newline
    j = i + len(close)
    while True:
        j = text.find(close, j, stop)
        if j < 0:
            return stop
        if quote == '"' and _escaped(text, j):
            j += 1
            continue
        end = j + len(close)
        if triple:   # up to two quotes of the content may come right before the closing three
            while end < min(len(text), j + 5) and text[end] == quote:
                end += 1
        return end


def _escaped(text: str, j: int) -> bool:
    """Whether text[j] follows an odd run of backslashes (an escaped quote, in a basic string)."""
    k = j
    while k > 0 and text[k - 1] == "\\":
        k -= 1
    return (j - k) % 2 == 1


def _line(text: str, i: int) -> int:
    return text.count("\n", 0, i) + 1


class _Loader(TomlChecker):
    def __init__(self, source: str, dictionary: Mapping[str, Indicator]) -> None:
        super().__init__(source, RulebookError, KEYS)
        self.dictionary = dictionary

    def expression(self, text: str, where: str, key: str, data: str) -> Expr:
        try:
            e = expr_mod.parse(text)
        except ExprError as exc:
            raise self.fail(f"{where} {key}", f"{exc}") from None
        for name in e.names:
            if name in expr_mod.BUILTIN_NAMES:
                continue
            ind = self.dictionary.get(name)
            if ind is None:
                hint = close_match(name, list(self.dictionary))
                raise self.fail(
                    f"{where} {key}",
                    f"unknown indicator code {name!r} in {text!r}; "
                    + (f"did you mean {hint!r}? " if hint else "")
                    + "use codes from the data dictionary (reference/indicators.csv)",
                )
            if not ind.is_number:
                raise self.fail(f"{where} {key}", f"{name!r} is a text indicator and cannot be computed with")
            if ind.dataset != data:
                raise self.fail(
                    f"{where} {key}",
                    f"{name!r} is reported in the {ind.dataset} data but this rulebook reads data = "
                    f"{data!r}; use a {data} indicator or change [rulebook] data",
                )
        for t in e.targets:
            if t not in TARGET_NAMES:
                raise self.fail(
                    f"{where} {key}",
                    f"unknown target targets.{t}; the targets are "
                    + ", ".join(f"targets.{n}" for n in TARGET_NAMES),
                )
        return e

    # ---- the rulebook
    def build(self, doc: dict[str, Any], text: str) -> Rulebook:
        for section in doc:
            if section not in KEYS:
                hint = close_match(section, list(KEYS))
                raise self.fail(
                    f"[{section}]",
                    f"unknown table {section!r}; "
                    + (f"did you mean {hint!r}? " if hint else "")
                    + f"a rulebook has the tables {', '.join(KEYS)}",
                )
        head = self.table(doc, "rulebook", "[rulebook]", required=True)
        w = "[rulebook]"
        book_id = self.string(head, "id", w)
        if not ID_PATTERN.match(book_id):
            raise self.fail(f"{w} id", f"id {book_id!r} must be lower-case ASCII letters, digits, - _ . (e.g. \"cz-monthly\")")
        title = self.string(head, "title", w)
        if not title.strip():
            raise self.fail(f"{w} title", "title is empty; write the assessment's Chinese title")
        if "version" not in head:
            raise self.fail(f"{w} version", "version is missing; add version = \"2025.1\"")
        version = head["version"]
        if (
            isinstance(version, bool) or not isinstance(version, (str, int, float))
            or (isinstance(version, float) and not math.isfinite(version))
        ):
            raise self.fail(f"{w} version", f"version must be text such as \"2025.1\", not {quoted(version)}")
        version = str(version)
        period = self.choice(head, "period", w, PERIODS)
        default_data = {"month": "monthly", "quarter": "quarterly"}.get(period)
        if "data" not in head and default_data is None:
            raise self.fail(f"{w} data", "a yearly rulebook must say data = \"monthly\" (December) or \"quarterly\" (Q4)")
        data = self.choice(head, "data", w, DATASETS, default_data)
        if period == "month" and data == "quarterly":
            raise self.fail(
                f"{w} data",
                "a monthly rulebook cannot read quarterly data; use data = \"monthly\" or period = \"quarter\"",
            )
        description = self.string(head, "description", w, "")
        expected = self.number(head, "weights_total", w, low=0, low_open=True, high=MAX_POINTS)
        weights_total = DEFAULT_WEIGHTS_TOTAL if expected is None else expected

        raw_inds = doc.get("indicators")
        if raw_inds is None:
            raise self.fail("[[indicators]]", "no indicators; add at least one [[indicators]] table")
        if not isinstance(raw_inds, list) or not raw_inds or not all(isinstance(i, dict) for i in raw_inds):
            raise self.fail("[[indicators]]", "indicators must be written as [[indicators]] tables")
        indicators: list[IndicatorRule] = []
        for n, t in enumerate(raw_inds, start=1):
            indicators.append(self.indicator(t, n, data))
            codes = [i.code for i in indicators]
            if codes.count(codes[-1]) > 1:
                raise self.fail(f"[[indicators]] #{n} code", f"code {codes[-1]!r} is used twice; give each indicator its own code")

        raw_deds = doc.get("deductions", [])
        if not isinstance(raw_deds, list) or not all(isinstance(d, dict) for d in raw_deds):
            raise self.fail("[[deductions]]", "deductions must be written as [[deductions]] tables")
        deductions = [self.deduction(t, n) for n, t in enumerate(raw_deds, start=1)]

        rk = self.table(doc, "ranking", "[ranking]", required=False)
        precision = rk.get("precision", 2)
        if isinstance(precision, bool) or not isinstance(precision, int) or not 0 <= precision <= 6:
            raise self.fail("[ranking] precision", f"precision must be a whole number from 0 to 6, not {precision!r}")
        tie_break = rk.get("tie_break", [])
        if not isinstance(tie_break, list) or not all(isinstance(c, str) for c in tie_break):
            raise self.fail("[ranking] tie_break", f"tie_break must be a list of indicator codes, e.g. [\"{indicators[0].code}\"]")
        codes = [i.code for i in indicators]
        for c in tie_break:
            if c not in codes:
                raise self.fail(
                    "[ranking] tie_break",
                    f"{c!r} is not an indicator of this rulebook; use one of {', '.join(codes)}",
                )

        settlement = None
        if "settlement" in doc:
            settlement = self.settlement(self.table(doc, "settlement", "[settlement]", required=False), data)

        warnings = []
        total = math.fsum(i.weight for i in indicators)
        if round(total, 9) != round(weights_total, 9):
            got, want = plain_number(total), plain_number(weights_total)
            warnings.append(
                f"{self.source}: [[indicators]] weight: the weights add up to {got}, not {want}"
                f"（指标权重合计{got}分，不是{want}分）; correct the weights, or write "
                f"weights_total = {got} in [rulebook] if this total is meant"
            )
        return Rulebook(
            id=book_id, title=title, version=version, period=period, data=data,
            indicators=tuple(indicators), deductions=tuple(deductions),
            ranking=RankingRule(precision=precision, tie_break=tuple(tie_break)),
            settlement=settlement, description=description, path=self.source, text=text,
            weights_total=weights_total, warnings=tuple(warnings),
        )

    def indicator(self, t: dict[str, Any], n: int, data: str) -> IndicatorRule:
        code_hint = t.get("code") if isinstance(t.get("code"), str) else ""
        w = f"[[indicators]] #{n}" + (f" ({code_hint})" if code_hint else "")
        self.known(t, "indicators", w)
        code = self.string(t, "code", w)
        if not CODE_PATTERN.match(code):
            raise self.fail(f"{w} code", f"code {code!r} must be lower-case ASCII letters, digits and _ (e.g. revenue_growth)")
        method = self.choice(t, "method", w, METHODS)
        for key, owner in METHOD_KEYS.items():
            if key in t and owner != method:
                raise self.fail(
                    f"{w} {key}",
                    f"{key} belongs to method = \"{owner}\", but this indicator uses method = \"{method}\"; remove {key}",
                )
        expr_text = self.string(t, "expr", w, code)
        expr = self.expression(expr_text, w, "expr", data)
        # Label and unit default to the dictionary's when the value is one dictionary indicator.
        known = self.dictionary.get(code) or self.dictionary.get(expr.text)
        label = self.string(t, "label", w, known.label if known else code)
        unit = self.string(t, "unit", w, known.unit if known else "")
        if "weight" not in t:
            raise self.fail(f"{w} weight", "weight is missing; add weight = 10 (the points this indicator is worth)")
        weight = self.number(t, "weight", w, low=0, high=MAX_POINTS)
        assert weight is not None
        hib = self.boolean(t, "higher_is_better", w, True)
        missing = self.choice(t, "missing", w, MISSING, "zero")
        step = self.number(t, "step", w, low=0, low_open=True, high=MAX_POINTS)
        floor = self.number(t, "floor", w, low=0, high=100)
        cap = self.number(t, "cap", w, low=0, low_open=True, high=MAX_CAP)
        target: Expr | None = None
        if method == "completion":
            if "target" not in t:
                raise self.fail(f"{w} target", "method = \"completion\" needs a target, e.g. target = \"targets.park_new\"")
            raw = t["target"]
            if (
                isinstance(raw, bool) or not isinstance(raw, (str, int, float))
                or (isinstance(raw, float) and not math.isfinite(raw))
            ):
                raise self.fail(
                    f"{w} target",
                    f"target must be an expression in quotes or a finite number, not {quoted(raw)}",
                )
            target = self.expression(str(raw), w, "target", data)
        bands: tuple[tuple[float, float], ...] = ()
        if method == "bands":
            bands = self.bands(t.get("bands"), w)
        return IndicatorRule(
            code=code, label=label, expr=expr, unit=unit, weight=weight, method=method,
            higher_is_better=hib, missing=missing, step=step,
            floor=60.0 if floor is None else floor, target=target,
            cap=1.0 if cap is None else cap, bands=bands,
            description=self.string(t, "description", w, ""),
        )

    def bands(self, raw: Any, w: str) -> tuple[tuple[float, float], ...]:
        fix = "write bands = [[threshold, share], ...] with share from 0 to 1, e.g. [[0, 0.6], [10, 0.8], [20, 1.0]]"
        if raw is None:
            raise self.fail(f"{w} bands", f"method = \"bands\" needs bands; {fix}")
        if not isinstance(raw, list) or not raw:
            raise self.fail(f"{w} bands", f"bands must be a non-empty list; {fix}")
        out = []
        for i, b in enumerate(raw, start=1):
            if (
                not isinstance(b, list) or len(b) != 2
                or any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in b)
            ):
                raise self.fail(f"{w} bands", f"band {i} is {quoted(b)}, not a pair of numbers; {fix}")
            threshold, share = as_float(b[0]), as_float(b[1])
            if not abs(threshold) <= MAX_THRESHOLD:   # also refuses nan
                raise self.fail(
                    f"{w} bands",
                    f"band {i}: threshold {quoted(b[0])} is not a number from {-MAX_THRESHOLD:g} to "
                    f"{MAX_THRESHOLD:g}; {fix}",
                )
            if not 0 <= share <= 1:   # also refuses nan
                raise self.fail(f"{w} bands", f"band {i}: share {share:g} is outside 0..1 (write 0.6 for 60 %); {fix}")
            out.append((threshold, share))
        thresholds = [b[0] for b in out]
        if len(set(thresholds)) != len(thresholds):
            raise self.fail(f"{w} bands", f"a threshold appears twice in {raw!r}; give each band its own threshold")
        return tuple(sorted(out))

    def deduction(self, t: dict[str, Any], n: int) -> DeductionRule:
        w = f"[[deductions]] #{n}"
        self.known(t, "deductions", w)
        on = self.choice(t, "on", w, DEDUCTIONS)
        w = f"{w} ({on})"
        points = self.number(t, "points", w, low=0, high=MAX_POINTS)
        per_day = self.number(t, "per_day", w, low=0, high=MAX_POINTS)
        cap = self.number(t, "max", w, low=0, high=MAX_POINTS)
        if per_day is not None and on != "late":
            raise self.fail(f"{w} per_day", "per_day only applies to on = \"late\"; use points instead")
        if per_day is None and points is None:
            raise self.fail(f"{w} points", "points is missing; add points = 1 (or per_day = 1 for late)")
        return DeductionRule(on=on, points=points, per_day=per_day, max=cap,
                             description=self.string(t, "description", w, ""))

    def settlement(self, t: dict[str, Any], data: str) -> SettlementRule:
        w = "[settlement]"
        rewards = t.get("rewards", [])
        if not isinstance(rewards, list) or any(
            isinstance(r, bool) or not isinstance(r, (int, float)) or r < 0 for r in rewards
        ):
            raise self.fail(
                f"{w} rewards", f"rewards must be a list of amounts in 万元 (e.g. [500, 300, 100]), not {quoted(rewards)}"
            )
        for r in rewards:
            if not as_float(r) <= MAX_AMOUNT:   # also refuses inf and nan
                raise self.fail(
                    f"{w} rewards",
                    f"{quoted(r)} is not an amount in 万元 from 0 to {plain_number(MAX_AMOUNT)}; write e.g. [500, 300, 100]",
                )
            if abs(round(float(r) * 10000) - float(r) * 10000) > 1e-6:
                raise self.fail(f"{w} rewards", f"{r!r}: amounts are in 万元 with at most 4 decimals (1 元)")
        default_min = max(6, 2 * len(rewards))
        min_units = t.get("min_units", default_min)
        if isinstance(min_units, bool) or not isinstance(min_units, int) or min_units < max(1, len(rewards)):
            raise self.fail(
                f"{w} min_units",
                f"min_units must be a whole number of at least {max(1, len(rewards))} "
                f"(the number of rewards), not {min_units!r}",
            )
        tally = self.boolean(t, "reward_tally", w, False)
        if tally and data != "monthly":
            raise self.fail(
                f"{w} reward_tally",
                f"the 新建入统/小升规 tally reads monthly data ({TALLY_NEW}, {TALLY_UPGRADED}); "
                "set data = \"monthly\" or remove reward_tally",
            )
        new = self.number(t, "reward_new", w, low=0, high=MAX_AMOUNT)
        upgraded = self.number(t, "reward_upgraded", w, low=0, high=MAX_AMOUNT)
        return SettlementRule(
            rewards=tuple(float(r) for r in rewards), min_units=min_units, reward_tally=tally,
            reward_new=REWARD_NEW if new is None else new,
            reward_upgraded=REWARD_UPGRADED if upgraded is None else upgraded,
        )
