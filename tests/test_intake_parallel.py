"""Ingest of many files: two reader processes and batched transactions give the results of
one reader and one transaction per file, and a failing file is rolled back alone."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from supervise.intake import ingest as ingest_module
from supervise.intake.ingest import collect_inbox
from supervise.periods import Month
from supervise.store import submissions as store_module
from supervise.workspace import Workspace, init_workspace

from .intake_corpus import HUANGHUA, RENQIU, at, dump, filled

FEB, MARCH = Month(2025, 2), Month(2025, 3)


def _corpus(ws: Workspace, root: Path) -> list[tuple[str, Path]]:
    """(sender, file) in inbox order: good files, history warnings, errors, junk, the same file twice."""
    root.mkdir()
    files: list[tuple[str, Path]] = []
    counties = sorted(ws.registry.counties)
    for code in counties:
        files.append((code, filled(ws, code, MARCH, root / f"{code}-03.xlsx")))
    # February then a jumpy March for 黄骅市, in the same run: the warning needs February stored first.
    files.append((HUANGHUA, filled(ws, HUANGHUA, FEB, root / "hh-02.xlsx")))
    files.append((HUANGHUA, filled(ws, HUANGHUA, MARCH, root / "hh-03b.xlsx",
                                   CZ01__revenue_ytd=1, CZ02__employees=60000)))
    files.append((RENQIU, filled(ws, RENQIU, MARCH, root / "rq-bad.xlsx", CZ05__ent_total="很多")))
    files.append((RENQIU, filled(ws, HUANGHUA, MARCH, root / "rq-wrong-county.xlsx")))
    (root / "junk.xlsx").write_bytes(b"not a spreadsheet at all")
    files.append((RENQIU, root / "junk.xlsx"))
    (root / "empty.xlsx").write_bytes(b"")
    files.append((RENQIU, root / "empty.xlsx"))
    files.append((counties[0], root / f"{counties[0]}-03.xlsx"))   # the same file again
    return files


def _fill_inbox(ws: Workspace, files: list[tuple[str, Path]]) -> None:
    for n, (sender, path) in enumerate(files):
        box = ws.inbox_dir / sender
        box.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, box / f"{n:03d}-{path.name}")   # names keep the inbox order


def _result(report: Any) -> list[dict[str, Any]]:
    out = report.to_json()["files"]
    for f in out:
        f["file"] = Path(f["file"]).name
    return out


@pytest.fixture
def two(tmp_path: Path) -> tuple[Workspace, Workspace, list[tuple[str, Path]]]:
    a = init_workspace(tmp_path / "a")
    b = init_workspace(tmp_path / "b")
    return a, b, _corpus(a, tmp_path / "files")


def test_workers_and_batches_give_the_one_process_results(
        two: tuple[Workspace, Workspace, list[tuple[str, Path]]], monkeypatch: pytest.MonkeyPatch) -> None:
    serial, parallel, files = two
    _fill_inbox(serial, files)
    _fill_inbox(parallel, files)
    when = at("2025-04-03 10:00")

    monkeypatch.setattr(ingest_module, "WORKERS", 1)
    monkeypatch.setattr(ingest_module, "BATCH_FILES", 1)          # one transaction per file
    one = collect_inbox(serial, now=when)

    monkeypatch.setattr(ingest_module, "WORKERS", 2)
    monkeypatch.setattr(ingest_module, "_AHEAD_FILES", 7)
    monkeypatch.setattr(ingest_module, "BATCH_FILES", 4)
    many = collect_inbox(parallel, now=when)

    assert _result(many) == _result(one)
    verdicts = [f["verdict"] for f in _result(one)]
    assert verdicts.count("warning") == 1 and verdicts.count("rejected") == 4
    assert one.summary == many.summary and one.summary["unchanged"] == 1
    assert dump(parallel) == dump(serial)
    for ws in (serial, parallel):
        left = sorted(p.name for p in ws.inbox_dir.rglob("*") if p.is_file())
        assert left == []   # every file was recorded (rejections too), so every file left the inbox
        archived = sorted(p.name for p in (ws.home / "archive").rglob("*") if p.is_file())
        assert len(archived) == len({f["sha256"] for f in _result(one)})
        assert not [p for p in (ws.home / "archive").rglob(".*.tmp")]


def test_a_file_failing_inside_a_batch_is_rolled_back_alone(
        two: tuple[Workspace, Workspace, list[tuple[str, Path]]], monkeypatch: pytest.MonkeyPatch) -> None:
    ws, _other, files = two
    good = files[:5]
    _fill_inbox(ws, good)
    broken = good[2][1].name
    real_audit = store_module._audit

    def audit(conn: Any, at: str, actor: str, action: str, *args: Any) -> None:
        detail = args[-1]
        if action == "ingest" and broken in str(detail.get("file")):
            raise OSError("disk trouble")   # after the file's version and values were inserted
        real_audit(conn, at, actor, action, *args)

    monkeypatch.setattr(store_module, "_audit", audit)
    monkeypatch.setattr(ingest_module, "BATCH_FILES", 100)   # all five files in one transaction
    report = collect_inbox(ws, now=at("2025-04-03 10:00"))

    got = [(Path(f.file).name, f.verdict, f.recorded) for f in report.files]
    assert got[2] == (f"002-{broken}", "rejected", False)
    assert [v for _n, v, _r in got[:2] + got[3:]] == ["accepted"] * 4
    conn = ws.connect()
    names = [r[0] for r in conn.execute("SELECT file_name FROM submissions ORDER BY id")]
    assert names == [n for n, _v, _r in got[:2] + got[3:]]
    stored = sum(f.values for f in report.files if f.verdict == "accepted")
    assert conn.execute("SELECT COUNT(*) FROM submission_values").fetchone()[0] == stored > 0
    assert conn.execute("SELECT COUNT(*) FROM files").fetchone()[0] == 4
    conn.close()
    # Only the failed file is still in the inbox, to be ingested again.
    assert [p.name for p in ws.inbox_dir.rglob("*.xlsx")] == [f"002-{broken}"]
