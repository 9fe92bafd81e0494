"""What an ingest tells: each file's verdict and problems (`FileResult`), the whole report.

`to_json` is the `ingest --json` document (a contract: files with file, county_code, period,
verdict, problems with code, where, message), which the CLI prints and the web answers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..errors import SuperviseError
from ..periods import TZ
from .problems import Problem


class IntakeError(SuperviseError, ValueError):
    """An intake request that cannot be carried out (nothing to send back, unknown county...)."""


@dataclass
class FileResult:
    file: str
    county_code: str | None = None
    period: str | None = None
    verdict: str = "rejected"
    problems: list[Problem] = field(default_factory=list)
    sha256: str | None = None
    submission_id: int | None = None
    unchanged: bool = False
    format: str | None = None
    values: int = 0
    received_at: str | None = None
    archive_path: str | None = None
    supersedes: int | None = None
    recorded: bool = False        # archived and stored (safe to remove from the inbox)
    not_stored: bool = False      # its batch was lost: nothing of it is stored, it stays in the inbox
    batch_lost: bool = field(default=False, repr=False)   # SQLite rolled back the open batch here
    ident: Ident | None = field(default=None, repr=False)  # (inode, size, mtime) when it was read

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "file": self.file,
            "county_code": self.county_code,
            "period": self.period,
            "verdict": self.verdict,
            "problems": [p.to_json() for p in self.problems],
            "submission_id": self.submission_id,
            "sha256": self.sha256,
            "format": self.format,
            "values": self.values,
            "received_at": self.received_at,
        }
        if self.unchanged:
            d["unchanged"] = True
        if self.supersedes is not None:
            d["supersedes"] = self.supersedes
        if self.not_stored:
            d["stored"] = False
        return d


@dataclass
class IngestReport:
    files: list[FileResult] = field(default_factory=list)
    dry_run: bool = False
    skipped: list[dict[str, str]] = field(default_factory=list)   # inbox entries left unread, and why

    @property
    def summary(self) -> dict[str, int]:
        fresh = [f for f in self.files if not f.unchanged and not f.not_stored]
        out = {
            "files": len(self.files),
            "accepted": sum(1 for f in fresh if f.verdict == "accepted"),
            "warning": sum(1 for f in fresh if f.verdict == "warning"),
            "rejected": sum(1 for f in fresh if f.verdict == "rejected"),
            "unchanged": sum(1 for f in self.files if f.unchanged and not f.not_stored),
            "values": sum(f.values for f in fresh if f.verdict != "rejected"),
        }
        lost = sum(1 for f in self.files if f.not_stored)
        if lost:   # files whose batch SQLite rolled back: nothing of them is stored
            out["not_stored"] = lost
        if self.skipped:
            out["skipped"] = len(self.skipped)
        return out

    def to_json(self) -> dict[str, Any]:
        summary: dict[str, Any] = dict(self.summary)
        summary["dry_run"] = self.dry_run
        doc: dict[str, Any] = {"files": [f.to_json() for f in self.files], "summary": summary}
        if self.skipped:
            doc["skipped"] = list(self.skipped)
        return doc


def iso(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=TZ)
    return dt.astimezone(TZ).isoformat()


Ident = tuple[int, int, int]


def ident_of(st: os.stat_result) -> Ident:
    """What identifies the file we read: inode, size, modification time (ns)."""
    return (st.st_ino, st.st_size, st.st_mtime_ns)
