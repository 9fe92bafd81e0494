"""Where the table is in a sheet's grid: the metadata cells (county, period, template version), the
row of indicator codes, and one row per cluster; formulas and error cells marked on the result."""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from .cells import Cell, ReadResult, RowRead
from .layout import CLUSTER_CODE_HEADER, CLUSTER_NAME_HEADER
from .sheetscan import col_letter

# Labels of the metadata cells, normalised (no spaces, ASCII brackets), and the key they name.
_META_KEYS = {
    "县(市)代码": "county_code", "县市代码": "county_code", "县代码": "county_code",
    "county_code": "county_code", "行政区划代码": "county_code",
    "县(市)名称": "county_name", "县市名称": "county_name", "county_name": "county_name",
    "报告期": "period", "period": "period", "填报期": "period",
    "模板版本": "template_version", "template_version": "template_version", "版本": "template_version",
}


_CODE_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


_CLUSTER_LIKE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


_HEADER_SCAN_ROWS = 60


def cell_text(v: Any) -> str:
    """A cell as text: 1.0 -> '1', '' stays ''."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    return str(v).strip() if v is not None else ""


def _norm_label(v: Any) -> str:
    s = cell_text(v)
    for a, b in (("（", "("), ("）", ")"), ("：", ""), (":", ""), (" ", ""), ("\u3000", "")):
        s = s.replace(a, b)
    return s


@lru_cache(maxsize=4096)
def _meta_key(label: str) -> str | None:
    """The metadata key a label names (the same few labels in every file: memoised)."""
    return _META_KEYS.get(_norm_label(label))


def locate_table(grid: list[list[Any]], fmt: str, sheet: str, known_codes: set[str]) -> ReadResult | None:
    """Find the code row, the data rows and the metadata in one sheet's grid (None: no codes here)."""
    header = None
    for r, row in enumerate(grid[:_HEADER_SCAN_ROWS]):
        if any(isinstance(v, str) and v.strip() in known_codes for v in row):
            header = r
            break
    if header is None:
        return None
    res = ReadResult(format=fmt, sheet=sheet)

    # Metadata: a known label, then the first non-empty cell to its right (rows above the codes).
    for r in range(header):
        row = grid[r]
        for c, v in enumerate(row):
            if not v or not isinstance(v, str):
                continue
            key = _meta_key(v)
            if key is None or key in res.meta:
                continue
            for c2 in range(c + 1, len(row)):
                if cell_text(row[c2]) != "":
                    res.meta[key] = Cell(row[c2], f"{col_letter(c2 + 1)}{r + 1}", r + 1)
                    break

    code_row = grid[header]
    cols: list[tuple[int, str]] = []
    for c, v in enumerate(code_row):
        if c == 0:
            continue
        s = v.strip() if isinstance(v, str) else ""
        if s and _CODE_LIKE.match(s) and s not in (CLUSTER_CODE_HEADER, CLUSTER_NAME_HEADER):
            cols.append((c, s))
            res.columns.append(Cell(s, f"{col_letter(c + 1)}{header + 1}", header + 1))

    letters = [(c, code, col_letter(c + 1)) for c, code in cols]
    for r in range(header + 1, len(grid)):
        row = grid[r]
        n = len(row)
        first = cell_text(row[0]) if row else ""
        values = [row[c] if c < n else "" for c, _code, _l in letters]
        any_value = any(v != "" and not (isinstance(v, str) and not v.strip()) for v in values)
        if not any_value and (first == "" or not _CLUSTER_LIKE.match(first)):
            continue  # blank line, or a note such as 填表人/联系电话 below the table
        line = r + 1
        rr = RowRead(Cell(first, f"A{line}", line), name=cell_text(row[1]) if n > 1 else "")
        cells = rr.cells
        for (_c, code, letter), v in zip(letters, values):
            cells[code] = Cell(v, f"{letter}{line}", line)
        res.rows.append(rr)
    return res


def mark_errors(res: ReadResult, errors: dict[str, str]) -> None:
    """Show an error cell as its error text (#DIV/0!), so the clerk is told what is in it."""
    if not errors:
        return
    for row in res.rows:
        for cell in row.cells.values():
            if cell.ref in errors:
                cell.value = errors[cell.ref]


def mark_formulas(res: ReadResult) -> None:
    """Flag the cells whose formula has no cached value."""
    if not res.formula_cells:
        return
    refs = res.formula_cells
    for row in res.rows:
        for cell in row.cells.values():
            if cell.ref in refs:
                cell.formula_missing = True
                cell.formula = refs[cell.ref]
    for cell in res.meta.values():
        if cell.ref in refs:
            cell.formula_missing = True
            cell.formula = refs[cell.ref]
