"""An uploaded file to a verdict, through the same path as `supervise ingest FILE --county CODE`.

The upload is written under the client's file name, cleaned (no folder part, no `..`, no
control or bidi characters), in a fresh folder of its own inside the workspace
(`.web/uploads/`), ingested as the user's county with the receipt time `now` under the
workspace lock that every writing job takes, and removed: the archive keeps the bytes.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from ..workspace import Workspace

MAX_NAME_BYTES = 180
DEFAULT_NAME = "上传文件"


def safe_filename(raw: str | None) -> str:
    """The client's file name as a plain name: its last part only (after / or \\), without control,
    format (bidi) or unassigned characters, without leading dots, at most 180 bytes (extension kept)."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFC", name)
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] not in ("C", "Z") or ch == " ")
    name = name.strip().lstrip(".").strip()
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        ext = ext if dot and len(ext) <= 8 else ""
        stem = stem if dot and ext else name
        while len((stem + ("." + ext if ext else "")).encode("utf-8")) > MAX_NAME_BYTES:
            stem = stem[:-1]
        name = stem.rstrip() + ("." + ext if ext else "")
    return name or DEFAULT_NAME


@dataclass
class UploadResult:
    """The ingest JSON's `files[0]` (with the client's file name), and the report's summary."""

    file: dict[str, Any]
    summary: dict[str, Any]
    name: str


def ingest_upload(ws: Workspace, stream: IO[bytes], filename: str | None, *, county: str, now: datetime,
                  staging: Path, lock_wait: float, turns: Any = None) -> UploadResult:
    """Stage the upload, ingest it as `county` received at `now`, remove the staged copy.
    `turns` (a FairLock) orders this process's uploads before they take the workspace lock."""
    from ..intake import ingest_files
    from ..jobs.locks import WORKSPACE_LOCK, LockBusy, hold

    name = safe_filename(filename)
    folder = Path(tempfile.mkdtemp(prefix="u-", dir=staging))
    try:
        path = folder / name
        with open(path, "xb") as out:
            shutil.copyfileobj(stream, out, 1024 * 1024)
        started = time.monotonic()
        if turns is not None and not turns.acquire(lock_wait):
            raise LockBusy(WORKSPACE_LOCK, "other uploads", lock_wait)
        try:
            left = max(0.0, lock_wait - (time.monotonic() - started))
            with hold(ws.home, WORKSPACE_LOCK, wait=left, now=now, poll=0.01):
                report = ingest_files(ws, [path], county=county, now=now, source="web")
        finally:
            if turns is not None:
                turns.release()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    doc = report.to_json()
    first = dict(doc["files"][0])
    first["file"] = name       # never the server's staging path
    return UploadResult(first, dict(doc["summary"]), name)
