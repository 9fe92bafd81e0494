"""`supervise scheduler`: the schedule (jobs/schedule.toml) run by APScheduler, for systemd.

One long-running process: it catches up, at start, what was missed while the server was down
(`catch_up`, judged from the job_runs log), then fires each job on its cron expressions in
Asia/Shanghai. Jobs never overlap (max_instances=1 and the per-job lock files), a burst of
missed fires runs once (coalesce), and SIGTERM (or SIGINT) stops it after the running job
finishes. Logs go to stderr, which systemd hands to journald.
"""

from __future__ import annotations

import logging
import signal
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import FrameType, TracebackType
from typing import Any

from .errors import SuperviseError
from .jobs import tasks
from .jobs.locks import LockBusy
from .jobs.runner import JobFailed, PartialFailure, record_failure, run_job
from .jobs.schedule import Entry, Schedule, load_schedule
from .periods import TZ, Kind
from .store import runs
from .workspace import Workspace

log = logging.getLogger("supervise.scheduler")

RUN_KINDS: dict[str, Kind] = {"run_month": "month", "run_quarter": "quarter", "run_year": "year"}


def real_now() -> datetime:
    """The real clock: read here and in the CLI only."""
    return datetime.now(TZ)


def workspace_schedule(ws: Workspace) -> Schedule:
    """The workspace's jobs/schedule.toml; a workspace made before it was copied runs the shipped one."""
    path = ws.schedule_path if ws.schedule_path.exists() else None
    return load_schedule(ws.settings.section("deadlines"), path)


def misfire_grace(ws: Workspace) -> int:
    return ws.settings.jobs.misfire_grace


# ------------------------------------------------------------------ firing one job


def fire(
    home: Any,
    name: str,
    *,
    clock: Callable[[], datetime] = real_now,
    steps: tasks.Steps = tasks.DEFAULT_STEPS,
    origin: str = "scheduler",
) -> Any:
    """Run one scheduled job now, and never raise: the scheduler goes on with the next fire.

    A job's own failures are recorded and mailed by `run_job`. One that fails before it gets
    there (supervise.toml broken, the schedule or the due period unreadable) is recorded here
    as an error run and the administrator told, the same way.
    """
    ws = Workspace(home)  # fresh settings and registry on every fire: edits take effect
    now = clock()
    try:
        if name == "collect":
            return tasks.collect(ws, now, steps=steps, origin=origin, clock=clock)
        if name == "remind":
            return tasks.remind(ws, now, steps=steps, origin=origin, clock=clock)
        if name in RUN_KINDS:
            return tasks.run_due(ws, RUN_KINDS[name], now=now, steps=steps, origin=origin, clock=clock)
        if name == "catch_up":
            return catch_up(ws, now, steps=steps, clock=clock)
        raise SuperviseError(f"unknown job {name!r}")
    except (JobFailed, LockBusy) as exc:  # already recorded (and the administrator told)
        log.error("%s: %s", name, exc)
    except Exception as exc:  # noqa: BLE001 - the scheduler must live on; recorded and alerted
        try:
            record_failure(ws, name, None, exc, now=now, origin=origin)
        except Exception as again:  # noqa: BLE001 - not even the run log can be written
            log.critical("%s failed (%s) and the failure could not be recorded: %s", name, exc, again)
    return None


# ------------------------------------------------------------------ catch-up


def previous_fire(entry: Entry, now: datetime) -> datetime | None:
    """The last time at or before `now` that the entry's cron expressions fired."""
    trigger = entry.triggers()
    for span in (timedelta(days=2), timedelta(days=40), timedelta(days=400)):
        t = trigger.get_next_fire_time(None, now - span)
        last = None
        while t is not None and t <= now:
            last = t
            t = trigger.get_next_fire_time(t, t + timedelta(seconds=1))
        if last is not None:
            return last
    return None


@dataclass
class CatchUp:
    job: str
    period: str | None
    missed_at: str          # the fire that was missed
    state: str              # success | error | skipped
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class CatchUpResult:
    items: list[CatchUp]

    def detail(self) -> dict[str, Any]:
        return {"caught_up": [i.to_json() for i in self.items]}

    def to_json(self) -> dict[str, Any]:
        return self.detail()


def missed_jobs(ws: Workspace, now: datetime, schedule: Schedule | None = None) -> list[tuple[Entry, str | None, datetime]]:
    """Jobs whose latest scheduled fire has no record to show for it.

    A period run counts as done only with a success for the period that fire was for; collect
    and remind count as done with any run since the fire. Fires before the workspace's first
    recorded run are not "missed": nothing was running yet.
    """
    schedule = schedule or workspace_schedule(ws)
    deadlines = ws.settings.deadlines
    conn = ws.connect()
    try:
        first = runs.first_run_at(conn)
        out: list[tuple[Entry, str | None, datetime]] = []
        for entry in schedule:
            if entry.name == "catch_up":
                continue
            prev = previous_fire(entry, now)
            if prev is None or first is None or runs.stamp(prev) < first:
                continue
            if entry.name in RUN_KINDS:
                period = str(deadlines.due_now(RUN_KINDS[entry.name], prev))
                if runs.last_run(conn, entry.name, period=period, states=("success",)) is None:
                    out.append((entry, period, prev))
            elif runs.last_run(conn, entry.name, since=prev) is None:
                out.append((entry, None, prev))
        return out
    finally:
        conn.close()


def catch_up(
    ws: Workspace,
    now: datetime,
    *,
    schedule: Schedule | None = None,
    steps: tasks.Steps = tasks.DEFAULT_STEPS,
    clock: Callable[[], datetime] | None = None,
) -> CatchUpResult:
    """Run now what the schedule should have run while the server was down (or what failed)."""
    from .periods import parse_period

    def body(ctx: Any) -> CatchUpResult:
        items: list[CatchUp] = []
        for entry, period, missed in missed_jobs(ws, now, schedule):
            log.warning("catching up %s%s missed at %s", entry.name, f" {period}" if period else "",
                        runs.stamp(missed))
            item = CatchUp(entry.name, period, runs.stamp(missed), "success")
            try:
                if entry.name == "collect":
                    tasks.collect(ws, now, steps=steps, origin="catch_up", clock=clock)
                elif entry.name == "remind":
                    tasks.remind(ws, now, steps=steps, origin="catch_up", clock=clock)
                elif period is not None:
                    tasks.run_period(ws, parse_period(period), now=now, steps=steps, origin="catch_up", clock=clock)
            except LockBusy as exc:
                item.state, item.error = "skipped", str(exc)
            except JobFailed as exc:
                item.state, item.error = "error", str(exc)
            items.append(item)
        result = CatchUpResult(items)
        failed = [i for i in items if i.state == "error"]
        if failed:
            raise PartialFailure("; ".join(i.error or i.job for i in failed), result)
        return result

    # Each caught-up job takes its own locks, records itself and alerts on failure.
    return run_job(ws, "catch_up", None, body, now=now, origin="catch_up", clock=clock,
                   workspace_lock=False, alert=False)


# ------------------------------------------------------------------ the scheduler


def build_scheduler(
    ws: Workspace,
    *,
    scheduler: Any = None,
    schedule: Schedule | None = None,
    clock: Callable[[], datetime] = real_now,
    steps: tasks.Steps = tasks.DEFAULT_STEPS,
    triggers: dict[str, Any] | None = None,
    catch_up_at_start: bool = True,
) -> Any:
    """An APScheduler scheduler with one job per schedule entry (not started).

    `scheduler` defaults to a BackgroundScheduler (its own thread: `serve` keeps the main thread
    for the stop signals); `triggers` replaces entries' cron triggers (tests use short intervals).
    """
    from apscheduler.schedulers.background import BackgroundScheduler

    schedule = schedule or workspace_schedule(ws)
    grace = misfire_grace(ws)
    defaults = {"coalesce": True, "max_instances": 1, "misfire_grace_time": grace}
    if scheduler is None:
        scheduler = BackgroundScheduler(timezone=TZ, job_defaults=defaults)
    triggers = triggers or {}
    for entry in schedule:
        scheduler.add_job(
            fire,
            trigger=triggers.get(entry.name) or entry.triggers(),
            args=[ws.home, entry.name],
            kwargs={"clock": clock, "steps": steps},
            id=entry.name,
            name=f"{entry.name}: {entry.description}",
            replace_existing=True,
            **defaults,
        )
    if catch_up_at_start:
        scheduler.add_job(
            fire,
            trigger="date",
            run_date=clock(),
            args=[ws.home, "catch_up"],
            kwargs={"clock": clock, "steps": steps, "origin": "catch_up"},
            id="catch_up_at_start",
            name="catch up what was missed while the scheduler was not running",
            **defaults,
        )
    return scheduler


class StopSignals:
    """SIGTERM and SIGINT as a byte on a socket, so the main thread waits for them in ordinary code.

    A Python signal handler runs in the main thread between two bytecodes, possibly while that
    thread holds a lock (APScheduler's, logging's, even the one inside `threading.Event.wait`):
    a handler that shuts the scheduler down, logs or sets an Event the main thread waits on can
    deadlock. Here the handler does nothing; the C-level handler writes the signal number to
    the wakeup fd (`signal.set_wakeup_fd`) and `wait` reads it.
    """

    def __init__(self, signums: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGINT)) -> None:
        self.signums = tuple(signums)
        self._reader, self._writer = socket.socketpair()
        self._writer.setblocking(False)  # set_wakeup_fd requires it: a signal never blocks
        self._previous_fd = -1
        self._previous: dict[signal.Signals, Any] = {}

    def __enter__(self) -> StopSignals:
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        for signum in self.signums:
            self._previous[signum] = signal.signal(signum, _noted)
        return self

    def wait(self) -> signal.Signals:
        """Block until one of the signals arrives (or has arrived since `__enter__`); which one."""
        wanted = {int(s) for s in self.signums}
        while True:
            data = self._reader.recv(1)  # retried after each signal's (empty) handler, PEP 475
            if data and data[0] in wanted:
                return signal.Signals(data[0])

    def __exit__(self, _type: type[BaseException] | None, _exc: BaseException | None,
                 _tb: TracebackType | None) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(self._previous_fd)
        self._reader.close()
        self._writer.close()


def _noted(_signum: int, _frame: FrameType | None) -> None:
    """Nothing to do: the signal number is already on the wakeup socket (see StopSignals)."""


def serve(
    ws: Workspace,
    *,
    clock: Callable[[], datetime] = real_now,
    schedule: Schedule | None = None,
    steps: tasks.Steps = tasks.DEFAULT_STEPS,
    triggers: dict[str, Any] | None = None,
) -> None:
    """Run the scheduler until SIGTERM or SIGINT, then stop after the running job finishes.

    The jobs run in APScheduler's threads; the main thread only waits for the signal and then
    shuts the scheduler down, outside any signal handler. A second signal changes nothing (a job
    that will not finish is ended by systemd's TimeoutStopSec). `schedule`, `steps` and
    `triggers` are for tests, as in `build_scheduler`.
    """
    with StopSignals() as stop:  # from the start: a signal during start-up is not lost
        conn = ws.connect()
        try:
            for stale in runs.recover_stale(conn, clock()):
                log.warning("run %d was left running by a process that is gone; recorded as an error", stale)
        finally:
            conn.close()
        scheduler = build_scheduler(ws, schedule=schedule, clock=clock, steps=steps, triggers=triggers)

        def started(_event: Any) -> None:
            for job in scheduler.get_jobs():
                log.info("next %s at %s", job.id, job.next_run_time)
            log.info("scheduler started for %s (Asia/Shanghai)", ws.home)

        from apscheduler.events import EVENT_SCHEDULER_STARTED

        scheduler.add_listener(started, EVENT_SCHEDULER_STARTED)
        scheduler.start()
        try:
            received = stop.wait()
            log.info("%s received: stopping after the running job", received.name)
        finally:
            # No fire can start after this (the scheduler's thread takes the same lock to submit
            # one), so shutdown waits only for the job already running, which records its run.
            scheduler.remove_all_jobs()
            scheduler.shutdown(wait=True)
    log.info("scheduler stopped")
