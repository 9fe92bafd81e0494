"""Running one job: its lock, its record in job_runs, and a loud failure.

Every job goes through `run_job`: it takes `<home>/.locks/<job>.lock` (so the same job never
runs twice at once), then the workspace lock (so two jobs never write at once), marks runs
left `running` by a killed process as errors, records the run, and on failure records the
error, mails the administrator and raises `JobFailed` (one line, non-zero exit).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from ..errors import SuperviseError
from ..store import runs
from ..workspace import Workspace
from .locks import WORKSPACE_LOCK, LockBusy, hold

log = logging.getLogger("supervise.jobs")

T = TypeVar("T")

PAUSE_ENV = "SUPERVISE_TEST_PAUSE_AT"


class JobFailed(SuperviseError):
    """A job failed; the run record holds the error and the administrator was told."""

    def __init__(self, message: str, *, result: Any = None, run_id: int | None = None) -> None:
        super().__init__(message)
        self.result = result
        self.run_id = run_id


class PartialFailure(Exception):
    """The job did its work, but part of it failed (a delivery): report it, keep the result."""

    def __init__(self, message: str, result: Any) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class JobContext:
    ws: Workspace
    conn: sqlite3.Connection
    job: str
    period: str | None
    run_id: int
    now: datetime
    origin: str

    def checkpoint(self, name: str) -> None:
        checkpoint(self.ws, name)


def checkpoint(ws: Workspace, name: str) -> None:
    """A named point in a job where a crash test can freeze the process (then kill -9 it).

    Does nothing unless $SUPERVISE_TEST_PAUSE_AT names this point.
    """
    if os.environ.get(PAUSE_ENV) != name:
        return
    marker = ws.home / ".locks" / f"paused-{name}"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(os.getpid()), encoding="utf-8")
    while True:  # pragma: no cover - the test kills us here
        time.sleep(0.5)


def lock_wait(ws: Workspace) -> float:
    return ws.settings.jobs.lock_wait


def run_job(
    ws: Workspace,
    job: str,
    period: str | None,
    body: Callable[[JobContext], T],
    *,
    now: datetime,
    origin: str = "cli",
    clock: Callable[[], datetime] | None = None,
    wait: float | None = None,
    workspace_lock: bool = True,
    alert: bool = True,
) -> T:
    """Run `body` as one recorded, locked run of `job`. `clock` (if given) stamps the end."""
    wait = lock_wait(ws) if wait is None else wait
    try:
        with hold(ws.home, job, wait=wait, now=now):
            if workspace_lock:
                with hold(ws.home, WORKSPACE_LOCK, wait=wait, now=now):
                    return _recorded(ws, job, period, body, now=now, origin=origin, clock=clock, alert=alert)
            return _recorded(ws, job, period, body, now=now, origin=origin, clock=clock, alert=alert)
    except LockBusy as exc:
        log.warning("%s", exc)
        conn = ws.connect()
        try:
            runs.start_run(conn, job, period, now, origin=origin, state="skipped", error=str(exc))
        finally:
            conn.close()
        raise


def _recorded(
    ws: Workspace,
    job: str,
    period: str | None,
    body: Callable[[JobContext], T],
    *,
    now: datetime,
    origin: str,
    clock: Callable[[], datetime] | None,
    alert: bool,
) -> T:
    conn = ws.connect()
    try:
        for stale in runs.recover_stale(conn, now, job=job):
            log.warning("run %d of %s had been interrupted; recorded as an error", stale, job)
        run_id = runs.start_run(conn, job, period, now, origin=origin)
        what = f"{job} {period}" if period else job
        log.info("%s started (run %d, %s)", what, run_id, origin)
        ctx = JobContext(ws, conn, job, period, run_id, now, origin)
        end = clock or (lambda: now)
        try:
            result = body(ctx)
        except PartialFailure as exc:
            message = f"{what}: {exc}"
            runs.finish_run(conn, run_id, "error", end(), error=str(exc), detail=_detail(exc.result))
            _alert(ws, conn, job, period, message, now, alert)
            raise JobFailed(message, result=exc.result, run_id=run_id) from None
        except BaseException as exc:
            reason = _one_line(exc)
            runs.finish_run(conn, run_id, "error", end(), error=reason)
            if isinstance(exc, Exception):
                log.error("%s failed: %s", what, reason, exc_info=not isinstance(exc, SuperviseError))
                _alert(ws, conn, job, period, f"{what}: {reason}", now, alert)
                raise JobFailed(f"{what} 失败 / failed: {reason}", run_id=run_id) from exc
            raise
        runs.finish_run(conn, run_id, "success", end(), detail=_detail(result))
        log.info("%s finished (run %d)", what, run_id)
        return result
    finally:
        conn.close()


def record_failure(
    ws: Workspace, job: str, period: str | None, exc: BaseException, *, now: datetime, origin: str
) -> str:
    """A job that failed before `run_job` could record it (its settings, its schedule ...).

    Recorded as an error run like any other failure, and the administrator is told (or, if
    even the settings to mail them cannot be read, the log says so critically). Returns the
    one-line reason.
    """
    what = f"{job} {period}" if period else job
    reason = _one_line(exc)
    log.error("%s failed before it could start: %s", what, reason, exc_info=not isinstance(exc, SuperviseError))
    conn = ws.connect()
    try:
        runs.start_run(conn, job, period, now, origin=origin, state="error", error=reason)
        _alert(ws, conn, job, period, f"{what}: {reason}", now, True)
    finally:
        conn.close()
    return reason


def _detail(result: Any) -> dict[str, Any] | None:
    detail = getattr(result, "detail", None)
    return detail() if callable(detail) else None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if not isinstance(exc, SuperviseError):
        text = f"{type(exc).__name__}: {text}"
    return text


def _again(job: str, period: str | None) -> str:
    """The command that runs this job again."""
    if job.startswith("run_"):
        kind = job.removeprefix("run_")
        return f"run --{kind} {period}" if period else f"run --due {kind}"
    if job == "remind" and period:
        return f"remind --{'quarter' if 'Q' in period else 'month'} {period}"
    return job.replace("_", "-")


def _alert(
    ws: Workspace, conn: sqlite3.Connection, job: str, period: str | None, message: str, now: datetime, alert: bool
) -> None:
    if not alert:
        return
    from ..delivery import alert_admin, mail_dir

    what = f"{job} {period}" if period else job
    body = (
        f"supervise 任务失败 / a job failed\n\n"
        f"任务 job: {what}\n"
        f"时间 time: {runs.stamp(now)}\n"
        f"工作区 workspace: {ws.home}\n"
        f"原因 reason: {message}\n\n"
        f"运行记录 / run log: supervise --home {ws.home} runs\n"
        f"未发出的邮件 / unsent mail: {mail_dir(ws)}\n"
        f"处理后可重新运行 / after fixing the cause, run the job again by hand:\n"
        f"  supervise --home {ws.home} {_again(job, period)}\n"
    )
    try:
        alert_admin(ws, f"【supervise】任务失败：{what}", body, now=now, conn=conn)
    except Exception as exc:  # noqa: BLE001 - the alert must never hide the original failure
        log.critical("could not alert the administrator about %s: %s", what, exc)
