"""Ingest: archive every file unchanged, read and validate it, store the verdict in one transaction.

For each file, in this order: SHA-256; the same file again (same hash already in force for the
county) is "unchanged"; archive (content-addressed, atomic); read + validate; ONE transaction
writes the version, its values, its problems and an audit line. Anything unexpected on one file
becomes that file's rejection (`internal_error`), never a crash of the whole ingest.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import SuperviseError
from ..periods import TZ, Period, parse_period
from ..store import submissions as store
from ..workspace import Workspace
from .problems import ERROR, FileRejected, Problem
from .readers import Limits, archive_extension, read_submission
from .validate import Rules, Validated, validate

log = logging.getLogger("supervise.intake")

_CHUNK = 1 << 20
_COUNTY_DIR = re.compile(r"^\d{6}$")
_IGNORED_SUFFIXES = (".tmp", ".part", ".crdownload", ".partial", ".swp", ".lock")

Progress = Callable[[int, int, str], None]


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
        return d


@dataclass
class IngestReport:
    files: list[FileResult] = field(default_factory=list)
    dry_run: bool = False

    @property
    def summary(self) -> dict[str, int]:
        fresh = [f for f in self.files if not f.unchanged]
        return {
            "files": len(self.files),
            "accepted": sum(1 for f in fresh if f.verdict == "accepted"),
            "warning": sum(1 for f in fresh if f.verdict == "warning"),
            "rejected": sum(1 for f in fresh if f.verdict == "rejected"),
            "unchanged": sum(1 for f in self.files if f.unchanged),
            "values": sum(f.values for f in fresh if f.verdict != "rejected"),
        }

    def to_json(self) -> dict[str, Any]:
        summary: dict[str, Any] = dict(self.summary)
        summary["dry_run"] = self.dry_run
        return {"files": [f.to_json() for f in self.files], "summary": summary}


def _iso(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=TZ)
    return dt.astimezone(TZ).isoformat()


class _Ingest:
    """One ingest run: registry, settings and the connection loaded once."""

    def __init__(self, ws: Workspace, *, now: datetime, dry_run: bool, source: str,
                 period: Period | None) -> None:
        self.ws = ws
        self.now = now
        self.dry_run = dry_run
        self.source = source
        self.period = period
        self.registry = ws.registry
        self.limits = Limits.from_settings(ws.settings.limits)
        self.rules = Rules.from_settings(ws.settings.validation)
        self.known_codes = set(self.registry.indicators)
        self.conn: sqlite3.Connection = ws.connect()
        self._made_dirs: set[Path] = set()

    def close(self) -> None:
        self.conn.close()

    def history(self, county: str, period: Period) -> dict[str, dict[str, float]]:
        return store.current_numbers(self.conn, county, str(period))

    # ------------------------------------------------------------------ one file
    def one(self, path: Path, display: str, sender: str | None, received_at: datetime | None) -> FileResult:
        res = FileResult(file=display)
        received = _iso(received_at or self.now)
        res.received_at = received
        try:
            self._one(path, sender, received, res)
        except Exception as exc:  # one bad file never stops the others
            log.exception("internal error on %s", display)
            res.verdict = "rejected"
            res.values = 0
            res.problems = [Problem("internal_error",
                                    f"处理该文件时发生内部错误（{type(exc).__name__}），文件已存档，请联系市工信局。")]
            if res.sha256 and res.archive_path and not self.dry_run and res.submission_id is None:
                try:
                    self._record(res, None, path.name, sender, received, 0)
                except Exception:  # the database itself is failing: report, keep the file
                    log.exception("could not record the rejection of %s", display)
        return res

    def _one(self, path: Path, sender: str | None, received: str, res: FileResult) -> None:
        try:
            size = path.stat().st_size
        except OSError as exc:
            res.problems = [Problem("file_unreadable", f"文件无法打开（{exc.strerror or exc}）。")]
            return
        if not path.is_file():
            res.problems = [Problem("file_unreadable", "不是文件。")]
            return
        data: bytes | None = None
        if size <= self.limits.max_file_bytes:
            with open(path, "rb") as f:
                data = f.read(self.limits.max_file_bytes + 1)
            if len(data) > self.limits.max_file_bytes:
                data = None  # grew while we looked: handle as oversized
        if data is not None:
            sha = hashlib.sha256(data).hexdigest()
            head = data[:4096]
            size = len(data)
        else:
            sha, head, size = self._hash_stream(path)
        res.sha256 = sha

        if self._unchanged(res, sha, sender, path.name):
            return

        ext = archive_extension(head)
        if not self.dry_run:
            res.archive_path = self._archive(path, data, sha, ext)

        if data is None:
            err = FileRejected("file_too_large",
                               f"文件大小{size}字节，超过上限{self.limits.max_file_bytes}字节，不予接收。")
            validated = Validated(problems=[err.problem])
        else:
            try:
                read = read_submission(data, self.limits, self.known_codes)
            except FileRejected as fr:
                validated = Validated(problems=[fr.problem])
            else:
                res.format = read.format
                validated = validate(
                    read, self.registry, limits=self.limits, rules=self.rules, sender=sender,
                    expected_period=self.period, history=self.history,
                )
        res.format = res.format or (ext if ext in ("xlsx", "xls", "ods", "csv") else None)
        # A rejected file counts against whoever sent it; a file's own county only when it is real.
        county = sender or validated.county_code
        res.county_code = county if county in self.registry.counties else None
        res.period = validated.period
        res.verdict = validated.verdict
        res.problems = validated.problems
        res.values = len(validated.values) if res.verdict != "rejected" else 0
        if self.dry_run:
            return
        self._record(res, validated, path.name, sender, received, size)

    def _record(self, res: FileResult, v: Validated | None, name: str, sender: str | None,
                received: str, size: int) -> None:
        assert res.sha256 and res.archive_path
        accepted = res.verdict != "rejected"
        county = res.county_code
        sid, previous = store.record_submission(
            self.conn,
            sha256=res.sha256,
            size=size or (self.ws.home / res.archive_path).stat().st_size,
            archive_path=res.archive_path,
            file_name=name,
            county_code=county,
            sender_code=sender,
            period=res.period,
            dataset=v.dataset if v else None,
            format=res.format,
            template_version=v.template_version if v else None,
            received_at=received,
            ingested_at=_iso(self.now),
            verdict=res.verdict,
            values=v.values if (v is not None and accepted) else [],
            problems=[(p.severity, p.code, p.sheet, p.cell, p.cluster_code, p.indicator, p.message)
                      for p in res.problems],
            source=self.source,
            actor=self.source,
        )
        res.submission_id = sid
        res.supersedes = previous
        res.recorded = True

    def _unchanged(self, res: FileResult, sha: str, sender: str | None, name: str) -> bool:
        for row in store.current_with_sha(self.conn, sha):
            if sender is not None and row.county_code != sender:
                continue
            if self.period is not None and row.period != str(self.period):
                continue
            res.unchanged = True
            res.county_code = row.county_code
            res.period = row.period
            res.verdict = row.verdict
            res.submission_id = row.id
            res.format = row.format
            res.received_at = row.received_at
            res.values = row.n_values
            res.problems = [
                Problem(p.code, p.message, p.severity, p.sheet, p.cell, p.cluster_code, p.indicator)
                for p in store.problems_of(self.conn, row.id)
            ]
            if not self.dry_run:
                file_row = self.conn.execute(
                    "SELECT archive_path FROM files WHERE sha256 = ?", (sha,)).fetchone()
                res.archive_path = file_row[0] if file_row else None
                store.record_unchanged(self.conn, row=row, file_name=name, sender_code=sender,
                                       at=_iso(self.now), actor=self.source)
                res.recorded = res.archive_path is not None and (self.ws.home / res.archive_path).exists()
            return True
        return False

    def _hash_stream(self, path: Path) -> tuple[str, bytes, int]:
        h = hashlib.sha256()
        head = b""
        size = 0
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                if not head:
                    head = chunk[:4096]
                h.update(chunk)
                size += len(chunk)
        return h.hexdigest(), head, size

    def _archive(self, path: Path, data: bytes | None, sha: str, ext: str) -> str:
        """Copy the file, unchanged, to archive/<ab>/<sha256>.<ext>; the name comes from the hash only."""
        rel = Path("archive") / sha[:2] / f"{sha}.{ext}"
        dest = self.ws.home / rel
        try:
            if dest.stat().st_size > 0:
                return rel.as_posix()
        except FileNotFoundError:
            pass
        if dest.parent not in self._made_dirs:
            dest.parent.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(dest.parent)
        tmp = dest.with_name(f".{sha}.{os.getpid()}.tmp")
        try:
            if data is not None:
                with open(tmp, "wb") as f:
                    f.write(data)
            else:
                h = hashlib.sha256()
                with open(path, "rb") as src, open(tmp, "wb") as f:
                    while chunk := src.read(_CHUNK):
                        h.update(chunk)
                        f.write(chunk)
                if h.hexdigest() != sha:
                    raise OSError(f"{path} changed while it was being archived")
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return rel.as_posix()


# ---------------------------------------------------------------------- public API


def _check_sender(ws: Workspace, county: str | None) -> None:
    if county is not None and county not in ws.registry.counties:
        raise IntakeError(f"unknown county code {county!r} (see reference/counties.csv)")


def ingest_files(
    ws: Workspace,
    paths: Iterable[Path | str],
    *,
    county: str | None = None,
    received_at: datetime | None = None,
    dry_run: bool = False,
    now: datetime,
    source: str = "cli",
    period: Period | str | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest the given files; `county` names the sender, `received_at` the real receipt time."""
    _check_sender(ws, county)
    p = parse_period(str(period)) if isinstance(period, str) else period
    items = [(Path(x), str(x), county) for x in paths]
    return _run(ws, items, now=now, dry_run=dry_run, source=source, period=p,
                received_at=received_at, remove=False, progress=progress)


def collect_inbox(
    ws: Workspace,
    *,
    now: datetime,
    dry_run: bool = False,
    period: Period | str | None = None,
    received_at: datetime | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest everything under inbox/ (inbox/<county_code>/ names the sender), then remove what was stored."""
    p = parse_period(str(period)) if isinstance(period, str) else period
    return _run(ws, inbox_files(ws), now=now, dry_run=dry_run, source="inbox", period=p,
                received_at=received_at, remove=not dry_run, progress=progress)


def inbox_files(ws: Workspace) -> list[tuple[Path, str, str | None]]:
    """(path, display name, sender) of every file waiting in the inbox, in a stable order."""
    root = ws.inbox_dir
    out: list[tuple[Path, str, str | None]] = []
    if not root.is_dir():
        return out
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "~")))
        base = Path(dirpath)
        rel_dir = base.relative_to(root)
        first = rel_dir.parts[0] if rel_dir.parts else None
        sender = first if first and _COUNTY_DIR.match(first) else None
        for name in sorted(filenames):
            if name.startswith((".", "~$", "~")) or name.lower().endswith(_IGNORED_SUFFIXES):
                continue
            path = base / name
            if path.is_symlink() or not path.is_file():
                log.warning("skipping %s: not a regular file", path)
                continue
            out.append((path, str(path), sender))
    return out


def _run(
    ws: Workspace,
    items: list[tuple[Path, str, str | None]],
    *,
    now: datetime,
    dry_run: bool,
    source: str,
    period: Period | None,
    received_at: datetime | None,
    remove: bool,
    progress: Progress | None,
) -> IngestReport:
    report = IngestReport(dry_run=dry_run)
    job = _Ingest(ws, now=now, dry_run=dry_run, source=source, period=period)
    done: list[Path] = []
    try:
        for i, (path, display, sender) in enumerate(items):
            if progress is not None:
                progress(i, len(items), display)
            result = job.one(path, display, sender, received_at)
            report.files.append(result)
            if remove and result.recorded:
                done.append(path)
            log.debug("%s: %s", display, result.verdict)
    finally:
        job.close()
        if done:
            # Archive copies and the database reach the disk before the originals go.
            if hasattr(os, "sync"):
                os.sync()
            for path in done:
                try:
                    path.unlink()
                except OSError as exc:
                    log.warning("could not remove %s from the inbox: %s", path, exc)
    if progress is not None:
        progress(len(items), len(items), "")
    return report


def reject_submission(
    ws: Workspace, county_code: str, period: Period | str, reason: str, *, actor: str, now: datetime
) -> dict[str, Any]:
    """退回: send the version in force back to the county, with a reason; recorded in the audit."""
    if county_code not in ws.registry.counties:
        raise IntakeError(f"unknown county code {county_code!r}")
    if not reason or not reason.strip():
        raise IntakeError("a reason is required (退回须说明原因)")
    key = str(parse_period(str(period)))
    conn = ws.connect()
    try:
        row = store.return_current(conn, county_code, key, reason.strip(), actor=actor, at=_iso(now))
    finally:
        conn.close()
    if row is None:
        raise IntakeError(f"{county_code} has no accepted submission for {key} to send back (没有可退回的报送)")
    return {"county_code": county_code, "period": key, "submission_id": row.id, "state": "returned",
            "reason": reason.strip(), "at": _iso(now), "actor": actor}


def history(ws: Workspace, county_code: str, period: Period | str) -> dict[str, Any]:
    """Every version on record (who, when, file, hash, verdict, state) and what changed between accepted ones."""
    key = str(parse_period(str(period)))
    conn = ws.connect()
    try:
        rows = store.all_versions(conn, county_code, key)
        versions = []
        for r in rows:
            problems = store.problems_of(conn, r.id)
            versions.append({
                "submission_id": r.id,
                "sender_code": r.sender_code,
                "source": r.source,
                "received_at": r.received_at,
                "ingested_at": r.ingested_at,
                "file_name": r.file_name,
                "sha256": r.file_sha256,
                "format": r.format,
                "verdict": r.verdict,
                "state": r.state,
                "supersedes": r.supersedes,
                "values": r.n_values,
                "errors": sum(1 for p in problems if p.severity == ERROR),
                "warnings": sum(1 for p in problems if p.severity != ERROR),
            })
        accepted = [r for r in rows if r.verdict != "rejected"]
        changes = []
        for old, new in zip(accepted, accepted[1:]):
            a, b = store.values_of(conn, old.id), store.values_of(conn, new.id)
            diff = []
            for cluster in sorted(set(a) | set(b)):
                for ind in sorted(set(a.get(cluster, {})) | set(b.get(cluster, {}))):
                    va, vb = a.get(cluster, {}).get(ind), b.get(cluster, {}).get(ind)
                    if va != vb:
                        diff.append({"cluster_code": cluster, "indicator": ind, "old": va, "new": vb})
            changes.append({"from": old.id, "to": new.id, "received_at": new.received_at, "changes": diff})
        audit = store.audit_of(conn, county_code, key)
    finally:
        conn.close()
    return {"county_code": county_code, "period": key, "versions": versions, "changes": changes,
            "audit": audit}
