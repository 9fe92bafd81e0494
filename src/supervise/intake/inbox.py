"""The inbox: which files are waiting (inbox/<county_code>/ names the sender), in the order they
arrived; which have settled (held still, no writer holds them open); removing stored originals.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import re
import threading
import time
from pathlib import Path

from ..workspace import Workspace
from .results import Ident, ident_of

log = logging.getLogger("supervise.intake")

_COUNTY_DIR = re.compile(r"^\d{6}$")


_IGNORED_SUFFIXES = (".tmp", ".part", ".crdownload", ".partial", ".swp", ".lock")


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
                    if ident is None or ident_of(path.lstat()) != ident:
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
