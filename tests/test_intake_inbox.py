"""The inbox as a server sees it: files arrive in an order, are written while we look, are
huge, are swapped for links, are in two encodings at once, or outlive a collect killed mid-way.
Each case: nothing is lost, nothing is stored twice, and what is rejected says where and why."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from supervise.errors import DatabaseFault
from supervise.intake import IntakeError, collect_inbox, ingest_files
from supervise.intake import inbox as inbox_module
from supervise.intake import ingest as ingest_module
from supervise.intake.problems import FileRejected
from supervise.intake.readers import Limits, read_submission
from supervise.periods import TZ, Month
from supervise.workspace import Workspace

from .intake_corpus import HUANGHUA, RENQIU, at, filled, monthly_values

ROOT = Path(__file__).resolve().parents[1]
MARCH = Month(2025, 3)


def current_revenue(ws: Workspace, county: str, cluster: str) -> tuple[float, str]:
    conn = ws.connect()
    row = conn.execute(
        "SELECT v.value, s.received_at FROM submissions s JOIN submission_values v ON v.submission_id = s.id "
        "WHERE s.county_code = ? AND s.period = '2025-03' AND s.state = 'current' AND v.cluster_code = ? "
        "AND v.indicator = 'revenue_ytd'", (county, cluster)).fetchone()
    conn.close()
    return row[0], row[1]


def versions(ws: Workspace) -> list[tuple[str, str, str]]:
    conn = ws.connect()
    rows = conn.execute("SELECT file_name, state, received_at FROM submissions ORDER BY id").fetchall()
    conn.close()
    return [tuple(r) for r in rows]


def set_mtime(path: Path, when: str) -> None:
    t = at(when).timestamp()
    os.utime(path, (t, t))


# ------------------------------------------------------------------ 2. order of arrival


def test_a_correction_that_sorts_first_by_name_is_still_the_version_in_force(ws: Workspace, tmp_path: Path) -> None:
    box = ws.inbox_dir / HUANGHUA
    box.mkdir(parents=True)
    first = filled(ws, HUANGHUA, MARCH, box / "黄骅-3月.xlsx", CZ01__revenue_ytd=1000)
    fixed = filled(ws, HUANGHUA, MARCH, box / "黄骅-3月(修正).xlsx", CZ01__revenue_ytd=1200)
    assert sorted([first.name, fixed.name]) == [fixed.name, first.name]   # "(" sorts before "."
    set_mtime(first, "2025-04-03 09:10")
    set_mtime(fixed, "2025-04-03 09:40")

    collect_inbox(ws, now=at("2025-04-03 10:00"))

    assert current_revenue(ws, HUANGHUA, "CZ01")[0] == 1200
    assert [(n, s) for n, s, _r in versions(ws)] == [("黄骅-3月.xlsx", "superseded"), ("黄骅-3月(修正).xlsx", "current")]


def test_a_file_copied_with_an_old_time_is_received_when_it_came_into_the_inbox(ws: Workspace) -> None:
    """A modification time carried over by the copy (cp -p, rsync, an SMB copy) cannot make a
    late file on time: the receipt time is when the file came into the inbox (its ctime)."""
    box = ws.inbox_dir / HUANGHUA
    box.mkdir(parents=True)
    f = filled(ws, HUANGHUA, MARCH, box / "三月.xlsx")
    set_mtime(f, "2025-04-01 09:00")                        # saved on the 1st, copied in after the 5th
    arrived = datetime.fromtimestamp(f.stat().st_ctime, tz=TZ)
    collect_inbox(ws, now=arrived + timedelta(minutes=5))
    [(_n, state, received)] = versions(ws)
    assert state == "current"
    assert abs(datetime.fromisoformat(received) - arrived) < timedelta(seconds=1)   # not 2025-04-01


# ------------------------------------------------------------------ 3. files still being written


WRITER = textwrap.dedent("""
    import sys, time
    data = open(sys.argv[1], "rb").read()
    with open(sys.argv[2], "wb") as out:
        out.write(data[: len(data) // 2]); out.flush()
        open(sys.argv[2] + ".half", "w").close()
        while not __import__("os").path.exists(sys.argv[2] + ".go"):
            time.sleep(0.02)
        out.write(data[len(data) // 2 :])
""")


def test_an_upload_paused_half_way_is_left_alone_and_taken_whole_later(ws: Workspace, tmp_path: Path) -> None:
    good = filled(ws, HUANGHUA, MARCH, tmp_path / "good.xlsx")
    box = ws.inbox_dir / HUANGHUA
    box.mkdir(parents=True)
    target = box / "三月.xlsx"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(good), str(target)])
    try:
        deadline = time.monotonic() + 20
        while not Path(str(target) + ".half").exists():
            assert time.monotonic() < deadline and writer.poll() is None
            time.sleep(0.02)
        Path(str(target) + ".half").unlink()
        os.utime(target, (time.time() - 60, time.time() - 60))   # paused for a minute: no longer "young"

        report = collect_inbox(ws, now=at("2025-04-03 10:00"))
        assert report.files == []                 # open for writing elsewhere: not read at all
        assert target.exists() and versions(ws) == []

        Path(str(target) + ".go").touch()
        writer.wait(timeout=20)
    finally:
        writer.kill()
        writer.wait()
    Path(str(target) + ".go").unlink()
    report = collect_inbox(ws, now=at("2025-04-03 11:00"))
    assert [f.verdict for f in report.files] == ["accepted"]
    assert not target.exists()
    assert target.parent.exists() and [p.name for p in box.iterdir()] == []


@pytest.mark.settle
def test_a_file_written_again_within_the_settle_time_waits_for_the_next_collect(ws: Workspace, tmp_path: Path) -> None:
    text = ws.settings_path.read_text(encoding="utf-8").replace("settle_seconds = 5.0", "settle_seconds = 1.0")
    ws.settings_path.write_text(text, encoding="utf-8")
    ws = Workspace(ws.home)
    good = filled(ws, HUANGHUA, MARCH, tmp_path / "good.xlsx")
    box = ws.inbox_dir / HUANGHUA
    box.mkdir(parents=True)
    target = box / "三月.xlsx"
    data = good.read_bytes()
    target.write_bytes(data[:1000])

    def finish() -> None:                  # a writer that closes and opens again (no lease to see)
        time.sleep(0.4)
        with open(target, "ab") as f:
            f.write(data[1000:])

    t = threading.Thread(target=finish)
    t.start()
    started = time.monotonic()
    report = collect_inbox(ws, now=at("2025-04-03 10:00"))
    t.join()
    assert report.files == [] and versions(ws) == []
    assert 0.9 <= time.monotonic() - started < 5
    os.utime(target, (time.time() - 5, time.time() - 5))
    assert [f.verdict for f in collect_inbox(ws, now=at("2025-04-03 11:00")).files] == ["accepted"]


# ------------------------------------------------------------------ 4. oversized files


def test_a_huge_file_is_refused_and_only_its_head_is_archived(ws: Workspace) -> None:
    text = ws.settings_path.read_text(encoding="utf-8").replace("max_file_bytes = 20_000_000",
                                                                "max_file_bytes = 1_000_000")
    ws.settings_path.write_text(text, encoding="utf-8")
    ws = Workspace(ws.home)
    box = ws.inbox_dir / HUANGHUA
    box.mkdir(parents=True)
    huge = box / "三月.xlsx"
    with open(huge, "wb") as f:
        f.write(b"PK\x03\x04")
        f.truncate(2 * 1024**3)            # 2 GB, sparse
    os.utime(huge, (time.time() - 60, time.time() - 60))
    report = collect_inbox(ws, now=at("2025-04-03 10:00"))
    [f] = report.files
    assert (f.verdict, [p.code for p in f.problems]) == ("rejected", ["file_too_large"])
    assert str(2 * 1024**3) in f.problems[0].message
    archived = [p for p in (ws.home / "archive").rglob("*") if p.is_file()]
    assert [p.suffix for p in archived] == [".truncated"]
    assert archived[0].stat().st_size == 1_000_000
    assert not huge.exists()
    conn = ws.connect()
    assert conn.execute("SELECT size FROM files").fetchone()[0] == 2 * 1024**3
    conn.close()


# ------------------------------------------------------------------ 5. CSV in two encodings


def long_csv(lines: list[str]) -> str:
    return "county_code,period,cluster_code,indicator,value\n" + "\n".join(lines) + "\n"


def test_a_csv_mixing_utf8_and_gb18030_is_refused_naming_the_line(ws: Workspace, tmp_path: Path) -> None:
    body = long_csv([f"{HUANGHUA},2025-03,CZ01,ent_total,120",
                     f"{HUANGHUA},2025-03,CZ01,progress,完成技改",
                     f"{HUANGHUA},2025-03,CZ02,progress,进展顺利"])
    utf8, gb = body.encode("utf-8"), body.encode("gb18030")
    lines_utf8, lines_gb = utf8.split(b"\n"), gb.split(b"\n")
    mixed = b"\n".join(lines_utf8[:3] + lines_gb[3:])       # line 4 pasted from a GBK file
    path = tmp_path / "mixed.csv"
    path.write_bytes(mixed)
    [f] = ingest_files(ws, [path], county=HUANGHUA, now=at("2025-04-03 10:00")).files
    assert (f.verdict, [p.code for p in f.problems]) == ("rejected", ["file_unreadable"])
    assert "第3行是 UTF-8" in f.problems[0].message and "第4行不是" in f.problems[0].message
    # each encoding alone is still read
    for enc in ("utf-8", "utf-8-sig", "gb18030"):
        read = read_submission(body.encode(enc), Limits(), {"ent_total", "progress"})
        assert [r.cells["progress"].value for r in read.rows] == ["完成技改", "进展顺利"], enc


def test_a_csv_of_half_a_million_rows_is_refused_before_it_costs_a_list_of_rows() -> None:
    row = f"{HUANGHUA},2025-03,CZ01,ent_total,1\n"
    data = ("county_code,period,cluster_code,indicator,value\n" + row * 500_000).encode()
    assert len(data) < Limits().max_file_bytes
    tracemalloc.start()
    try:
        with pytest.raises(FileRejected) as e:
            read_submission(data, Limits(), {"ent_total"})
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert e.value.problem.code == "file_too_large"
    assert peak < 3 * len(data)      # the text once, and the rows up to the limit; not 500,000 lists


# ------------------------------------------------------------------ 6. a link swapped in


def test_a_link_swapped_in_after_the_listing_is_not_followed(ws: Workspace, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text(long_csv([f"{HUANGHUA},2025-03,CZ01,progress,绝密"]), encoding="utf-8")
    box = ws.inbox_dir / HUANGHUA
    box.mkdir(parents=True)
    victim = filled(ws, HUANGHUA, MARCH, box / "三月.xlsx")
    real_settled = ingest_module.settled

    def swap(items: list, settle: float) -> list:
        out = real_settled(items, settle)
        victim.unlink()
        victim.symlink_to(secret)          # between the listing and the read
        return out

    monkeypatch.setattr(ingest_module, "settled", swap)
    [f] = collect_inbox(ws, now=at("2025-04-03 10:00")).files
    assert f.verdict == "rejected" and "链接" in f.problems[0].message
    archived = b"".join(p.read_bytes() for p in (ws.home / "archive").rglob("*") if p.is_file())
    assert "绝密".encode() not in archived


# ------------------------------------------------------------------ 12. replay, the future


KILLED_COLLECT = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from supervise.intake import ingest
    from supervise.periods import TZ
    from supervise.workspace import Workspace
    from datetime import datetime

    def stop(self, paths):                 # the batch is committed; the files are still in the inbox
        Path(sys.argv[2]).touch()
        time.sleep(600)

    ingest._Remover.remove = stop
    ingest.settle_seconds_of = lambda ws: 0.0
    ingest.collect_inbox(Workspace(Path(sys.argv[1])), now=datetime(2025, 4, 3, 10, tzinfo=TZ))
""")


def test_a_collect_killed_after_its_commit_sees_the_same_files_as_unchanged(ws: Workspace, tmp_path: Path) -> None:
    box = ws.inbox_dir / HUANGHUA
    box.mkdir(parents=True)
    a = filled(ws, HUANGHUA, MARCH, box / "a.xlsx", CZ01__revenue_ytd=1000)
    b = filled(ws, HUANGHUA, MARCH, box / "b.xlsx", CZ01__revenue_ytd=1200)     # the correction
    bad = filled(ws, HUANGHUA, MARCH, box / "c.xlsx", CZ01__ent_total="很多")    # then a bad one
    for n, p in enumerate((a, b, bad)):
        os.utime(p, (time.time() - 100 + n, time.time() - 100 + n))
    (ws.inbox_dir / RENQIU).mkdir()
    filled(ws, RENQIU, MARCH, ws.inbox_dir / RENQIU / "r.xlsx", monthly_values(ws.registry, RENQIU))
    marker = tmp_path / "committed"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_COLLECT, str(ws.home), str(marker)], env=env)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    before = versions(ws)
    # 任丘's folder (130982) comes before 黄骅's (130983)
    assert [s for _n, s, _r in before] == ["current", "superseded", "current", "rejected"]
    assert len(list(ws.inbox_dir.rglob("*.xlsx"))) == 4        # the kill left them all

    report = collect_inbox(ws, now=at("2025-04-03 11:00"))

    assert [f.unchanged for f in report.files] == [True, True, True, True]
    assert versions(ws) == before                  # no version stored again, the correction in force
    assert current_revenue(ws, HUANGHUA, "CZ01")[0] == 1200
    assert list(ws.inbox_dir.rglob("*.xlsx")) == []


def test_a_receipt_time_in_the_future_is_refused(ws: Workspace, tmp_path: Path) -> None:
    f = filled(ws, HUANGHUA, MARCH, tmp_path / "f.xlsx")
    with pytest.raises(IntakeError, match="将来"):
        ingest_files(ws, [f], county=HUANGHUA, received_at=at("2025-04-04 10:00"), now=at("2025-04-03 10:00"))
    env = {**os.environ, "SUPERVISE_HOME": str(ws.home)}
    done = subprocess.run([sys.executable, "-m", "supervise", "ingest", "--county", HUANGHUA,
                           "--received-at", "2099-01-01T00:00+08:00", str(f)],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode != 0 and "将来" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert versions(ws) == []


# ------------------------------------------------------------------ 10. the database at fault


def test_a_corrupt_database_fails_the_ingest_and_blames_no_county(ws: Workspace, tmp_path: Path) -> None:
    box = ws.inbox_dir / HUANGHUA
    box.mkdir(parents=True)
    f = filled(ws, HUANGHUA, MARCH, box / "三月.xlsx")
    ws.db_path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(DatabaseFault):
        collect_inbox(ws, now=at("2025-04-03 10:00"))
    assert f.exists()
    env = {**os.environ, "SUPERVISE_HOME": str(ws.home)}
    done = subprocess.run([sys.executable, "-m", "supervise", "ingest", "--json"], capture_output=True,
                          text=True, env=env, timeout=60, check=False)
    assert done.returncode != 0
    assert "数据库" in done.stderr and "internal_error" not in done.stdout
    assert f.exists()
    if done.stdout.strip():
        assert all(x["verdict"] != "rejected" for x in json.loads(done.stdout).get("files", []))


def test_a_file_whose_writer_cannot_be_known_must_hold_still_longer(ws: Workspace,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Another owner's upload (SMB, SFTP): no lease, so no answer from the kernel; it is taken
    only after it has not changed for UNKNOWN_WRITER_SECONDS."""
    monkeypatch.setattr(inbox_module, "being_written", lambda path: None)
    box = ws.inbox_dir / HUANGHUA
    box.mkdir(parents=True)
    f = filled(ws, HUANGHUA, MARCH, box / "三月.xlsx")
    os.utime(f, (time.time() - 60, time.time() - 60))
    assert collect_inbox(ws, now=at("2025-04-03 10:00")).files == [] and f.exists()
    os.utime(f, (time.time() - 300, time.time() - 300))
    assert [r.verdict for r in collect_inbox(ws, now=at("2025-04-03 11:00")).files] == ["accepted"]
