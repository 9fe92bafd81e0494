"""Reading files in worker processes that a file can kill without killing the ingest.

A reader can be made to allocate without bound (calamine aborts the process when an allocation
fails) or to spin. So every file is read in a forked worker under a memory limit
(`RLIMIT_AS`: the worker's own address space at start plus `memory_bytes`) and a time limit
(the parent kills a worker that spends longer than `seconds` on one file). When a worker dies
or is killed, the file it was reading is handed to `fallback` in the parent (which archives it
and rejects it as unreadable), a new worker takes the dead one's place, and the batch goes on.

Results come back in the order of the tasks, whatever order the workers finish in. Each worker
holds at most `_IN_FLIGHT` tasks, so the one that killed it is known: the oldest unanswered.
"""

from __future__ import annotations

import faulthandler
import logging
import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Generic, TypeVar

log = logging.getLogger("supervise.intake")

T = TypeVar("T")
R = TypeVar("R")

_IN_FLIGHT = 2          # tasks queued at one worker: it never waits for the parent between files
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _address_space() -> int:
    """This process's virtual size in bytes (what RLIMIT_AS counts)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def _limit_memory(extra: int) -> None:
    import resource

    if extra <= 0:
        return
    limit = _address_space() + extra
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _worker_main(conn: Connection, work: Callable[[Any], Any], memory_bytes: int) -> None:
    # A worker never answers SIGINT itself: the parent decides what stops (and kills it).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    faulthandler.disable()     # a reader that aborts is expected here: the parent reports it
    _limit_memory(memory_bytes)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        index, task = msg
        try:
            result = work(task)
        except MemoryError:
            os._exit(70)      # the parent rejects the file as too big to read
        conn.send((index, result))


@dataclass
class _Worker:
    process: Any
    conn: Connection
    tasks: deque[int] = field(default_factory=deque)   # indices sent, oldest first
    since: float = 0.0                                 # when the oldest task started (at the latest)


class SandboxPool(Generic[T, R]):
    """Forked workers running `work(task)`; `fallback(task, reason)` in the parent for a task
    that killed its worker or ran out of time."""

    def __init__(self, work: Callable[[T], R], fallback: Callable[[T, str], R], *, workers: int,
                 memory_bytes: int, seconds: float) -> None:
        self.work, self.fallback = work, fallback
        self.memory_bytes, self.seconds = memory_bytes, seconds
        self.ctx = multiprocessing.get_context("fork")
        self.workers: list[_Worker] = [self._start() for _ in range(max(1, workers))]
        self.failures = 0
        self.server_fault = False     # whether the last failure was the server's, not the file's

    def _start(self) -> _Worker:
        parent, child = self.ctx.Pipe(duplex=True)
        proc = self.ctx.Process(target=_worker_main, args=(child, self.work, self.memory_bytes),
                                name="supervise-reader", daemon=True)
        proc.start()
        child.close()
        return _Worker(proc, parent)

    def close(self) -> None:
        for w in self.workers:
            try:
                w.conn.send(None)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + 5
        for w in self.workers:
            w.process.join(max(0.0, deadline - time.monotonic()))
            if w.process.is_alive():
                w.process.kill()
                w.process.join()
            w.conn.close()
        self.workers = []

    def __enter__(self) -> SandboxPool[T, R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _replace(self, w: _Worker) -> None:
        if w.process.is_alive():
            w.process.kill()
        w.process.join()
        w.conn.close()
        self.workers[self.workers.index(w)] = self._start()

    def run(self, tasks: Sequence[T], ahead: int = 64) -> Iterator[R]:
        """Each task's result, in the order of `tasks`; at most `ahead` tasks run ahead of the one yielded."""
        done: dict[int, R] = {}
        retry: deque[int] = deque()     # tasks queued behind one that killed its worker
        next_task = 0
        next_out = 0
        n = len(tasks)
        while next_out < n:
            next_task = self._hand_out(tasks, retry, next_out + ahead, next_task)
            if next_out in done:
                yield done.pop(next_out)
                next_out += 1
                continue
            busy = [w for w in self.workers if w.tasks]
            if not busy:       # every worker lost its pipe before taking a task: start afresh
                for w in list(self.workers):
                    self._replace(w)
                continue
            timeout = max(0.0, min(w.since + self.seconds for w in busy) - time.monotonic())
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout)
            for w in busy:
                self._collect(w, ready, tasks, done, retry)

    def _hand_out(self, tasks: Sequence[T], retry: deque[int], bound: int, next_task: int) -> int:
        """Fill every worker's queue (retries first, then tasks below `bound`); the next task to hand out."""
        for w in self.workers:
            while len(w.tasks) < _IN_FLIGHT:
                if retry:
                    index = retry[0]
                elif next_task < min(len(tasks), bound):
                    index = next_task
                else:
                    return next_task
                if not w.tasks:
                    w.since = time.monotonic()
                try:
                    w.conn.send((index, tasks[index]))
                except (OSError, ValueError):
                    break       # the worker is gone: noticed through its sentinel
                if retry and retry[0] == index:
                    retry.popleft()
                else:
                    next_task += 1
                w.tasks.append(index)
        return next_task

    def _collect(self, w: _Worker, ready: list[Any], tasks: Sequence[T], done: dict[int, R],
                 retry: deque[int]) -> None:
        """Take a worker's answers; a worker that died or overran loses its oldest task to `fallback`."""
        # Every answer already in the pipe first, even from a worker that has died since.
        try:
            while w.tasks and w.conn.poll():
                index, result = w.conn.recv()
                done[index] = result
                if w.tasks and w.tasks[0] == index:
                    w.tasks.popleft()
                w.since = time.monotonic()
        except (EOFError, OSError):
            pass        # died while answering: a death, below
        alive = w.process.is_alive()
        overdue = bool(w.tasks) and time.monotonic() - w.since >= self.seconds
        if (alive and not overdue) or not w.tasks:
            return
        index = w.tasks.popleft()
        # The file's fault only when the reader ran out of its memory (calamine aborts when an
        # allocation fails; Python exits with 70, above). A time limit hit on a loaded server, or
        # a reader killed from outside, is the server's: `server_fault` in the reason.
        if alive:
            reason, fault = f"读取超过{self.seconds:g}秒仍未完成", True
        else:
            w.process.join()
            code = w.process.exitcode
            memory = code in (70, -signal.SIGABRT, -signal.SIGSEGV)
            reason, fault = ("读取所需内存超过上限", False) if memory else (f"读取进程异常退出（{code}）", True)
        self.server_fault = fault
        log.error("the reader stopped on task %d (%s); it is rejected as unreadable", index, reason)
        self.failures += 1
        done[index] = self.fallback(tasks[index], reason)
        retry.extendleft(reversed(w.tasks))    # what was queued behind it goes out again
        w.tasks.clear()
        self._replace(w)
