"""Plain records the store saves and loads, and the pure core reads: no SQL here.

`store/` turns database rows into these; `status`, `assess` and `bulletin` take them as plain
data. Keeping them apart from the store lets the core import them without importing the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Value = float | str | None


@dataclass(frozen=True)
class SubmissionRow:
    id: int
    county_code: str | None
    sender_code: str | None
    period: str | None
    dataset: str | None
    file_sha256: str
    file_name: str
    format: str | None
    template_version: int | None
    received_at: str
    ingested_at: str
    verdict: str
    state: str
    supersedes: int | None
    n_values: int
    source: str
    origin: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> SubmissionRow:
        """From a database row (anything with keys() and [name])."""
        return cls(**{k: row[k] for k in row.keys()})


@dataclass(frozen=True)
class ProblemRow:
    submission_id: int
    severity: str
    code: str
    sheet: str | None
    cell: str | None
    cluster_code: str | None
    indicator: str | None
    message: str



@dataclass(frozen=True)
class ReturnRow:
    """One 退回: which version staff sent back, when, who, and the reason the county is told."""

    submission_id: int
    at: str                   # when it was sent back (ISO time)
    actor: str
    reason: str
    file_name: str            # the version sent back, as the county named it
    received_at: str          # when that version was received
