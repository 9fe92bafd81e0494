"""One lock file per job, and one for the workspace, held with `fcntl.flock`.

The kernel drops a flock when its process dies (even by SIGKILL), so a crashed run never
leaves a lock behind: there is no stale lock to clean up by hand. The file only carries the
holder's pid and the time its job runs as (`now`, if given), for the message the next runner
prints.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from ..errors import SuperviseError
from ..periods import stamp

LOCK_DIR = ".locks"
WORKSPACE_LOCK = "workspace"


class LockBusy(SuperviseError):
    """Another process holds the lock and did not let go within the wait."""

    def __init__(self, name: str, holder: str, waited: float) -> None:
        self.name = name
        self.holder = holder
        super().__init__(
            f"任务 {name} 正在由另一进程运行（{holder}），等待 {waited:g} 秒后放弃 / "
            f"{name} is already running ({holder}); gave up after waiting {waited:g} s"
        )


def lock_path(home: Path, name: str) -> Path:
    return Path(home) / LOCK_DIR / f"{name}.lock"


@contextmanager
def hold(
    home: Path, name: str, *, wait: float = 0.0, poll: float = 0.05, now: datetime | None = None
) -> Iterator[Path]:
    """Hold `<home>/.locks/<name>.lock`, waiting up to `wait` seconds for another holder.

    `now` (the job's time) is written in the file for whoever finds the lock busy.
    """
    path = lock_path(home, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockBusy(name, _holder(path), wait) from None
                time.sleep(poll)
        os.ftruncate(fd, 0)
        since = f" since {stamp(now)}" if now is not None else ""
        os.pwrite(fd, f"pid {os.getpid()}{since}\n".encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        text = ""
    return text or "pid unknown"
