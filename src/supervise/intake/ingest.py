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
import sqlite3
import stat
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import DatabaseFault
from ..periods import TZ, Period
from ..registry import unknown_county_message
from ..store import submissions as store
from ..workspace import Workspace
from .archive import stored_name, write_archive
from .inbox import _Remover, inbox_files, settle_seconds_of, settled
from .problems import FileRejected, Problem, csv_place_of
from .readers import Limits, archive_extension, read_submission
from .results import FileResult, Ident, IngestReport, IntakeError, ident_of, iso
from .sandbox import SandboxPool
from .validate import RegistryIndex, Rules, Validated, apply_history, validate

log = logging.getLogger("supervise.intake")


Progress = Callable[[int, int, str], None]
# A file to read: its path and sender, and the receipt time it was given (None: the run's).
Task = tuple[Path, str | None, datetime | None]
# A file of a run: path, the name to report, sender, and optionally its own receipt time.
Item = tuple[Path, str, str | None] | tuple[Path, str, str | None, datetime | None]


def _with_receipt(context: dict[str, Any], task: Task) -> dict[str, Any]:
    """The reading context of one file: with its own receipt time when it was given one."""
    return context if task[2] is None else {**context, "received_at": task[2]}

# Every file is read and judged in a worker process (`sandbox`), which a file can kill
# without killing the ingest; two of them read ahead of the main process when there is work.
WORKERS = 2
_AHEAD_FILES = 160                # files handed to workers ahead of the one being stored
BATCH_FILES = 250                 # files per transaction
BATCH_SECONDS = 2.0


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
        if ident_of(before) == ident_of(after) and (p.oversized or after.st_size == p.size):
            p.ident = ident_of(after)
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
        self.received = iso(self.received_at)
        # Inbox files (not given a receipt time) arrived when they came into the inbox: their
        # inode change time, which no copy tool carries over (see `_arrival`).
        self.inbox = inbox
        self.by_arrival = inbox and received_at is None
        self.dry_run = dry_run
        self.source = source
        self.period = period
        self.ingested_at = iso(now)
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
        self.pool: SandboxPool[Task, _Prepared] | None = None
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
    def _start_pool(self, workers: int) -> SandboxPool[Task, _Prepared] | None:
        made_dirs: set[Path] = set()
        context = self.context

        def work(task: Task) -> _Prepared:
            return _picklable(_prepare(task[0], task[1], made_dirs=made_dirs, **_with_receipt(context, task)))

        try:
            return SandboxPool(work, self._unreadable, workers=workers,
                               memory_bytes=int(self.limits.reader_memory_mb * 1024 * 1024),
                               seconds=float(self.limits.reader_seconds))
        except (ValueError, OSError) as exc:
            log.warning("no reader processes (%s); reading in this process, without limits", exc)
            return None

    def _unreadable(self, task: Task, reason: str) -> _Prepared:
        """A file that killed its reader (memory, time): archived, never parsed again, rejected."""
        p = _prepare(task[0], task[1], made_dirs=self._made_dirs, judge=False, **_with_receipt(self.context, task))
        if p.problem is None and p.error is None and not p.oversized:
            server = self.pool is not None and self.pool.server_fault
            code = "reader_failed" if server else "file_unreadable"
            p.validated = Validated(problems=[Problem(code, unreadable_message(reason, server=server))])
        return p

    def prepare_all(self, tasks: list[Task]) -> Iterable[_Prepared]:
        """Each file read, archived and judged (in the workers), in the order of `tasks`."""
        if self.pool is not None:
            return self.pool.run(tasks, ahead=_AHEAD_FILES)
        return (_prepare(t[0], t[1], made_dirs=self._made_dirs, **_with_receipt(self.context, t)) for t in tasks)

    # ------------------------------------------------------------------ one file
    def one(self, path: Path, display: str, sender: str | None, prepared: _Prepared,
            received_at: datetime | None = None) -> FileResult:
        res = FileResult(file=stored_name(display))
        received = iso(received_at) if received_at is not None else self._arrival(prepared)
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
        return iso(min(arrived, self.now))

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
    period: Period | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest the given files; `county` names the sender, `received_at` the real receipt time."""
    _check_sender(ws, county)
    _check_received_at(received_at, now)
    p = period
    items = [(Path(x), str(x), county) for x in paths]
    return _run(ws, items, now=now, dry_run=dry_run, source=source, period=p,
                received_at=received_at, remove=False, progress=progress)


def ingest_batch(
    ws: Workspace,
    files: Iterable[tuple[Path | str, str | None, datetime | None]],
    *,
    now: datetime,
    source: str = "cli",
    dry_run: bool = False,
    progress: Progress | None = None,
) -> IngestReport:
    """Several files in one run — one registry index, one reader pool, one connection, batched
    transactions — each with its own sender and receipt time (None: now): what `ingest_files`
    does for one sender, for files that came from several (the mails of one collect). The
    report lists the files in the order given."""
    items: list[Item] = []
    for path, county, received_at in files:
        _check_sender(ws, county)
        _check_received_at(received_at, now)
        items.append((Path(path), str(path), county, received_at))
    return _run(ws, items, now=now, dry_run=dry_run, source=source, period=None,
                received_at=None, remove=False, progress=progress)


def _check_received_at(received_at: datetime | None, now: datetime) -> None:
    """A receipt time decides on time or late: one in the future would make a late file on time."""
    if received_at is not None and received_at > now:
        raise IntakeError(f"--received-at {iso(received_at)} 晚于当前时间 {iso(now)}：接收时间不能在将来")


def collect_inbox(
    ws: Workspace,
    *,
    now: datetime,
    dry_run: bool = False,
    period: Period | None = None,
    received_at: datetime | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest everything under inbox/ (inbox/<county_code>/ names the sender), then remove what was stored."""
    _check_received_at(received_at, now)
    p = period
    skipped: list[dict[str, str]] = []
    settle = settle_seconds_of(ws)
    report = _run(ws, settled(inbox_files(ws, skipped), settle), now=now, dry_run=dry_run, source="inbox", period=p,
                received_at=received_at, remove=not dry_run, progress=progress)
    report.skipped = skipped
    return report


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
    items: Sequence[Item],
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
    prepared = iter(job.prepare_all([(it[0], it[2], it[3] if len(it) > 3 else None) for it in items]))

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
        for i, item in enumerate(items):
            path, display, sender = item[0], item[1], item[2]
            if progress is not None:
                progress(i, len(items), display)
            p = next(prepared)
            job.begin()
            result = job.one(path, display, sender, p, item[3] if len(item) > 3 else None)
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


