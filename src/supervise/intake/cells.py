"""What a reader returns (`ReadResult`: metadata cells, header codes, one `RowRead` per data row,
each `Cell` with its place) and the limits every reader works under (`Limits`, [limits])."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Self


@dataclass
class Cell:
    """One value as read, with where it was."""

    value: Any
    ref: str | None = None          # A1-style reference (or CSV column letter + line)
    row: int | None = None          # sheet row or CSV line, 1-based
    formula_missing: bool = False   # a formula with no cached value
    formula: str = ""               # its text, without the leading "=" ("" if unknown)


@dataclass
class RowRead:
    cluster: Cell
    cells: dict[str, Cell] = field(default_factory=dict)   # indicator code -> cell
    name: str = ""                                         # column B, as written


@dataclass
class ReadResult:
    format: str                                  # xlsx | xls | ods | csv
    sheet: str | None = None                     # the data sheet (None for CSV)
    meta: dict[str, Cell] = field(default_factory=dict)
    columns: list[Cell] = field(default_factory=list)   # header code cells, in order
    rows: list[RowRead] = field(default_factory=list)
    duplicates: list[tuple[str, str, Cell]] = field(default_factory=list)  # CSV (cluster, code, cell)
    csv_conflicts: list[tuple[str, Cell]] = field(default_factory=list)    # CSV ("county_code"|"period", cell)
    formula_cells: dict[str, str] = field(default_factory=dict)  # ref -> formula text, no cached value
    wide: bool = False                           # a template saved as CSV: places as in a sheet


class FromSettings:
    """A dataclass read from a settings section: the keys it knows, the rest ignored."""

    @classmethod
    def from_settings(cls, section: dict[str, Any]) -> Self:
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in section.items() if k in known})


@dataclass(frozen=True)
class Limits(FromSettings):
    max_file_bytes: int = 20_000_000
    max_uncompressed_bytes: int = 100_000_000
    max_compression_ratio: float = 200
    max_zip_entries: int = 500
    max_rows: int = 10_000
    max_columns: int = 500
    max_sheets: int = 30
    max_text_chars: int = 5_000
    reader_memory_mb: int = 1024
    reader_seconds: float = 60.0
