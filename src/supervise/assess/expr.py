"""A safe evaluator for rulebook expressions (pure: no files, no database, no clock).

An expression is arithmetic over names. It is parsed once with `ast.parse(mode="eval")` and the
tree is checked against a whitelist; nothing in a rulebook can ever run code. Allowed:

- numbers (int, float, at most `MAX_CONSTANT` in size), `+ - * /`, unary `-` and `+`, parentheses;
- names: indicator codes of the data dictionary, and `year_elapsed` (the share of the year the data
  cover: a month's number / 12, a quarter's number / 4, 1 for a year);
- `targets.<name>`: the unit's annual target (`above_net_new`, `park_new`, `land_disposed`);
- calls of the functions in `FUNCTIONS` (`min`, `max`, `abs`), positional arguments only.

Evaluation returns None ("cannot be computed") when an input is missing or a division by zero (or
an overflow) happens; it never turns a missing value into 0.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import cast

from ..errors import SuperviseError

MAX_EXPR_CHARS = 1000
MAX_NODES = 200
# No figure or factor in an expression comes near 1e15 (values are below 1万亿); a larger literal
# is a slip, and one of 309 digits is not even a float (it would overflow to inf).
MAX_CONSTANT = 1e15

FUNCTIONS: dict[str, tuple[Callable[..., float], int, int | None]] = {
    # name: (function, least arguments, most arguments or None for any)
    "min": (min, 2, None),
    "max": (max, 2, None),
    "abs": (abs, 1, 1),
}
TARGETS = "targets"
BUILTIN_NAMES = ("year_elapsed",)


class ExprError(SuperviseError, ValueError):
    """An expression that is not allowed or cannot be parsed."""


@dataclass(frozen=True)
class Expr:
    """A checked expression: its text, its tree and the names it reads."""

    text: str
    tree: ast.Expression = field(compare=False, repr=False)
    names: tuple[str, ...]          # indicator codes and builtin names, in order of appearance
    targets: tuple[str, ...]        # target names read as targets.<name>

    @property
    def inputs(self) -> tuple[str, ...]:
        """Every input as it is shown to people: codes, then `targets.<name>`."""
        return self.names + tuple(f"{TARGETS}.{t}" for t in self.targets)

    def evaluate(self, env: Mapping[str, float | None]) -> float | None:
        """The value, or None when it cannot be computed. `env` maps every input name to a value."""
        try:
            value = _compute(self.tree.body, env)
        except _CannotCompute:
            return None
        if value is None or not math.isfinite(value):
            return None
        return float(value)


class _CannotCompute(Exception):
    pass


def parse(text: str) -> Expr:
    """Parse and check an expression; raise ExprError saying what is not allowed."""
    if not isinstance(text, str) or not text.strip():
        raise ExprError("the expression is empty")
    if len(text) > MAX_EXPR_CHARS:
        raise ExprError(f"the expression is longer than {MAX_EXPR_CHARS} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExprError(f"not a valid expression ({exc.msg}): {text!r}") from None
    nodes = list(ast.walk(tree))
    if len(nodes) > MAX_NODES:
        raise ExprError(f"the expression is too long (more than {MAX_NODES} parts)")
    names: list[str] = []
    targets: list[str] = []
    _check(tree.body, names, targets)
    _check_numbers(nodes, text.strip())
    return Expr(text.strip(), tree, tuple(dict.fromkeys(names)), tuple(dict.fromkeys(targets)))


_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div)
_UNARY = (ast.USub, ast.UAdd)


def _check(node: ast.AST, names: list[str], targets: list[str]) -> None:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ExprError(f"only numbers are allowed as constants, not {node.value!r}")
        return
    if isinstance(node, ast.BinOp):
        if not isinstance(node.op, _BINOPS):
            raise ExprError(f"operator {_op_symbol(node.op)} is not allowed; use + - * / and parentheses")
        _check(node.left, names, targets)
        _check(node.right, names, targets)
        return
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, _UNARY):
            raise ExprError(f"operator {_op_symbol(node.op)} is not allowed; use + - * / and parentheses")
        _check(node.operand, names, targets)
        return
    if isinstance(node, ast.Name):
        if node.id == TARGETS:
            raise ExprError("write targets.<name>, e.g. targets.park_new")
        if node.id in FUNCTIONS:
            raise ExprError(f"{node.id} is a function: call it, e.g. {node.id}(a, b)")
        if node.id.startswith("_"):
            raise ExprError(f"name {node.id!r} is not allowed")
        names.append(node.id)
        return
    if isinstance(node, ast.Attribute):
        if not (isinstance(node.value, ast.Name) and node.value.id == TARGETS):
            raise ExprError(
                "attribute access is only allowed as targets.<name> (e.g. targets.park_new)"
            )
        if node.attr.startswith("_"):
            raise ExprError(f"targets.{node.attr} is not allowed")
        targets.append(node.attr)
        return
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise ExprError(
                f"only the functions {', '.join(FUNCTIONS)} may be called, not {ast.unparse(node.func)}"
            )
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise ExprError(f"{node.func.id}() takes plain positional arguments only")
        _fn, least, most = FUNCTIONS[node.func.id]
        if len(node.args) < least or (most is not None and len(node.args) > most):
            want = str(least) if most == least else f"at least {least}"
            raise ExprError(f"{node.func.id}() takes {want} argument(s), not {len(node.args)}")
        for arg in node.args:
            _check(arg, names, targets)
        return
    raise ExprError(f"{_describe(node)} is not allowed in an expression; use arithmetic over indicator codes")


def _check_numbers(nodes: list[ast.AST], source: str) -> None:
    """Refuse literals too large to compute with, quoting them as written (1e400, not inf)."""
    for node in nodes:
        if not isinstance(node, ast.Constant) or not isinstance(node.value, (int, float)):
            continue   # bool is an int, but _check has refused it already
        try:
            size = abs(float(node.value))
        except OverflowError:   # an int of more than 308 digits
            size = math.inf
        if not size <= MAX_CONSTANT:
            written = ast.get_source_segment(source, node) or repr(node.value)
            if len(written) > 24:
                written = f"{written[:12]}… ({len(written)} characters)"
            raise ExprError(
                f"the number {written} is too large: numbers in an expression must be at most "
                f"{MAX_CONSTANT:g} in size; write the figure in a larger unit (万元 rather than 元)"
            )


def _op_symbol(op: ast.AST) -> str:
    return {
        "Pow": "**", "Mod": "%", "FloorDiv": "//", "MatMult": "@", "LShift": "<<", "RShift": ">>",
        "BitOr": "|", "BitXor": "^", "BitAnd": "&", "Not": "not", "Invert": "~",
    }.get(type(op).__name__, type(op).__name__)


def _describe(node: ast.AST) -> str:
    kinds = {
        "Lambda": "a lambda", "Subscript": "a subscript ([...])", "Compare": "a comparison",
        "BoolOp": "and/or", "IfExp": "if/else", "Str": "text", "JoinedStr": "an f-string",
        "List": "a list", "Tuple": "a tuple", "Dict": "a dict", "Set": "a set",
        "ListComp": "a comprehension", "GeneratorExp": "a generator", "NamedExpr": ":=",
        "Await": "await", "Yield": "yield", "Starred": "*",
    }
    return kinds.get(type(node).__name__, type(node).__name__)


def _compute(node: ast.AST, env: Mapping[str, float | None]) -> float:
    if isinstance(node, ast.Constant):
        return float(cast("int | float", node.value))  # _check allowed numbers only
    if isinstance(node, ast.Name):
        return _lookup(env, node.id)
    if isinstance(node, ast.Attribute):
        return _lookup(env, f"{TARGETS}.{node.attr}")
    if isinstance(node, ast.UnaryOp):
        v = _compute(node.operand, env)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp):
        a = _compute(node.left, env)
        b = _compute(node.right, env)
        if isinstance(node.op, ast.Add):
            r = a + b
        elif isinstance(node.op, ast.Sub):
            r = a - b
        elif isinstance(node.op, ast.Mult):
            r = a * b
        else:
            if b == 0:
                raise _CannotCompute("division by zero")
            r = a / b
        if not math.isfinite(r):
            raise _CannotCompute("overflow")
        return r
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        fn = FUNCTIONS[node.func.id][0]
        return float(fn(*(_compute(a, env) for a in node.args)))
    raise _CannotCompute(type(node).__name__)  # unreachable after _check


def _lookup(env: Mapping[str, float | None], name: str) -> float:
    value = env.get(name)
    if value is None or isinstance(value, str):
        raise _CannotCompute(name)
    v = float(value)
    if not math.isfinite(v):
        raise _CannotCompute(name)
    return v
