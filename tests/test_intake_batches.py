"""Batches: a batch SQLite rolls back (disk full, I/O error) loses no inbox file."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from supervise.intake.ingest import collect_inbox
from supervise.periods import Month
from supervise.workspace import Workspace

from .intake_corpus import at, filled

MARCH = Month(2025, 3)
COUNTIES = ["130981", "130982", "130983", "130984"]    # the inbox order


def _inbox(ws: Workspace, tmp_path: Path) -> dict[str, Path]:
    out = {}
    for county in COUNTIES:
        src = filled(ws, county, MARCH, tmp_path / f"{county}.xlsx")
        target = ws.inbox_dir / county / f"{county}.xlsx"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        out[county] = target
    return out


def test_a_batch_rolled_back_by_sqlite_keeps_its_files_in_the_inbox(ws: Workspace, tmp_path: Path) -> None:
    files = _inbox(ws, tmp_path)
    # The third file's insert makes SQLite roll back the whole transaction, as a full disk does.
    conn = sqlite3.connect(ws.db_path)
    conn.execute("CREATE TRIGGER lose_batch BEFORE INSERT ON submissions WHEN NEW.county_code = '130983' "
                 "BEGIN SELECT RAISE(ROLLBACK, 'database or disk is full'); END")
    conn.commit()
    conn.close()

    report = collect_inbox(ws, now=at("2025-04-03 10:00"))
    by = {f.county_code or Path(f.file).stem: f for f in report.files}
    # The first three files were in the batch that was lost; the fourth started a new one.
    for county in COUNTIES[:3]:
        f = by[county]
        assert (f.recorded, f.not_stored, f.submission_id) == (False, True, None), county
        assert f.problems[0].code == "not_stored"
        assert f.to_json()["stored"] is False
        assert files[county].exists(), f"{county} was removed from the inbox but is not stored"
    assert by["130984"].verdict == "accepted" and by["130984"].recorded
    assert not files["130984"].exists()
    assert report.summary["not_stored"] == 3 and report.summary["accepted"] == 1

    conn = sqlite3.connect(ws.db_path)
    stored = [r[0] for r in conn.execute("SELECT county_code FROM submissions ORDER BY id")]
    conn.execute("DROP TRIGGER lose_batch")
    conn.commit()
    conn.close()
    assert stored == ["130984"]

    # Next collect: the files left behind are stored.
    again = collect_inbox(ws, now=at("2025-04-03 11:00"))
    assert sorted((f.county_code, f.verdict) for f in again.files) == sorted(
        (c, "accepted") for c in COUNTIES[:3])
    assert not any(p.exists() for p in files.values())


def test_a_file_replaced_after_it_was_read_stays_in_the_inbox(ws: Workspace, tmp_path: Path) -> None:
    files = _inbox(ws, tmp_path)
    first = files["130981"]
    newer = filled(ws, "130981", MARCH, tmp_path / "newer.xlsx", CZ17__ent_total=200)
    old_bytes = first.read_bytes()

    def progress(i: int, n: int, name: str) -> None:
        if i == 1:    # the first file has been read; a newer version is renamed onto its name
            staged = first.with_name(".incoming.tmp")
            shutil.copyfile(newer, staged)
            staged.replace(first)

    report = collect_inbox(ws, now=at("2025-04-03 10:00"), progress=progress)
    assert [f.verdict for f in report.files] == ["accepted"] * 4
    assert first.exists() and first.read_bytes() == newer.read_bytes() != old_bytes
    assert not any(files[c].exists() for c in COUNTIES[1:])
    again = collect_inbox(ws, now=at("2025-04-03 11:00")).files
    assert [(f.county_code, f.verdict, f.supersedes is not None) for f in again] == [("130981", "accepted", True)]
    assert not first.exists()


def test_a_file_still_being_written_is_left_for_the_next_collect(ws: Workspace, tmp_path: Path) -> None:
    import threading
    import time

    files = _inbox(ws, tmp_path)
    growing = ws.inbox_dir / "130982" / "copying.xlsx"
    body = filled(ws, "130982", MARCH, tmp_path / "copy.xlsx").read_bytes()
    done = threading.Event()

    def copy_slowly() -> None:
        with open(growing, "wb") as f:
            for i in range(0, len(body), max(1, len(body) // 40)):
                f.write(body[i:i + max(1, len(body) // 40)])
                f.flush()
                time.sleep(0.03)
        done.set()

    with open(growing, "wb") as f:
        f.write(body[:100])
    writer = threading.Thread(target=copy_slowly)
    writer.start()
    try:
        report = collect_inbox(ws, now=at("2025-04-03 10:00"))
    finally:
        writer.join()
    assert "copying.xlsx" not in [Path(f.file).name for f in report.files]
    assert growing.read_bytes() == body
    assert not any(p.exists() for p in files.values())


def test_the_same_file_again_with_its_archive_copy_missing_is_archived_again(
        ws: Workspace, tmp_path: Path) -> None:
    path = _inbox(ws, tmp_path)["130983"]
    for c in COUNTIES:
        if c != "130983":
            (ws.inbox_dir / c / f"{c}.xlsx").unlink()
    body = path.read_bytes()
    first = collect_inbox(ws, now=at("2025-04-03 10:00")).files[0]
    assert first.verdict == "accepted" and not path.exists()
    # The archive copy is lost (moved away by hand, an old layout...), and the county sends the
    # same file again.
    conn = sqlite3.connect(ws.db_path)
    conn.execute("UPDATE files SET archive_path = 'archive/moved/gone.xlsx' WHERE sha256 = ?", (first.sha256,))
    conn.commit()
    conn.close()
    (ws.home / first.archive_path).unlink()
    for hour in ("11:00", "12:00"):
        path.write_bytes(body)
        again = collect_inbox(ws, now=at(f"2025-04-03 {hour}")).files[0]
        assert (again.unchanged, again.recorded) == (True, True)
        assert not path.exists(), "the same file again must leave the inbox"
        assert (ws.home / again.archive_path).read_bytes() == body
    conn = sqlite3.connect(ws.db_path)
    [(archive_path,)] = conn.execute("SELECT archive_path FROM files").fetchall()
    conn.close()
    assert (ws.home / archive_path).read_bytes() == body
