"""`supervise ingest` takes the locks of the scheduled jobs: never two readers of one inbox."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from supervise.jobs.locks import WORKSPACE_LOCK, hold
from supervise.periods import Month
from supervise.workspace import Workspace

from .intake_corpus import filled

MARCH = Month(2025, 3)
COUNTIES = ["130981", "130982", "130983", "130984", "130926", "130927"]


def _lock_wait(ws: Workspace, seconds: float) -> None:
    text = ws.settings_path.read_text(encoding="utf-8")
    assert "lock_wait_seconds = 300.0" in text
    ws.settings_path.write_text(text.replace("lock_wait_seconds = 300.0", f"lock_wait_seconds = {seconds}"),
                                encoding="utf-8")


def _supervise(ws: Workspace, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "supervise", "--home", str(ws.home), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _fill_inbox(ws: Workspace, tmp_path: Path, counties: list[str]) -> list[Path]:
    out = []
    for county in counties:
        src = filled(ws, county, MARCH, tmp_path / f"{county}.xlsx")
        target = ws.inbox_dir / county / f"{county}.xlsx"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        out.append(target)
    return out


def _stored(ws: Workspace) -> list[str]:
    conn = sqlite3.connect(ws.db_path)
    try:
        return [r[0] for r in conn.execute("SELECT county_code FROM submissions ORDER BY county_code")]
    finally:
        conn.close()


def test_ingest_waits_for_a_job_holding_the_workspace(ws: Workspace, tmp_path: Path) -> None:
    _lock_wait(ws, 0.3)
    [inbox_file] = _fill_inbox(ws, tmp_path, ["130983"])
    loose = filled(ws, "130982", MARCH, tmp_path / "loose.xlsx")
    with hold(ws.home, WORKSPACE_LOCK):     # a collect or a period run is writing
        for args in (["ingest", "--json"], ["ingest", str(loose), "--county", "130982", "--json"]):
            proc = _supervise(ws, *args)
            out, err = proc.communicate(timeout=60)
            assert proc.returncode != 0, out
            assert "workspace" in err
        # A dry run stores nothing and does not wait.
        proc = _supervise(ws, "ingest", "--dry-run", "--json")
        out, _err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and json.loads(out)["summary"]["dry_run"] is True
    assert inbox_file.exists() and _stored(ws) == []
    proc = _supervise(ws, "ingest", "--json", "--received-at", "2025-04-03T10:00:00+08:00")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert not inbox_file.exists() and _stored(ws) == ["130983"]


def test_ingest_waits_for_the_collect_job(ws: Workspace, tmp_path: Path) -> None:
    _lock_wait(ws, 0.3)
    _fill_inbox(ws, tmp_path, ["130983"])
    with hold(ws.home, "collect"):
        proc = _supervise(ws, "ingest", "--json")
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "collect" in err
    assert _stored(ws) == []


def test_two_ingests_of_the_inbox_store_each_file_once(ws: Workspace, tmp_path: Path) -> None:
    _lock_wait(ws, 60)
    _fill_inbox(ws, tmp_path, COUNTIES)
    procs = [_supervise(ws, "ingest", "--json", "--received-at", "2025-04-03T10:00:00+08:00")
             for _ in range(2)]
    docs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        docs.append(json.loads(out))
    assert sorted(len(d["files"]) for d in docs) == [0, len(COUNTIES)]
    assert _stored(ws) == sorted(COUNTIES)
    assert not any(ws.inbox_dir.rglob("*.xlsx"))
