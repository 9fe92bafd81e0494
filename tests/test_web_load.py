"""Load against the real server on 127.0.0.1: 200 uploads from 20 concurrent clients, for the 14
counties. Every upload is answered, each is archived and stored exactly once, the database stays
consistent. Bounded: 200 requests, 60 s per request, 240 s in all."""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from supervise.web.users import add_user
from supervise.workspace import Workspace

from .intake_corpus import csv_rows, long_csv, monthly_values
from .web_support import MARCH, NOW, HttpSession, running_server

pytestmark = [pytest.mark.load]

UPLOADS = 200
CLIENTS = 20
BUDGET = 240.0


def test_200_uploads_from_20_clients_are_each_stored_once(ws: Workspace, tmp_path: Path) -> None:
    counties = [c.code for c in ws.registry.assessed_counties()]
    assert len(counties) == 14
    for code in counties:
        add_user(ws, f"c{code}", "county", county=code, password=f"password-{code}", now=NOW)
    # Every upload different (a value moves by one part in a thousand): none is 未变化.
    files: list[tuple[str, str, bytes]] = []
    for i in range(UPLOADS):
        code = counties[i % CLIENTS % len(counties)]
        values = monthly_values(ws.registry, code, scale=1 + i / 1000)
        path = long_csv(csv_rows(code, str(MARCH), values), tmp_path / f"{i:03d}.csv")
        files.append((code, f"{code}-{i:03d}.csv", path.read_bytes()))

    answers: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()
    started = time.monotonic()
    with running_server(ws.home, threads=8) as server:

        def client(k: int) -> None:
            code = counties[k % len(counties)]
            session = HttpSession(server, timeout=60)
            try:
                csrf = session.login(f"c{code}", f"password-{code}")
                for i in range(k, UPLOADS, CLIENTS):
                    assert files[i][0] == code
                    if time.monotonic() - started > BUDGET:
                        raise TimeoutError("the load test ran out of its time budget")
                    status, doc = session.upload(csrf, files[i][1], files[i][2])
                    with lock:
                        answers.append((status, doc))
            finally:
                session.close()

        with ThreadPoolExecutor(CLIENTS) as pool:
            for f in [pool.submit(client, k) for k in range(CLIENTS)]:
                f.result(timeout=BUDGET)

    assert len(answers) == UPLOADS
    assert {s for s, _ in answers} == {200}
    assert {d["verdict"] for _, d in answers} <= {"accepted", "warning"}, [d for _, d in answers if d["verdict"] ==
                                                                           "rejected"][:1]
    assert not any(d.get("unchanged") for _, d in answers)
    ids = [d["submission_id"] for _, d in answers]
    assert len(set(ids)) == UPLOADS                             # none doubled
    assert sorted(d["file"] for _, d in answers) == sorted(name for _c, name, _b in files)   # none lost
    archived = [p for p in ws.archive_dir.rglob("*") if p.is_file()]
    assert len(archived) == UPLOADS
    conn = sqlite3.connect(ws.db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("SELECT count(*) FROM submissions WHERE source = 'web'").fetchone()[0] == UPLOADS
        assert conn.execute("SELECT count(DISTINCT file_sha256) FROM submissions").fetchone()[0] == UPLOADS
        per_county = dict(conn.execute(
            "SELECT county_code, count(*) FROM submissions WHERE state = 'current' GROUP BY county_code").fetchall())
        assert per_county == dict.fromkeys(counties, 1)             # one version in force each
        assert conn.execute("SELECT count(*) FROM web_audit WHERE action = 'upload'").fetchone()[0] == UPLOADS
    finally:
        conn.close()
    assert not list((ws.home / ".web" / "uploads").iterdir())      # nothing left staged
