"""One way to check a TOML document (a rulebook, supervise.toml): tables and keys known, values
of the right kind and size, every refusal naming the file, the place and the fix, with a
suggestion for a mistyped key. `assess.loading` (rulebooks) and `workspace` (settings) use it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def cut_short(text: str, limit: int = 30) -> str:
    """Text quoted in a message, cut short (a key may be thousands of characters long)."""
    return text if len(text) <= limit else text[:limit] + "…"


def as_float(v: int | float) -> float:
    """v as a float; ±inf for an integer too large to be one (a TOML integer has no size limit)."""
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


def plain_number(x: float) -> str:
    """A number as a person writes it, to the 9 decimals compared (99.99, not 99.99000000000001)."""
    return f"{round(x, 9):.15g}"


def quoted(v: Any) -> str:
    """A value quoted in a message, cut short (a number may have hundreds of digits)."""
    return cut_short(repr(v), 40)


def close_match(word: str, options: list[str] | tuple[str, ...]) -> str | None:
    import difflib

    found = difflib.get_close_matches(word, list(options), n=1, cutoff=0.75)
    return found[0] if found else None


WORDS = {"key": "键", "section": "节"}


class TomlChecker:
    """Checks of a TOML document's tables and values, each refusal naming the file, the place and
    the fix. `keys` lists what each table may hold (by table kind); `error` is the exception raised."""

    def __init__(self, source: str, error: type[Exception], keys: Mapping[str, tuple[str, ...]] | None = None) -> None:
        self.source = source
        self.error = error
        self.keys = keys

    def fail(self, where: str, message: str) -> Exception:
        return self.error(f"{self.source}: {where}: {message}")

    # ---- generic checks
    def table(self, doc: Mapping[str, Any], name: str, where: str, required: bool) -> dict[str, Any]:
        value = doc.get(name)
        if value is None:
            if required:
                raise self.fail(f"[{name}]", f"the [{name}] table is missing; add it (see docs/rulebooks.md)（缺少 [{name}]）")
            return {}
        if not isinstance(value, dict):
            raise self.fail(where, f"{name} must be a table [{name}], not {type(value).__name__}（须为表 [{name}]）")
        self.known(value, name, where)
        return value

    def known(self, table: Mapping[str, Any], kind: str, where: str, what: str = "key") -> None:
        """Every key of `table` is one of the keys of `kind` (`what`: key, or section for the top)."""
        for key in table:
            allowed = (self.keys or {})[kind]
            if key not in allowed:
                hint = close_match(key, allowed)
                raise self.fail(
                    f"{where} {key}".strip(),
                    f"unknown {what} {key!r}; "
                    + (f"did you mean {hint!r}? " if hint else "")
                    + f"the keys allowed here are: {', '.join(allowed)}（未知的{WORDS[what]}，请检查拼写）",
                )

    def string(self, t: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
        if key not in t:
            if default is None:
                raise self.fail(f"{where} {key}", f"{key} is missing; add {key} = \"...\"（缺少此项）")
            return default
        v = t[key]
        if not isinstance(v, str):
            raise self.fail(f"{where} {key}", f"{key} must be text in quotes, not {v!r}（须为带引号的文字）")
        return v

    def number(self, t: Mapping[str, Any], key: str, where: str, *, low: float | None = None,
               high: float | None = None, low_open: bool = False) -> float | None:
        if key not in t:
            return None
        raw = t[key]
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise self.fail(f"{where} {key}", f"{key} must be a number (e.g. {key} = 10), not {quoted(raw)}（须为数字）")
        v = as_float(raw)
        if math.isnan(v) or (math.isinf(v) and (isinstance(raw, float) or high is None)):
            raise self.fail(f"{where} {key}", f"{key} must be a finite number (e.g. {key} = 10), not {quoted(raw)}（须为有限的数字）")
        shown = plain_number(v) if math.isfinite(v) else quoted(raw)   # an integer of hundreds of digits
        if low is not None and (v < low or (low_open and v == low)):
            raise self.fail(f"{where} {key}", f"{key} must be {'>' if low_open else '≥'} {plain_number(low)}, not {shown}（超出允许范围）")
        if high is not None and v > high:
            raise self.fail(f"{where} {key}", f"{key} must be ≤ {plain_number(high)}, not {shown}（超出允许范围）")
        return v

    def boolean(self, t: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
        if key not in t:
            return default
        v = t[key]
        if not isinstance(v, bool):
            raise self.fail(f"{where} {key}", f"{key} must be true or false (no quotes), not {v!r}（须为 true 或 false，不加引号）")
        return v

    def choice(self, t: Mapping[str, Any], key: str, where: str, allowed: tuple[str, ...],
               default: str | None = None) -> str:
        v = self.string(t, key, where, default)
        if v not in allowed:
            raise self.fail(f"{where} {key}", f"{key} must be one of {', '.join(allowed)}, not {v!r}（取值无效）")
        return v

    def typed(self, t: Mapping[str, Any], key: str, where: str, like: Any) -> Any:
        """t[key], of the same kind as `like` (an int may stand for a float, a bool never for an int)."""
        value = t[key]
        want = type(like)
        ok = isinstance(value, want) or (want is float and isinstance(value, int))
        if want is int and isinstance(value, bool):
            ok = False
        if not ok:
            raise self.fail(where, f"{key} must be a {want.__name__}, not {value!r}（{KINDS.get(want, '类型不符')}）")
        return value


KINDS: dict[type, str] = {int: "须为整数", float: "须为数字", str: "须为带引号的文字", bool: "须为 true 或 false",
                          list: "须为列表 [...]", dict: "须为表"}

