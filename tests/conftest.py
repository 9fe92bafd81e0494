"""Shared fixtures: real workspaces in tmp_path, real SQLite files."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
from itertools import count
from pathlib import Path

import pytest

from supervise.periods import TZ
from supervise.workspace import Workspace, init_workspace


def require_peer(name: str, found: object) -> None:
    """A test that needs a real peer (LibreOffice, Chromium, systemd-analyze...): skipped on a
    developer's machine without it, but failed under CI=true, where `.ci/run` installs it."""
    if found:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{name} is required under CI=true (.ci/run installs it) but was not found")
    pytest.skip(f"{name} not installed")


@pytest.fixture(autouse=True)
def _short_settle(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files a test has just put in the inbox are taken after 0.3 s, not the 5 s a server waits
    (tests of the settle time itself are marked `settle`)."""
    if request.node.get_closest_marker("settle") is None:
        from supervise.intake import ingest

        monkeypatch.setattr(ingest, "settle_seconds_of", lambda ws: 0.3)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A fresh workspace with the default registry and rulebooks."""
    return init_workspace(tmp_path / "home")


def at(text: str) -> datetime:
    """'2025-04-05 23:59' in Asia/Shanghai."""
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


_submissions = count(1)


def store_submission(
    conn: sqlite3.Connection,
    county: str,
    period: str,
    values: Mapping[str, Mapping[str, float | str]],
    received_at: str,
    *,
    warnings: Sequence[tuple[str, str, str]] = (),
) -> int:
    """Store an accepted submission as the county's current version for the period (superseding
    an earlier one), with its values by cluster (text kept as text) and its data-quality
    warnings as (cluster, indicator, message). Written straight into the tables: the intake is
    tested elsewhere."""
    sha = hashlib.sha256(f"{county}/{period}/{next(_submissions)}".encode()).hexdigest()
    conn.execute(
        "INSERT INTO files (sha256, size, archive_path, first_name, first_seen_at) VALUES (?, 1, ?, ?, ?)",
        (sha, f"archive/{sha}", f"{county}.xlsx", received_at),
    )
    old = conn.execute(
        "SELECT id FROM submissions WHERE county_code = ? AND period = ? AND state = 'current'", (county, period)
    ).fetchone()
    if old:
        conn.execute("UPDATE submissions SET state = 'superseded' WHERE id = ?", (old[0],))
    cur = conn.execute(
        """INSERT INTO submissions (county_code, sender_code, period, dataset, file_sha256, file_name, format,
           template_version, received_at, ingested_at, verdict, state, supersedes, n_values)
           VALUES (?, ?, ?, ?, ?, ?, 'xlsx', 1, ?, ?, ?, 'current', ?, ?)""",
        (county, county, period, "quarterly" if "Q" in period else "monthly", sha, f"{county}.xlsx",
         received_at, received_at, "warning" if warnings else "accepted", old[0] if old else None,
         sum(len(v) for v in values.values())),
    )
    sid = int(cur.lastrowid or 0)
    for cluster, row in values.items():
        for indicator, v in row.items():
            conn.execute(
                "INSERT INTO submission_values (submission_id, cluster_code, indicator, value, text) "
                "VALUES (?, ?, ?, ?, ?)",
                (sid, cluster, indicator, None if isinstance(v, str) else v, v if isinstance(v, str) else None),
            )
    for cluster, indicator, message in warnings:
        conn.execute(
            "INSERT INTO problems (submission_id, severity, code, sheet, cell, cluster_code, indicator, message) "
            "VALUES (?, 'warning', 'jump', '填报表', 'H7', ?, ?, ?)",
            (sid, cluster, indicator, message),
        )
    return sid


@pytest.fixture
def filled(ws: Workspace) -> Workspace:
    """March: 黄骅 (CZ01–CZ04) and 任丘 (CZ05, CZ11) on time, 河间 two days late, the rest missing.

    Revenue (万元, YTD / last year): CZ01 1,200,000/1,000,000; CZ02 300,000/300,000;
    CZ05 2,500,000/2,000,000; CZ11 5,500,000/5,000,000; CZ12 (河间) 80,000/100,000.
    Total 9,580,000 万元 = 958.00 亿元; last year 8,400,000 → growth (9,580,000 − 8,400,000) / 8,400,000
    = 14.047… % → 14.0 %. ≥100亿: CZ01 (100–200), CZ05 (200–500), CZ11 (500+) = 3.
    Q1 update (goals): 黄骅 CZ01 hitech_ent 400, a problems text holding every attack string.
    """
    from .bulletin_support import ATTACKS

    conn = ws.connect()
    store_submission(conn, "130983", "2025-03", {
        "CZ01": {"revenue_ytd": 1_200_000, "revenue_ytd_ly": 1_000_000},
        "CZ02": {"revenue_ytd": 300_000, "revenue_ytd_ly": 300_000},
    }, "2025-04-03T16:20:00+08:00", warnings=[("CZ01", "revenue_ytd", a) for a in ATTACKS])
    store_submission(conn, "130982", "2025-03", {
        "CZ05": {"revenue_ytd": 2_500_000, "revenue_ytd_ly": 2_000_000},
        "CZ11": {"revenue_ytd": 5_500_000, "revenue_ytd_ly": 5_000_000},
    }, "2025-04-05T23:59:00+08:00")
    store_submission(conn, "130984", "2025-03", {
        "CZ12": {"revenue_ytd": 80_000, "revenue_ytd_ly": 100_000},
    }, "2025-04-07T10:00:00+08:00")
    store_submission(conn, "130983", "2025Q1", {
        "CZ01": {"hitech_ent": 400, "problems": "\n".join(ATTACKS)},
    }, "2025-04-08T10:00:00+08:00")
    conn.close()
    return ws
