"""Jobs: what runs by itself (collect, remind, the period runs), their schedule and records.

    jobs.collect(ws, now)                      ingest the inbox, retry the outbox
    jobs.remind(ws, now, period=None)          催报 to counties that have not reported
    jobs.run_period(ws, period, now=..., deliver=True, resend=False)
    jobs.run_due(ws, "month", now=...)         the period whose deadline passed last

The schedule is declared once in `schedule.toml` (see `schedule.load_schedule`). Each job
takes `now`; only the CLI and the scheduler read the real clock.
"""

from __future__ import annotations

from .locks import LockBusy
from .runner import JobFailed, run_job
from .schedule import JOB_NAMES, Entry, Schedule, ScheduleError, load_schedule
from .tasks import (
    CollectResult,
    RemindResult,
    RunResult,
    Steps,
    collect,
    job_name,
    remind,
    run_due,
    run_period,
)

__all__ = [
    "JOB_NAMES",
    "CollectResult",
    "Entry",
    "JobFailed",
    "LockBusy",
    "RemindResult",
    "RunResult",
    "Schedule",
    "ScheduleError",
    "Steps",
    "collect",
    "job_name",
    "load_schedule",
    "remind",
    "run_due",
    "run_job",
    "run_period",
]
