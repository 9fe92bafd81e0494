"""Two runs of the same job never overlap; a killed run leaves no lock and no `running` record."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervise.jobs import LockBusy, run_period
from supervise.jobs.locks import hold
from supervise.periods import Month
from supervise.store import runs
from supervise.workspace import Workspace

from .smtp_server import SmtpServer, configure, running_smtp
from .test_jobs_support import FAKE_STEPS, NOW


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    yield from running_smtp()


ROOT = Path(__file__).resolve().parents[1]


def spawn(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    full = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + str(ROOT), **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.test_jobs_support", "run", str(home), *args],
        cwd=ROOT, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"process ended early ({proc.returncode}): {proc.stderr.read()}")  # type: ignore[union-attr]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_lock_is_exclusive_and_says_who_holds_it(tmp_path: Path) -> None:
    with hold(tmp_path, "run_month", now=NOW):  # the job's time, not the wall clock
        busy = rf"run_month is already running \(pid {os.getpid()} since 2025-04-06T08:00:00\+08:00\)"
        with pytest.raises(LockBusy, match=busy), hold(tmp_path, "run_month", wait=0.1):
            pass
    with hold(tmp_path, "run_month"):  # without a time: the pid alone
        with pytest.raises(LockBusy, match=rf"\(pid {os.getpid()}\)"), hold(tmp_path, "run_month", wait=0.1):
            pass
        with hold(tmp_path, "collect"):  # other jobs have their own lock
            pass
    with hold(tmp_path, "run_month"):  # released on exit
        pass


def test_second_runner_exits_with_a_message_or_waits_for_the_first(ws: Workspace, smtp: SmtpServer) -> None:
    ws = configure(ws, smtp)
    first = spawn(ws.home, "2025-03", env={"SUPERVISE_TEST_PAUSE_AT": "assessed"})
    try:
        wait_for(ws.home / ".locks" / "paused-assessed", first)

        # A second run of the same job, not willing to wait: refused, non-zero, one clear line.
        second = spawn(ws.home, "2025-03")
        _out, err = second.communicate(timeout=20)
        assert second.returncode == 1
        assert f"run_month is already running (pid {first.pid} since" in err

        # A third is willing to wait; the first is killed (-9) while it waits: the kernel
        # releases the dead process's lock, and the third completes the run.
        third = spawn(ws.home, "2025-03", env={"LOCK_WAIT": "20"})
        time.sleep(0.3)
        assert third.poll() is None  # still waiting
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=10)
        _out, err = third.communicate(timeout=30)
        assert third.returncode == 0, err
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()

    conn = ws.connect()
    history = [(r.state, r.pid, r.error or "") for r in reversed(runs.recent_runs(conn, job="run_month"))]
    conn.close()
    # killed run -> error (interrupted), refused run -> skipped, waiting run -> success
    assert [s for s, _, _ in history] == ["error", "skipped", "success"]
    assert history[0][1] == first.pid and "interrupted" in history[0][2]
    assert "already running" in history[1][2]
    assert len(smtp.to("chief@bureau.example")) == 1


def test_running_records_of_dead_processes_become_errors(ws: Workspace) -> None:
    conn = ws.connect()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    gone = runs.start_run(conn, "collect", None, NOW, pid=int(dead.stdout))
    alive = runs.start_run(conn, "remind", None, NOW, pid=os.getpid())
    assert runs.recover_stale(conn, NOW) == [gone]
    assert runs.get_run(conn, gone).state == "error"
    assert runs.get_run(conn, alive).state == "running"
    conn.close()


def test_a_run_holding_the_workspace_lock_blocks_other_writers(ws: Workspace, smtp: SmtpServer) -> None:
    ws = configure(ws, smtp, recipients=[])
    with hold(ws.home, "workspace"), pytest.raises(LockBusy, match="workspace"):
        run_period(ws, Month(2025, 3), now=NOW, steps=FAKE_STEPS, wait=0.1)
    assert run_period(ws, Month(2025, 3), now=NOW, steps=FAKE_STEPS).content_hash
