"""Ingest: archive every file unchanged, read and validate it, store the verdict atomically.

For each file, in this order: SHA-256; the same file again (same hash already in force for the
county) is "unchanged"; archive (content-addressed, atomic); read + validate; the version, its
values, its problems and an audit line are written all or nothing. Anything unexpected on one
file becomes that file's rejection (`internal_error`), never a crash of the whole ingest.

Speed for many files (a national month is ~2,800 files):

- Reading and validating a file is a pure function of its bytes, the registry and the settings.
  With many files it runs ahead in worker processes (`PARALLEL_MIN_FILES`, `WORKERS`) on bytes
  the main process read and hashed; the main process alone archives, reads the history (the
  warnings, which depend on what was stored before) and writes to SQLite, in the files' order.
  The verdicts, problems and stored values are those of a one-process ingest.
- Files are written in batches: one transaction holds up to `BATCH_FILES` files (or
  `BATCH_SECONDS`), each file inside its own savepoint, so a file that fails is rolled back alone
  and a rejected file still changes nothing stored. Archive copies are written before the
  transaction that records them commits. Nothing is reported or removed from the inbox before
  its batch committed; a crash loses at most an uncommitted batch, whose files are still in the
  inbox and are ingested again next time.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import pickle
import queue
import re
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import DatabaseFault, SuperviseError
from ..periods import TZ, Period, as_period, parse_period
from ..registry import unknown_county_message
from ..store import submissions as store
from ..workspace import Workspace
from .problems import ERROR, FileRejected, Problem, csv_place_of
from .readers import Limits, archive_extension, read_submission
from .sandbox import SandboxPool
from .validate import RegistryIndex, Rules, Validated, apply_history, validate

log = logging.getLogger("supervise.intake")

_COUNTY_DIR = re.compile(r"^\d{6}$")
_IGNORED_SUFFIXES = (".tmp", ".part", ".crdownload", ".partial", ".swp", ".lock")

Progress = Callable[[int, int, str], None]

# Every file is read and judged in a worker process (`sandbox`), which a file can kill
# without killing the ingest; two of them read ahead of the main process when there is work.
WORKERS = 2
_AHEAD_FILES = 160                # files handed to workers ahead of the one being stored
BATCH_FILES = 250                 # files per transaction
BATCH_SECONDS = 2.0


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


def _iso(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=TZ)
    return dt.astimezone(TZ).isoformat()


@dataclass
class _Prepared:
    """What can be done with one file before the database is consulted: read it, hash it, archive
    it and judge it (without its history). Pure but for the archive copy, which is
    content-addressed and idempotent; runs in a worker process or in this one."""

    problem: Problem | None = None          # cannot be opened / is not a file
    error: BaseException | None = None      # unexpected error while reading the file
    size: int = 0
    sha: str | None = None
    ext: str = "bin"                        # archive extension, from the content
    oversized: bool = False
    ident: Ident | None = None              # the file as read (None: it changed while being read)
    changed_ns: int | None = None           # its inode change time: when it came into the inbox
    device: int = 0
    archive_path: str | None = None
    archive_error: BaseException | None = None
    format: str | None = None
    validated: Validated | None = None
    judge_error: BaseException | None = None   # unexpected error while reading or validating


Ident = tuple[int, int, int]


def _ident(st: os.stat_result) -> Ident:
    """What identifies the file we read: inode, size, modification time (ns)."""
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def write_archive(archive_dir: Path, data: bytes, sha: str, ext: str, made_dirs: set[Path] | None = None) -> Path:
    """Keep the bytes read of a file, unchanged, as <archive>/<ab>/<sha256>.<ext> (atomically;
    the name comes from the hash only, so writing the same file twice is harmless). Returns where.

    The bytes are those hashed and judged (never the path read again: it may be a link by now).
    Written to a temporary name and renamed, not `workspace.atomic_write`: that fsyncs every
    copy and its folder (~2,800 fsyncs for a national month, seconds on a slow disk). The copy
    need not be durable on its own: the inbox original is the durable copy until the batch that
    records this one has committed and `os.sync()` ran (`_Remover`); a crash before leaves the
    original in the inbox, and the next ingest writes a missing or empty copy again.
    """
    dest = archive_dir / sha[:2] / f"{sha}.{ext}"
    try:
        if dest.stat().st_size > 0:
            return dest
    except FileNotFoundError:
        pass
    if made_dirs is None or dest.parent not in made_dirs:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if made_dirs is not None:
            made_dirs.add(dest.parent)
    tmp = dest.with_name(f".{sha}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def stored_name(name: str) -> str:
    """A file name as text SQLite can keep: one that is not UTF-8 on disk (a zip or share from a
    Chinese Windows, in GB18030) is decoded as such, else shown with replacement characters."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        raw = os.fsencode(name)
        try:
            return raw.decode("gb18030")
        except UnicodeDecodeError:
            return raw.decode("utf-8", "replace")


def _relative(home: Path, path: Path) -> str:
    try:
        return path.relative_to(home).as_posix()
    except ValueError:
        return str(path)


def _prepare(path: Path, sender: str | None, *, home: Path, archive_dir: Path | None, registry: Any,
             limits: Limits,
             rules: Rules, known_codes: set[str], period: Period | None, index: RegistryIndex,
             received_at: datetime, made_dirs: set[Path], judge: bool = True) -> _Prepared:
    """Read, hash, archive (into `archive_dir`, unless None: a dry run) and judge one file
    (unless `judge` is false: the file killed the worker that read it).

    The bytes archived and judged are the bytes hashed. Errors are kept, not raised: `_Ingest.one`
    meets them in the order of the steps of a one-file ingest.
    """
    p = _Prepared()
    try:
        try:
            # O_NOFOLLOW: a link swapped in for an inbox file is not followed out of the workspace;
            # O_NONBLOCK: a FIFO put there does not hang the collect.
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            reason = "是链接，不是文件" if exc.errno == errno.ELOOP else (exc.strerror or str(exc))
            p.problem = Problem("file_unreadable", f"文件无法打开（{reason}）。")
            return p
        with open(fd, "rb") as f:
            before = os.fstat(fd)
            if not stat.S_ISREG(before.st_mode):
                p.problem = Problem("file_unreadable", "不是文件。")
                return p
            # Never more than the limit is read: the rest of an oversized file is neither hashed
            # nor archived (a 2 GB file must not fill the archive's disk).
            data = f.read(limits.max_file_bytes + 1)
            if len(data) > limits.max_file_bytes:
                data = data[: limits.max_file_bytes]
                p.oversized = True
                p.size = max(before.st_size, os.fstat(fd).st_size)
            else:
                p.size = len(data)
            p.sha, head = hashlib.sha256(data).hexdigest(), data[:4096]
            after = os.fstat(fd)
        # The file may leave the inbox only if it is still the one read (not replaced, not
        # written to meanwhile); a file that changed while it was read never does.
        if _ident(before) == _ident(after) and (p.oversized or after.st_size == p.size):
            p.ident = _ident(after)
            p.changed_ns, p.device = after.st_ctime_ns, after.st_dev
        p.ext = archive_extension(head)
    except Exception as exc:
        p.error = exc
        return p
    if archive_dir is not None:
        # The first `max_file_bytes` of an oversized file are kept, under a name that says so.
        ext = "truncated" if p.oversized else p.ext
        try:
            p.archive_path = _relative(home, write_archive(archive_dir, data, p.sha, ext, made_dirs))
        except Exception as exc:
            p.archive_error = exc
            return p
    if p.oversized:
        return p
    if judge:
        try:
            try:
                read = read_submission(data, limits, known_codes)
            except FileRejected as fr:
                p.validated = Validated(problems=[fr.problem])
            else:
                p.format = read.format
                p.validated = validate(read, registry, limits=limits, rules=rules, sender=sender,
                                       expected_period=period, history=None, index=index,
                                       received_at=received_at)
        except Exception as exc:
            p.judge_error = exc
    return p


def _picklable(p: _Prepared) -> _Prepared:
    """Errors go back from a worker as they are, or as text if they cannot be pickled."""
    for name in ("error", "archive_error", "judge_error"):
        exc = getattr(p, name)
        if exc is not None:
            try:
                pickle.dumps(exc)
            except Exception:  # sent back as text: it becomes the file's internal_error
                setattr(p, name, RuntimeError(f"{type(exc).__name__}: {exc}"))
    return p


def unreadable_message(reason: str, *, server: bool = False) -> str:
    if server:
        return (f"服务器读取文件时出现故障（{reason}），本次未能处理。文件已存档，不计为错报；"
                "请联系市工信局，或稍后重新报送同一文件。")
    return (f"文件无法读取：{reason}（文件内容过大或已损坏）。文件已存档，不予接收。"
            "请用 Excel/WPS 重新保存，或把数据复制到新下发的模板后再报送。")


class _Ingest:
    """One ingest run: registry, settings and the connection loaded once."""

    def __init__(self, ws: Workspace, *, now: datetime, dry_run: bool, source: str,
                 period: Period | None, received_at: datetime | None = None, workers: int = 0,
                 inbox: bool = False) -> None:
        self.ws = ws
        self.now = now
        self.received_at = received_at or now   # the receipt time of every file of this run
        self.received = _iso(self.received_at)
        # Inbox files (not given a receipt time) arrived when they came into the inbox: their
        # inode change time, which no copy tool carries over (see `_arrival`).
        self.inbox = inbox
        self.by_arrival = inbox and received_at is None
        self.dry_run = dry_run
        self.source = source
        self.period = period
        self.ingested_at = _iso(now)
        self.registry = ws.registry
        self.limits = Limits.from_settings(ws.settings.limits)
        self.rules = Rules.from_settings(ws.settings.validation)
        self.known_codes = set(self.registry.indicators)
        self.index = RegistryIndex.of(self.registry)
        self.context: dict[str, Any] = {
            "home": ws.home, "archive_dir": None if dry_run else ws.archive_dir,
            "registry": self.registry, "limits": self.limits,
            "rules": self.rules, "known_codes": self.known_codes, "period": period,
            "index": self.index, "received_at": self.received_at,
        }
        self.pool: SandboxPool[tuple[Path, str | None], _Prepared] | None = None
        if workers > 0:
            self.pool = self._start_pool(workers)   # forked before the database is opened
        try:
            self.conn: sqlite3.Connection = ws.connect()
            store.prepare_for_batches(self.conn)
        except BaseException:
            if self.pool is not None:
                self.pool.close()
            raise
        self._made_dirs: set[Path] = set()
        self._batch_files = 0
        self._batch_started = 0.0

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        self.conn.close()

    # ------------------------------------------------------------------ batches
    def begin(self) -> None:
        """Open the batch transaction (if none is open): the write lock is held from here."""
        if not self.dry_run and store.begin_batch(self.conn):
            self._batch_files = 0
            self._batch_started = time.monotonic()

    def batch_full(self) -> bool:
        self._batch_files += 1
        return (self._batch_files >= BATCH_FILES
                or time.monotonic() - self._batch_started >= BATCH_SECONDS)

    def commit(self) -> None:
        """Commit the open batch (BatchLost: it was rolled back, nothing of it is stored)."""
        store.commit_batch(self.conn)

    def rollback(self) -> None:
        store.rollback_batch(self.conn)

    def history(self, county: str, period: Period) -> dict[str, dict[str, float]]:
        return store.current_numbers(self.conn, county, str(period))

    # ------------------------------------------------------------------ workers
    def _start_pool(self, workers: int) -> SandboxPool[tuple[Path, str | None], _Prepared] | None:
        made_dirs: set[Path] = set()
        context = self.context

        def work(task: tuple[Path, str | None]) -> _Prepared:
            return _picklable(_prepare(task[0], task[1], made_dirs=made_dirs, **context))

        try:
            return SandboxPool(work, self._unreadable, workers=workers,
                               memory_bytes=int(self.limits.reader_memory_mb * 1024 * 1024),
                               seconds=float(self.limits.reader_seconds))
        except (ValueError, OSError) as exc:
            log.warning("no reader processes (%s); reading in this process, without limits", exc)
            return None

    def _unreadable(self, task: tuple[Path, str | None], reason: str) -> _Prepared:
        """A file that killed its reader (memory, time): archived, never parsed again, rejected."""
        p = _prepare(task[0], task[1], made_dirs=self._made_dirs, judge=False, **self.context)
        if p.problem is None and p.error is None and not p.oversized:
            server = self.pool is not None and self.pool.server_fault
            code = "reader_failed" if server else "file_unreadable"
            p.validated = Validated(problems=[Problem(code, unreadable_message(reason, server=server))])
        return p

    def prepare_all(self, tasks: list[tuple[Path, str | None]]) -> Iterable[_Prepared]:
        """Each file read, archived and judged (in the workers), in the order of `tasks`."""
        if self.pool is not None:
            return self.pool.run(tasks, ahead=_AHEAD_FILES)
        return (_prepare(path, sender, made_dirs=self._made_dirs, **self.context) for path, sender in tasks)

    # ------------------------------------------------------------------ one file
    def one(self, path: Path, display: str, sender: str | None, prepared: _Prepared) -> FileResult:
        res = FileResult(file=stored_name(display))
        received = self._arrival(prepared)
        res.received_at = received
        try:
            self._one(path, sender, received, res, prepared)
        except store.BatchLost:
            log.exception("the database rolled back the open batch at %s", display)
            res.batch_lost = True
        except sqlite3.Error as exc:   # the server's fault: stop, blame no county, keep every file
            raise database_fault(self.ws, exc) from exc
        except Exception as exc:  # one bad file never stops the others
            log.exception("internal error on %s", display)
            res.verdict = "rejected"
            res.values = 0
            res.problems = [Problem("internal_error",
                                    f"处理该文件时发生内部错误（{type(exc).__name__}），文件已存档，请联系市工信局。")]
            if res.sha256 and res.archive_path and not self.dry_run and res.submission_id is None:
                try:
                    self._record(res, None, stored_name(path.name), sender, received, 0)
                except store.BatchLost:
                    log.exception("the database rolled back the open batch at %s", display)
                    res.batch_lost = True
                except Exception:  # the database itself is failing: report, keep the file
                    log.exception("could not record the rejection of %s", display)
        return res

    def _arrival(self, p: _Prepared) -> str:
        """The receipt time of one file: the run's, or for an inbox file the time it came into
        the inbox (its inode change time: a copy that keeps an old modification time, `cp -p`,
        rsync, an SMB copy or `touch -d`, cannot make a late file on time), never after now."""
        if not self.by_arrival or p.ident is None or p.changed_ns is None:
            return self.received
        arrived = datetime.fromtimestamp(p.changed_ns / 1e9, tz=TZ)
        return _iso(min(arrived, self.now))

    def origin(self, path: Path, p: _Prepared) -> str | None:
        """Which inbox file a version was read from: its place, inode, size and time."""
        if not self.inbox or p.ident is None:
            return None
        # the inode change time too: a file deleted and made again (a county re-sending an
        # earlier version under the same name) may get the same inode, size and mtime back
        return (f"{stored_name(_relative(self.ws.home, path))}|{p.device}|{p.ident[0]}|{p.ident[1]}|"
                f"{p.ident[2]}|{p.changed_ns}")

    def _one(self, path: Path, sender: str | None, received: str, res: FileResult, p: _Prepared) -> None:
        # The steps of one file, in order; `p` holds what was done ahead (and any error met).
        if p.error is not None:
            raise p.error
        if p.problem is not None:
            res.problems = [p.problem]
            return
        assert p.sha is not None
        res.sha256 = p.sha
        res.ident = p.ident

        if self._unchanged(res, p, sender, path):
            return

        if not self.dry_run:
            if p.archive_error is not None:
                raise p.archive_error
            res.archive_path = p.archive_path

        if p.oversized:
            err = FileRejected("file_too_large",
                               f"文件大小{p.size}字节，超过上限{self.limits.max_file_bytes}字节，不予接收"
                               f"（仅存档前{self.limits.max_file_bytes}字节备查）。请删除多余内容后重新报送。")
            validated = Validated(problems=[err.problem])
        else:
            if p.judge_error is not None:
                raise p.judge_error
            assert p.validated is not None
            res.format, validated = p.format, p.validated
            if validated.pending_history is not None:
                apply_history(validated, self.registry, limits=self.limits, rules=self.rules,
                              history=self.history, index=self.index)
        ext = p.ext
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
        self._record(res, validated, stored_name(path.name), sender, received, p.size, self.origin(path, p))

    def _record(self, res: FileResult, v: Validated | None, name: str, sender: str | None,
                received: str, size: int, origin: str | None = None) -> None:
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
            ingested_at=self.ingested_at,
            verdict=res.verdict,
            values=v.values if (v is not None and accepted) else [],
            problems=[(p.severity, p.code, p.sheet, p.cell, p.cluster_code, p.indicator, p.message)
                      for p in res.problems],
            source=self.source,
            actor=self.source,
            origin=origin,
        )
        res.submission_id = sid
        res.supersedes = previous
        res.recorded = True

    def _unchanged(self, res: FileResult, p: _Prepared, sender: str | None, path: Path) -> bool:
        """The same file again: the very inbox file already recorded (a collect that died before
        removing it), or a file identical to a version in force. Nothing new is stored."""
        assert p.sha is not None
        sha = p.sha
        origin = self.origin(path, p)
        replay = store.version_from_origin(self.conn, origin, sha) if origin is not None else None
        if replay is not None:
            self._as_unchanged(res, replay, p, sender, stored_name(path.name))
            return True
        for row in store.current_with_sha(self.conn, sha):
            if sender is not None and row.county_code != sender:
                continue
            if self.period is not None and row.period != str(self.period):
                continue
            self._as_unchanged(res, row, p, sender, stored_name(path.name))
            return True
        return False

    def _as_unchanged(self, res: FileResult, row: store.SubmissionRow, p: _Prepared, sender: str | None,
                      name: str) -> None:
        sha = row.file_sha256
        res.unchanged = True
        res.county_code = row.county_code
        res.period = row.period
        res.verdict = row.verdict
        res.submission_id = row.id
        res.format = row.format
        res.received_at = row.received_at
        res.values = row.n_values
        csv = row.format == "csv"
        res.problems = [
            Problem(q.code, q.message, q.severity, q.sheet, q.cell, q.cluster_code, q.indicator,
                    where_text=csv_place_of(q.cell) if csv and q.sheet is None and q.cell else None)
            for q in store.problems_of(self.conn, row.id)
        ]
        if not self.dry_run:
            res.archive_path = store.archive_path_of(self.conn, sha)
            if not self._archived(res.archive_path) and self._archived(p.archive_path):
                # The recorded copy is gone: the copy just written from the bytes read
                # takes its place, so the file can leave the inbox.
                assert p.archive_path is not None
                store.set_archive_path(self.conn, sha, p.archive_path)
                res.archive_path = p.archive_path
            store.record_unchanged(self.conn, row=row, file_name=name, sender_code=sender,
                                   at=self.ingested_at, actor=self.source)
            res.recorded = self._archived(res.archive_path)

    def _archived(self, archive_path: str | None) -> bool:
        return archive_path is not None and (self.ws.home / archive_path).is_file()


# ---------------------------------------------------------------------- public API


def _check_sender(ws: Workspace, county: str | None) -> None:
    if county is not None and county not in ws.registry.counties:
        raise IntakeError(unknown_county_message(county))


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
    _check_received_at(received_at, now)
    p = as_period(period) if period is not None else None
    items = [(Path(x), str(x), county) for x in paths]
    return _run(ws, items, now=now, dry_run=dry_run, source=source, period=p,
                received_at=received_at, remove=False, progress=progress)


def _check_received_at(received_at: datetime | None, now: datetime) -> None:
    """A receipt time decides on time or late: one in the future would make a late file on time."""
    if received_at is not None and received_at > now:
        raise IntakeError(f"--received-at {_iso(received_at)} 晚于当前时间 {_iso(now)}：接收时间不能在将来")


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
    _check_received_at(received_at, now)
    p = as_period(period) if period is not None else None
    skipped: list[dict[str, str]] = []
    settle = settle_seconds_of(ws)
    report = _run(ws, settled(inbox_files(ws, skipped), settle), now=now, dry_run=dry_run, source="inbox", period=p,
                received_at=received_at, remove=not dry_run, progress=progress)
    report.skipped = skipped
    return report


# A file is taken only once it has held still for `settle_seconds` ([inbox] in supervise.toml):
# a file modified more recently (real file time against the real clock, never the ingest's
# `now`, which may be injected) is looked at again when it is that old, and left for the next
# collect if its size or modification time moved meanwhile. A file that another process still
# holds open for writing (a copy or an upload paused mid-way) is left too, however old.
SETTLE_SECONDS = 5.0


def settle_seconds_of(ws: Workspace) -> float:
    return float(ws.settings.section("inbox")["settle_seconds"])


def settled(items: list[tuple[Path, str, str | None]],
            settle_seconds: float = SETTLE_SECONDS) -> list[tuple[Path, str, str | None]]:
    """The inbox files that are not being written: still for `settle_seconds`, open nowhere for writing."""
    young: dict[Path, tuple[int, int]] = {}
    busy: set[Path] = set()
    wall = time.time()
    for path, _d, _s in items:
        try:
            st = path.lstat()
        except OSError:
            continue
        writing = being_written(path)
        if writing:
            busy.add(path)
        elif writing is None and wall - st.st_mtime < UNKNOWN_WRITER_SECONDS:
            # another owner's file (an SMB or SFTP upload): the kernel will not say whether it is
            # still open for writing, so it must have held still for much longer
            busy.add(path)
        elif wall - st.st_mtime < settle_seconds:
            young[path] = (st.st_size, st.st_mtime_ns)
    if young:
        # Wait until the youngest file is `settle_seconds` old, then look again.
        newest = max(ns for _size, ns in young.values()) / 1e9
        time.sleep(max(0.0, min(settle_seconds, newest + settle_seconds - time.time())))
        for path, seen in young.items():
            try:
                st = path.lstat()
            except OSError:
                busy.add(path)
                continue
            if (st.st_size, st.st_mtime_ns) != seen or being_written(path):
                busy.add(path)
    for path in sorted(busy):
        log.info("%s is still being written; left for the next collect", path)
    return [item for item in items if item[0] not in busy]


UNKNOWN_WRITER_SECONDS = 120.0


def being_written(path: Path) -> bool | None:
    """Whether another process holds the file open for writing (None: cannot be known).

    Asked of the kernel with a read lease (Linux `F_SETLEASE`), which is refused while any
    process has the file open for writing. Leases need the file's owner (or CAP_LEASE): for
    another owner's file, or a file system without leases, the answer is None, and the file
    must have held still for `UNKNOWN_WRITER_SECONDS`.
    """
    import fcntl

    set_lease = getattr(fcntl, "F_SETLEASE", None)
    if set_lease is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        fcntl.fcntl(fd, set_lease, fcntl.F_RDLCK)
    except OSError as exc:
        return True if exc.errno in (errno.EAGAIN, errno.EBUSY) else None
    else:
        fcntl.fcntl(fd, set_lease, fcntl.F_UNLCK)
        return False
    finally:
        os.close(fd)


def inbox_files(ws: Workspace, skipped: list[dict[str, str]] | None = None) -> list[tuple[Path, str, str | None]]:
    """(path, display name, sender) of every file waiting in the inbox, in a stable order.

    A folder's files come first (in order of arrival: modification time, then name), then its
    sub-folders (by name); symbolic links to
    folders are not followed, hidden and temporary files are skipped, and a link or anything that
    is not a regular file is skipped with a warning. One `scandir` per folder: a national inbox
    has ~2,800 county folders, and the entries' types come with the listing.
    """
    root = ws.inbox_dir
    out: list[tuple[Path, str, str | None]] = []
    if not root.is_dir():
        return out

    def walk(base: Path, sender: str | None, top: bool) -> None:
        try:
            with os.scandir(base) as it:
                entries = list(it)
        except OSError:
            return   # as os.walk: a folder that cannot be listed is passed over
        dirs: list[os.DirEntry[str]] = []
        files: list[os.DirEntry[str]] = []
        for e in entries:
            try:
                is_dir = e.is_dir()
            except OSError:
                is_dir = False
            (dirs if is_dir else files).append(e)
        for e in sorted(files, key=_arrival_order):
            name = e.name
            if _is_working_file(name):
                continue
            path = base / name
            reason = (
                "隐藏文件，未处理 / hidden file, not read" if name.startswith(".")
                else "不是普通文件（链接等），未处理 / not a regular file (a link), not read"
                if e.is_symlink() or not e.is_file() else None
            )
            if reason:
                log.warning("skipping %s: %s", path, reason)
                if skipped is not None:
                    skipped.append({"file": str(path), "reason": reason})
                continue
            out.append((path, str(path), sender))
        for e in sorted(dirs, key=lambda e: e.name):
            if e.name.startswith((".", "~")) or e.is_symlink():
                continue
            walk(base / e.name, (e.name if _COUNTY_DIR.match(e.name) else None) if top else sender, False)

    walk(root, None, True)
    return out


def _arrival_order(e: os.DirEntry[str]) -> tuple[int, str]:
    """Files of a folder in the order they arrived (modification time, then name): a county's
    correction sent after its first file is the version in force, whatever the names."""
    try:
        return (e.stat(follow_symlinks=False).st_mtime_ns, e.name)
    except OSError:
        return (0, e.name)


def _is_working_file(name: str) -> bool:
    """An editor's lock or a download in progress (~$x.xlsx, .~lock.x#, x.part): not a submission."""
    return name.startswith(("~$", ".~lock.")) or name.lower().endswith(_IGNORED_SUFFIXES)


class _Remover:
    """Removes stored files from the inbox, a committed batch at a time, in a background thread:
    first `os.sync()` (the archive copies and the committed database reach the disk), then the
    originals go — each only if it is still the file that was read: same inode, size and
    modification time. A file replaced since (a mail fetcher renaming a newer version onto the
    same name) or written to since (still being copied) stays for the next collect. Between the
    check and the unlink is a window of microseconds, not the seconds of a batch."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[list[tuple[Path, Ident | None]] | None] = queue.SimpleQueue()
        self.thread: threading.Thread | None = None

    def remove(self, paths: list[tuple[Path, Ident | None]]) -> None:
        if not paths:
            return
        if self.thread is None:
            self.thread = threading.Thread(target=self._work, name="ingest-inbox", daemon=True)
            self.thread.start()
        self.queue.put(list(paths))

    def finish(self) -> None:
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join()
            self.thread = None

    def _work(self) -> None:
        while (paths := self.queue.get()) is not None:
            if hasattr(os, "sync"):
                os.sync()
            for path, ident in paths:
                try:
                    if ident is None or _ident(path.lstat()) != ident:
                        log.info("%s changed since it was read; left for the next collect", path)
                        continue
                    if being_written(path):
                        log.info("%s is open for writing; left for the next collect", path)
                        continue
                    path.unlink()
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    log.warning("could not remove %s from the inbox: %s", path, exc)


def database_fault(ws: Workspace, exc: BaseException) -> DatabaseFault:
    return DatabaseFault(
        f"数据库 {ws.db_path} 无法读写（{exc}）：收取已停止，文件留在收件箱，未作判定。"
        "请检查磁盘空间、文件权限或从备份恢复数据库后重新收取。"
    )


def _not_stored(res: FileResult, reason: str) -> None:
    """A file recorded in a batch that SQLite then rolled back: report it as not stored."""
    res.recorded = False
    if res.unchanged:        # only its audit line is lost; the version it repeats stays stored
        return
    res.not_stored = True
    res.verdict = "rejected"
    res.values = 0
    res.submission_id = None
    res.supersedes = None
    res.problems = [Problem(
        "not_stored",
        f"数据库写入失败，本文件未能保存（{reason}）。文件不会从收件箱删除，下次收取时将重新处理，无需重新报送。",
    ), *res.problems]


def _workers_for(n_files: int) -> int:
    """Reader processes for a batch: one for a few files (isolation), two when there is work to share."""
    if n_files == 0:
        return 0
    return max(1, min(WORKERS, os.cpu_count() or 1, (n_files + 1) // 2))


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
    try:
        job = _Ingest(ws, now=now, dry_run=dry_run, source=source, period=period,
                      received_at=received_at, workers=_workers_for(len(items)),
                      inbox=remove or source == "inbox")
    except sqlite3.Error as exc:
        raise database_fault(ws, exc) from exc
    remover = _Remover() if remove and not dry_run else None
    batch: list[tuple[FileResult, Path]] = []    # recorded in the batch still open
    prepared = iter(job.prepare_all([(p, s) for p, _d, s in items]))

    def lose_batch(reason: str) -> None:
        # SQLite rolled the open batch back: none of its files is stored; they stay in the inbox.
        log.error("a batch of %d file(s) was not stored (%s); they stay where they are", len(batch), reason)
        for res, _path in batch:
            _not_stored(res, reason)
        batch.clear()

    def commit() -> None:
        try:
            job.commit()
        except store.BatchLost as exc:
            lose_batch(str(exc))
            return
        if remover is not None:
            remover.remove([(path, res.ident) for res, path in batch])
        batch.clear()

    ok = False
    try:
        for i, (path, display, sender) in enumerate(items):
            if progress is not None:
                progress(i, len(items), display)
            p = next(prepared)
            job.begin()
            result = job.one(path, display, sender, p)
            report.files.append(result)
            log.debug("%s: %s", display, result.verdict)
            if result.batch_lost:
                batch.append((result, path))
                lose_batch("SQLite rolled back the transaction")
                continue
            if result.recorded:
                batch.append((result, path))
            if job.batch_full():
                commit()
        ok = True
    finally:
        try:
            commit()   # what was recorded, file by file, stays recorded
        except Exception:
            log.exception("could not commit the last batch; its files stay in the inbox")
            job.rollback()
            if ok:
                raise
        finally:
            job.close()
            if remover is not None:
                remover.finish()
    if progress is not None:
        progress(len(items), len(items), "")
    return report


def reject_submission(
    ws: Workspace, county_code: str, period: Period | str, reason: str, *, actor: str, now: datetime
) -> dict[str, Any]:
    """退回: send the version in force back to the county, with a reason; recorded in the audit,
    and the county's contacts mailed the reason (a mail not delivered waits in the outbox).

    Done under the workspace lock, so that no collect sends the queued notice beside us.
    """
    from ..jobs.locks import WORKSPACE_LOCK, hold
    from ..jobs.notices import send_return_notice

    if county_code not in ws.registry.counties:
        raise IntakeError(unknown_county_message(county_code))
    if not reason or not reason.strip():
        raise IntakeError("a reason is required (退回须说明原因)")
    key = str(parse_period(str(period)))
    with hold(ws.home, WORKSPACE_LOCK, wait=ws.settings.jobs.lock_wait, now=now):
        conn = ws.connect()
        try:
            row = store.return_current(conn, county_code, key, reason.strip(), actor=actor, at=_iso(now))
            if row is None:
                raise IntakeError(
                    f"{county_code} has no accepted submission for {key} to send back (没有可退回的报送)")
            notice = send_return_notice(ws, conn, row, reason.strip(), now=now)
        finally:
            conn.close()
    return {"county_code": county_code, "period": key, "submission_id": row.id, "state": "returned",
            "reason": reason.strip(), "at": _iso(now), "actor": actor, "file_name": row.file_name,
            "received_at": row.received_at, "notice": notice.to_json()}


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
