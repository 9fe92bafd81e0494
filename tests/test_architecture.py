"""The rules of the house (docs/architecture.md), checked on the source: who may import whom,
and that only the store speaks SQL. Imports inside functions count as much as those at the top."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "supervise"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every supervise module a file imports, relative imports resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)  # `from . import store`
    return {m for m in found if m == "supervise" or m.startswith("supervise.")}


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _is(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


# Layers that read or write the world: the pure core imports none of them.
IMPURE = ("supervise.store", "supervise.jobs", "supervise.workspace", "supervise.intake", "supervise.delivery",
          "supervise.web", "supervise.scheduler", "supervise.demo", "supervise.export", "supervise.cli")

RULES = [
    # (modules the rule is about, what they must not import, why)
    (("supervise.assess", "supervise.bulletin", "supervise.status", "supervise.records", "supervise.periods"),
     IMPURE, "the pure core takes plain data and returns plain data"),
    (("supervise.store",),
     ("supervise.assess", "supervise.bulletin", "supervise.status", "supervise.jobs", "supervise.intake",
      "supervise.workspace", "supervise.delivery", "supervise.web", "supervise.cli"),
     "the store saves and loads plain rows"),
]


@pytest.mark.parametrize("subjects, forbidden, why", RULES, ids=["pure core", "store"])
def test_who_may_import_whom(subjects: tuple[str, ...], forbidden: tuple[str, ...], why: str) -> None:
    broken = sorted(
        f"{name} imports {target}"
        for name, path in MODULES.items() if _is(name, *subjects)
        for target in imports_of(path) if _is(target, *forbidden)
    )
    assert not broken, f"{why}: " + "; ".join(broken)


SQL = re.compile(r"\.execute(many|script)?\(|\btransaction\(|\bBEGIN\b|\bsqlite3\.connect\(")


def test_only_the_store_speaks_sql() -> None:
    # workspace.connect() opens the database file (and applies the store's migrations).
    allowed = ("supervise.store", "supervise.workspace")
    speaking = sorted(
        name for name, path in MODULES.items()
        if not _is(name, *allowed) and SQL.search(path.read_text(encoding="utf-8"))
    )
    assert not speaking, f"SQL outside store/: {speaking}"


def test_the_rules_see_a_violation() -> None:
    """The checker itself: a relative import of the store from the core is found."""
    assert "supervise.store.results" in imports_of(PACKAGE / "jobs" / "results.py")
    assert "supervise.status" in imports_of(PACKAGE / "bulletin" / "build.py")
