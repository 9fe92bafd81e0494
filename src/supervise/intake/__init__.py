"""Intake: a county's file to a located verdict, archived first, stored once.

The entry points other layers (the CLI, the web, mail intake, the jobs) call:

    ingest_files(ws, paths, county=..., received_at=..., now=..., dry_run=False)  -> IngestReport
    collect_inbox(ws, now=...)                     everything settled in inbox/<county>/
    reject_submission(ws, county, period, reason, actor=..., now=...)   退回, with the notice
    history(ws, county, period)                    a county's versions of a period
"""

from __future__ import annotations

from .ingest import collect_inbox, ingest_files
from .results import FileResult, IngestReport, IntakeError
from .versions import history, reject_submission

__all__ = [
    "FileResult",
    "IngestReport",
    "IntakeError",
    "collect_inbox",
    "history",
    "ingest_files",
    "reject_submission",
]
