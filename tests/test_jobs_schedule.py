"""The schedule declared once: cron lines, systemd timers, the APScheduler process, catch-up."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from click.testing import CliRunner

from supervise.cli import cli
from supervise.jobs import Schedule, ScheduleError, load_schedule
from supervise.jobs.schedule import systemd_units
from supervise.periods import TZ
from supervise.scheduler import build_scheduler, catch_up, missed_jobs, previous_fire
from supervise.store import runs
from supervise.workspace import Settings, Workspace, init_workspace

from .conftest import require_peer
from .smtp_server import ADMIN, SmtpServer, configure, running_smtp
from .test_jobs_support import FAKE_STEPS, fake_status_from

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_HOME = "/srv/supervise"
SAMPLE_EXE = "/usr/local/bin/supervise"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def deadlines(**over: object) -> dict[str, object]:
    d = dict(Settings().section("deadlines"))
    d.update(over)
    return d


def test_default_schedule_follows_the_deadlines() -> None:
    s = load_schedule(deadlines())
    assert {e.name: e.cron for e in s} == {
        "collect": ("5 * * * *",),
        # monthly data due the 5th: remind on the 3rd (2 days before) and on the 5th, the deadline
        # day; quarterly data due the 10th of Jan/Apr/Jul/Oct: remind on the 8th and the 10th.
        # Never after: the run the next morning publishes 漏报.
        "remind": ("0 9 3,5 * *", "0 9 8,10 1,4,7,10 *"),
        "run_month": ("0 8 6 * *",),
        "run_quarter": ("30 8 11 1,4,7,10 *",),
        "run_year": ("0 10 11 1 *",),
        "catch_up": ("15 7 * * *",),
    }


def test_moving_a_deadline_moves_its_jobs() -> None:
    s = load_schedule(deadlines(monthly_day=10, quarterly_day=15, remind_days_before=[3, 1, 0], remind_days_after=[]))
    assert s.entry("run_month").cron == ("0 8 11 * *",)
    assert s.entry("run_quarter").cron == ("30 8 16 1,4,7,10 *",)
    assert s.entry("remind").cron == ("0 9 7,9,10 * *", "0 9 12,14,15 1,4,7,10 *")


def test_every_default_reminder_comes_before_the_run_that_publishes_missing() -> None:
    s = load_schedule(deadlines())
    remind, run_month, run_quarter = (s.entry(n).triggers() for n in ("remind", "run_month", "run_quarter"))

    def fires(trigger: object, start: str, end: str) -> list[datetime]:
        out, t = [], at(start)
        while (t := trigger.get_next_fire_time(None, t + timedelta(seconds=1))) < at(end):  # type: ignore[attr-defined]
            out.append(t)
        return out

    # April 2025: March data due the 5th, Q1 updates due the 10th.
    assert fires(remind, "2025-04-01 00:00", "2025-05-01 00:00") == [
        at("2025-04-03 09:00"), at("2025-04-05 09:00"), at("2025-04-08 09:00"), at("2025-04-10 09:00")]
    assert fires(run_month, "2025-04-01 00:00", "2025-05-01 00:00") == [at("2025-04-06 08:00")]
    assert fires(run_quarter, "2025-04-01 00:00", "2025-05-01 00:00") == [at("2025-04-11 08:30")]


@pytest.mark.parametrize(("over", "day", "run_day"), [
    ({"remind_days_after": [1]}, 6, 6),
    ({"monthly_day": 10, "quarterly_day": 15, "remind_days_before": [1], "remind_days_after": [2]}, 12, 11),
])
def test_a_reminder_after_the_run_publishes_missing_is_left_out(over: dict[str, object], day: int, run_day: int,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """A workspace set up before reminders moved (remind_days_after = [1]) keeps running: the
    reminder that would come after the run's 漏报 is left out, and the log says so."""
    with caplog.at_level(logging.WARNING, logger="supervise.jobs"):
        s = load_schedule(deadlines(**over))
    assert all(f" {day} " not in f" {c.split()[2].replace(',', ' ')} " for c in s.entry("remind").cron)
    assert f"催报日 {day} 日不早于通报运行日 {run_day} 日" in caplog.text


def test_no_reminder_days_means_no_reminder_lines() -> None:
    s = load_schedule(deadlines(remind_days_before=[], remind_days_after=[]))
    assert s.entry("remind").cron == ()


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"remind_days_before": [5]}, "would fall on day 0"),
        ({"monthly_day": 28}, "monthly_day = 28"),
        ({"quarterly_day": 3, "remind_days_before": [3]}, "a reminder for quarterly data would fall on day 0"),
    ],
)
def test_days_that_do_not_exist_in_every_month_are_refused(over: dict[str, object], message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        load_schedule(deadlines(**over))


def test_crontab_example_is_the_output_of_supervise_crontab() -> None:
    result = CliRunner().invoke(cli, ["--home", SAMPLE_HOME, "crontab", "--executable", SAMPLE_EXE])
    assert result.exit_code == 0, result.output
    assert result.output == (ROOT / "crontab.example").read_text(encoding="utf-8")


def test_every_cron_line_has_five_valid_fields_and_a_real_command() -> None:
    lines = [
        line for line in (ROOT / "crontab.example").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#") and "=" not in line.split()[0]
    ]
    assert len(lines) == 7
    assert "CRON_TZ=Asia/Shanghai" in (ROOT / "crontab.example").read_text(encoding="utf-8").splitlines()
    for line in lines:
        fields = line.split()
        CronTrigger.from_crontab(" ".join(fields[:5]), timezone=TZ)  # raises on a bad field
        assert fields[5:8] == [SAMPLE_EXE, "--home", SAMPLE_HOME]
        args = fields[8:]
        command = cli.get_command(None, args[0])  # type: ignore[arg-type]
        assert command is not None, line
        command.make_context(args[0], args[1:])  # its options parse


def test_deploy_timers_are_the_schedule() -> None:
    units = systemd_units(load_schedule(deadlines()), home=Path(SAMPLE_HOME), executable=SAMPLE_EXE)
    for name, text in units.items():
        assert (ROOT / "deploy" / name).read_text(encoding="utf-8") == text, name
    assert (ROOT / "deploy" / "supervise-scheduler.service").exists()


def test_deploy_timers_are_valid_calendar_specs_for_systemd() -> None:
    require_peer("systemd-analyze", shutil.which("systemd-analyze"))
    units = systemd_units(load_schedule(deadlines()), home=Path(SAMPLE_HOME), executable=SAMPLE_EXE)
    specs = [line.removeprefix("OnCalendar=") for n, t in units.items() if n.endswith(".timer")
             for line in t.splitlines() if line.startswith("OnCalendar=")]
    assert specs
    for spec in specs:
        done = subprocess.run(["systemd-analyze", "calendar", spec], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr


def test_scheduler_jobs_fire_at_the_declared_times(ws: Workspace) -> None:
    scheduler = build_scheduler(ws, scheduler=BlockingScheduler(timezone=TZ), catch_up_at_start=False)
    jobs = {j.id: j for j in scheduler.get_jobs()}
    assert set(jobs) == {"collect", "remind", "run_month", "run_quarter", "run_year", "catch_up"}
    for job in jobs.values():
        assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 3600)
    now = at("2025-04-05 12:00")
    nxt = {name: job.trigger.get_next_fire_time(None, now) for name, job in jobs.items()}
    assert nxt["collect"] == at("2025-04-05 12:05")
    assert nxt["remind"] == at("2025-04-08 09:00")  # the 5th's (deadline day) passed; none on the 6th
    assert nxt["run_month"] == at("2025-04-06 08:00")
    assert nxt["run_quarter"] == at("2025-04-11 08:30")
    assert nxt["run_year"] == at("2026-01-11 10:00")
    assert nxt["remind"].tzinfo is not None and nxt["remind"].utcoffset().total_seconds() == 8 * 3600


def test_real_scheduler_runs_a_job_with_the_injected_clock(ws: Workspace) -> None:
    clock_time = at("2025-04-05 12:05")
    schedule = Schedule((load_schedule(deadlines()).entry("collect"),))
    scheduler = build_scheduler(
        ws, scheduler=BackgroundScheduler(timezone=TZ), schedule=schedule, clock=lambda: clock_time,
        steps=FAKE_STEPS, triggers={"collect": IntervalTrigger(seconds=0.2)}, catch_up_at_start=False,
    )
    scheduler.start()
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            conn = ws.connect()
            done = runs.recent_runs(conn, job="collect")
            conn.close()
            if len(done) >= 2 and all(r.state != "running" for r in done):
                break
            time.sleep(0.05)
    finally:
        scheduler.shutdown(wait=True)
    assert len(done) >= 2
    assert {(r.state, r.origin, r.started_at) for r in done} == {("success", "scheduler", "2025-04-05T12:05:00+08:00")}


def _record(ws: Workspace, job: str, period: str | None, when: str, state: str = "success") -> None:
    conn = ws.connect()
    run_id = runs.start_run(conn, job, period, at(when), origin="scheduler", pid=1)
    runs.finish_run(conn, run_id, state, at(when))
    conn.close()


def test_catch_up_after_an_outage_runs_the_latest_missed_period(ws: Workspace) -> None:
    # The server ran until 6 February and came back on 7 April at 10:00.
    _record(ws, "run_month", "2025-01", "2025-02-06 08:00")
    _record(ws, "collect", None, "2025-02-06 08:05")
    now = at("2025-04-07 10:00")
    missed = {(e.name, period) for e, period, _ in missed_jobs(ws, now)}
    # run_quarter / run_year last fired on 11 January, before anything ran here: not "missed".
    assert missed == {("run_month", "2025-03"), ("collect", None), ("remind", None)}

    steps = FAKE_STEPS.__class__(FAKE_STEPS.collect_inbox, FAKE_STEPS.run_assessments,
                                 FAKE_STEPS.render_bulletins, fake_status_from({}))
    result = catch_up(ws, now, steps=steps)
    assert {(i.job, i.period, i.state) for i in result.items} == {
        ("run_month", "2025-03", "success"), ("collect", None, "success"), ("remind", None, "success"),
    }
    assert (ws.report_dir("2025-03") / "bulletin-2025-03.json").exists()
    conn = ws.connect()
    made = runs.last_run(conn, "run_month", period="2025-03")
    conn.close()
    assert (made.state, made.origin) == ("success", "catch_up")
    assert missed_jobs(ws, now) == []
    assert catch_up(ws, at("2025-04-07 10:04"), steps=steps).items == []
    # An hour later the hourly collect is due again, and only that.
    assert [i.job for i in catch_up(ws, at("2025-04-07 11:06"), steps=steps).items] == ["collect"]


def test_a_failed_period_run_is_retried_by_the_next_catch_up(ws: Workspace) -> None:
    _record(ws, "run_month", "2025-02", "2025-03-06 08:00")
    _record(ws, "run_month", "2025-03", "2025-04-06 08:00", state="error")
    missed = [(e.name, p) for e, p, _ in missed_jobs(ws, at("2025-04-06 09:01"))]
    assert ("run_month", "2025-03") in missed


def test_previous_fire_of_combined_triggers() -> None:
    remind = load_schedule(deadlines()).entry("remind")
    assert previous_fire(remind, at("2025-04-07 10:00")) == at("2025-04-05 09:00")
    assert previous_fire(remind, at("2025-04-09 10:00")) == at("2025-04-08 09:00")


def _signal_scheduler(
    argv: list[str], log: Path, signum: signal.Signals, *, ready: str = "scheduler started",
    start_timeout: float = 60, stop_timeout: float = 60,
) -> str:
    """Start a scheduler process, send it `signum` as soon as `ready` is in its log, and say how
    it ended: "clean", else what went wrong, so a loop can count the failures."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + start_timeout  # generous: a loaded CI machine starts Python slowly
        while ready not in log.read_text(encoding="utf-8", errors="replace"):
            if proc.poll() is not None:
                return f"exit status {proc.returncode} before {ready!r}"
            if time.monotonic() > deadline:
                return f"no {ready!r} within {start_timeout} s"
            time.sleep(0.01)
        proc.send_signal(signum)
        try:
            code = proc.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            return f"hung: still running {stop_timeout} s after {signum.name}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text(encoding="utf-8")
    if code != 0:
        return f"exit status {code}"
    if f"{signum.name} received" not in text or "scheduler stopped" not in text:
        return "stop not logged"
    if "Traceback" in text:
        return "traceback in the log"
    return "clean"


def test_scheduler_process_stops_cleanly_on_sigterm(ws: Workspace, tmp_path: Path) -> None:
    log = tmp_path / "scheduler.log"
    argv = [sys.executable, "-m", "supervise", "--home", str(ws.home), "scheduler"]
    assert _signal_scheduler(argv, log, signal.SIGTERM) == "clean", log.read_text(encoding="utf-8")


def test_scheduler_process_stops_the_same_way_on_sigint(ws: Workspace, tmp_path: Path) -> None:
    log = tmp_path / "scheduler.log"
    argv = [sys.executable, "-m", "supervise", "--home", str(ws.home), "scheduler"]
    assert _signal_scheduler(argv, log, signal.SIGINT) == "clean", log.read_text(encoding="utf-8")


SLOW_COLLECT = 0.15  # seconds: long enough that the stop signal lands while a collect is running

# The scheduler as `supervise scheduler` runs it, but with only `collect`, fired every 20 ms and
# taking 150 ms (the refusals while one runs, "maximum number of running instances", not logged).
FAST_SCHEDULER = f"""
import dataclasses, logging, sys, time
from apscheduler.triggers.interval import IntervalTrigger
from supervise.jobs import Schedule, load_schedule
from supervise.scheduler import serve
from supervise.workspace import Settings, Workspace
from tests.test_jobs_support import FAKE_STEPS, fake_collect

def slow_collect(ws, *, now):
    time.sleep({SLOW_COLLECT})
    return fake_collect(ws, now=now)

logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
collect = load_schedule(Settings().section("deadlines")).entry("collect")
serve(Workspace(sys.argv[1]), schedule=Schedule((collect,)),
      steps=dataclasses.replace(FAKE_STEPS, collect_inbox=slow_collect),
      triggers={{"collect": IntervalTrigger(seconds=0.02)}})
"""


@pytest.fixture
def cpu_load() -> Iterator[None]:
    """Two processes spinning on the CPU for the test's duration: a loaded CI machine."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        yield
    finally:
        for b in burners:
            b.kill()
            b.wait()


def test_scheduler_stops_cleanly_on_sigterm_every_time_under_load(cpu_load: None, tmp_path: Path) -> None:
    """20 starts, each stopped by SIGTERM as a job starts: every one exits 0 with the job recorded.

    A stop done inside the signal handler hung when the signal came while the main thread held
    APScheduler's executor lock (submitting a job, starting its thread); on a busy machine that
    is often just when the first jobs start.
    """
    outcomes = []
    for i in range(20):
        home = tmp_path / f"home{i}"
        ws = init_workspace(home)
        log = tmp_path / f"scheduler{i}.log"
        outcome = _signal_scheduler(
            [sys.executable, "-c", FAST_SCHEDULER, str(home)], log, signal.SIGTERM,
            ready='Running job "collect', start_timeout=30, stop_timeout=5,
        )
        if outcome == "clean":
            conn = ws.connect()
            done = runs.recent_runs(conn, limit=1000)
            conn.close()
            states = {(r.job, r.state) for r in done}
            if ("catch_up", "success") not in states or ("collect", "success") not in states:
                outcome = f"runs not recorded: {sorted(states)}"
            elif any(r.state != "success" for r in done):
                outcome = f"a run not finished cleanly: {sorted(states)}"
        outcomes.append(outcome if outcome == "clean" else f"{outcome} (see {log})")
    assert outcomes == ["clean"] * 20, [f"run {i}: {o}" for i, o in enumerate(outcomes) if o != "clean"]


def test_printed_cron_lines_run_under_sh_without_supervise_on_path(ws: Workspace) -> None:
    """What cron runs: the command part of a line, by /bin/sh, with cron's bare PATH."""
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", "HOME": str(ws.home)}
    printed = subprocess.run(
        [sys.executable, "-m", "supervise", "--home", str(ws.home), "crontab"],
        capture_output=True, text=True, env=env, check=True,
    ).stdout
    collect = next(line for line in printed.splitlines() if line.endswith(" collect"))
    command = collect.split(None, 5)[5]  # after the five time fields
    done = subprocess.run(["/bin/sh", "-c", command], check=False, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    yield from running_smtp()


def test_a_job_failing_before_it_starts_is_recorded_and_the_administrator_told(
    ws: Workspace, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    from supervise.scheduler import fire

    now = at("2025-04-06 08:00")
    # Readable settings, but a job the scheduler cannot start: the administrator is mailed.
    configure(ws, smtp)
    assert fire(ws.home, "run_weekly", clock=lambda: now, steps=FAKE_STEPS) is None
    conn = ws.connect()
    [record] = runs.recent_runs(conn, job="run_weekly")
    conn.close()
    assert (record.state, record.origin, record.started_at, record.ended_at) == (
        "error", "scheduler", "2025-04-06T08:00:00+08:00", "2025-04-06T08:00:00+08:00")
    assert "unknown job" in record.error
    [alert] = smtp.to(ADMIN)
    assert "任务失败：run_weekly" in alert.message["Subject"]
    assert "unknown job" in alert.message.get_content()

    # supervise.toml broken: no way to mail anyone, so a run record and a critical log line.
    ws.settings_path.write_text("[jobs]\nlock_wait_seconds = \n", encoding="utf-8")
    with caplog.at_level(logging.CRITICAL):
        assert fire(ws.home, "collect", clock=lambda: now, steps=FAKE_STEPS) is None
    conn = ws.connect()
    [record] = runs.recent_runs(conn, job="collect")
    conn.close()
    assert record.state == "error" and "not valid TOML" in record.error
    assert any(r.levelno == logging.CRITICAL and "collect" in r.getMessage() for r in caplog.records)
    assert len(smtp.received) == 1
