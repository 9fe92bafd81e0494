"""Ingest behaviour: warnings against history, resubmission, unchanged files, dry runs, 退回,
history, crash-proofing, and the reporting status built on top of it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from supervise.cli import cli
from supervise.intake import IntakeError, history, ingest_files, reject_submission
from supervise.intake import ingest as ingest_module
from supervise.jobs.reporting import reporting_status, status_report
from supervise.periods import Month
from supervise.workspace import Workspace

from .intake_corpus import HUANGHUA, RENQIU, at, dump, filled, monthly_values

UNKNOWN_999999 = "未知的县（市、区）代码 999999：--county 须为 reference/counties.csv 中的6位代码"

FEB, MARCH = Month(2025, 2), Month(2025, 3)


def send(ws: Workspace, path: Path, when: str, county: str = HUANGHUA, **kw: Any) -> Any:
    return ingest_files(ws, [path], county=county, now=at(when), **kw).files[0]


@pytest.fixture
def feb(ws: Workspace, tmp_path: Path) -> Workspace:
    """February accepted for 黄骅市 (the history March is compared with)."""
    f = send(ws, filled(ws, HUANGHUA, FEB, tmp_path / "feb.xlsx"), "2025-03-04 09:00")
    assert f.verdict == "accepted"
    return ws


# ------------------------------------------------------------------ warnings


def test_warnings_ytd_decrease_jump_and_unit_slip(feb: Workspace, tmp_path: Path) -> None:
    # February (from monthly_values): CZ01 revenue_ytd 5000.5, CZ02 employees 1002,
    # CZ03 tax_ytd 600, CZ04 ent_total 104.
    path = filled(feb, HUANGHUA, MARCH, tmp_path / "mar.xlsx",
                  CZ01__revenue_ytd=4000,          # lower than February's year-to-date: warning
                  CZ02__employees=6000,            # 1002 -> 6000, more than 5x: jump
                  CZ03__tax_ytd=6_000_000,         # 600 -> 6,000,000 = 10,000x: 元 for 万元
                  CZ04__ent_total=150)             # 104 -> 150: nothing to say
    f = send(feb, path, "2025-04-03 10:00")
    assert f.verdict == "warning"
    got = [(p.code, p.severity, p.where, p.cluster_code, p.indicator) for p in f.problems]
    assert got == [
        ("ytd_decreased", "warning", "填报表!I6 / CZ01 / revenue_ytd", "CZ01", "revenue_ytd"),
        ("jump", "warning", "填报表!N7 / CZ02 / employees", "CZ02", "employees"),
        ("unit_slip", "warning", "填报表!L8 / CZ03 / tax_ytd", "CZ03", "tax_ytd"),
    ]
    assert "小于上月（2025-02）的累计数5000.5" in f.problems[0].message
    assert "元" in f.problems[2].message
    # Accepted with warnings: values are stored and in force, warnings kept with the version.
    conn = feb.connect()
    assert conn.execute("SELECT state, n_values FROM submissions WHERE id = ?", (f.submission_id,)
                        ).fetchone()[:] == ("current", 60)
    assert conn.execute("SELECT COUNT(*) FROM problems WHERE submission_id = ? AND severity = 'warning'",
                        (f.submission_id,)).fetchone()[0] == 3
    conn.close()


def test_small_values_and_year_boundaries_do_not_warn(ws: Workspace, tmp_path: Path) -> None:
    dec = filled(ws, HUANGHUA, Month(2024, 12), tmp_path / "dec.xlsx")
    assert send(ws, dec, "2025-01-04 09:00").verdict == "accepted"
    # January's year-to-date values restart: lower than December is normal, not a warning.
    values = monthly_values(ws.registry, HUANGHUA, scale=0.1)
    jan = filled(ws, HUANGHUA, Month(2025, 1), tmp_path / "jan.xlsx", values,
                 CZ01__ent_above_new_ytd=20)     # 2 -> 20 is 10x, but below jump_min_value
    f = send(ws, jan, "2025-02-04 09:00")
    assert (f.verdict, f.problems) == ("accepted", [])


# ------------------------------------------------------------------ versions


def test_resubmission_supersedes_and_history_lists_changes(ws: Workspace, tmp_path: Path) -> None:
    first = filled(ws, HUANGHUA, MARCH, tmp_path / "v1.xlsx")
    second = filled(ws, HUANGHUA, MARCH, tmp_path / "v2.xlsx", CZ02__revenue_ytd=10500, CZ04__employees=1010)
    a = send(ws, first, "2025-04-03 10:00")
    b = send(ws, second, "2025-04-04 11:00")
    assert (a.verdict, b.verdict, b.supersedes) == ("accepted", "accepted", a.submission_id)
    h = history(ws, HUANGHUA, MARCH)
    assert [(v["submission_id"], v["state"], v["file_name"], v["sender_code"]) for v in h["versions"]] == [
        (a.submission_id, "superseded", "v1.xlsx", HUANGHUA),
        (b.submission_id, "current", "v2.xlsx", HUANGHUA),
    ]
    assert h["versions"][1]["received_at"] == "2025-04-04T11:00:00+08:00"
    assert h["versions"][0]["sha256"] == a.sha256
    # CZ02 revenue_ytd was 2 x 5000.5 = 10001; CZ04 employees 1004.
    assert h["changes"] == [{"from": a.submission_id, "to": b.submission_id,
                             "received_at": "2025-04-04T11:00:00+08:00", "changes": [
        {"cluster_code": "CZ02", "indicator": "revenue_ytd", "old": 10001.0, "new": 10500.0},
        {"cluster_code": "CZ04", "indicator": "employees", "old": 1004.0, "new": 1010.0},
    ]}]


def test_same_file_again_is_unchanged(ws: Workspace, tmp_path: Path) -> None:
    path = filled(ws, HUANGHUA, MARCH, tmp_path / "v1.xlsx")
    first = send(ws, path, "2025-04-03 10:00")
    before = dump(ws)
    report = ingest_files(ws, [path], county=HUANGHUA, now=at("2025-04-05 10:00"))
    again = report.files[0]
    assert (again.unchanged, again.verdict, again.submission_id) == (True, "accepted", first.submission_id)
    assert again.to_json()["unchanged"] is True and again.to_json()["verdict"] == "accepted"
    assert report.summary == {"files": 1, "accepted": 0, "warning": 0, "rejected": 0, "unchanged": 1, "values": 0}
    assert dump(ws) == before
    conn = ws.connect()
    assert [r[0] for r in conn.execute("SELECT action FROM audit ORDER BY id")] == ["ingest", "unchanged"]
    assert conn.execute("SELECT COUNT(*) FROM submissions").fetchone()[0] == 1
    conn.close()


def test_dry_run_stores_and_archives_nothing(ws: Workspace, tmp_path: Path) -> None:
    good = filled(ws, HUANGHUA, MARCH, tmp_path / "a.xlsx")
    bad = filled(ws, HUANGHUA, MARCH, tmp_path / "b.xlsx", CZ01__rd_ytd="n/a")
    report = ingest_files(ws, [good, bad], county=HUANGHUA, now=at("2025-04-03 10:00"), dry_run=True)
    assert [f.verdict for f in report.files] == ["accepted", "rejected"]
    assert report.to_json()["summary"]["dry_run"] is True
    assert list((ws.home / "archive").iterdir()) == []
    conn = ws.connect()
    assert [conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("files", "submissions", "submission_values", "problems", "audit")] == [0, 0, 0, 0, 0]
    conn.close()


def test_an_unexpected_error_rejects_that_file_only(ws: Workspace, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    a = filled(ws, HUANGHUA, MARCH, tmp_path / "a.xlsx")
    b = filled(ws, RENQIU, MARCH, tmp_path / "b.xlsx")
    real = ingest_module.validate

    def flaky(read: Any, *args: Any, **kw: Any) -> Any:
        if kw.get("sender") == HUANGHUA:
            raise RuntimeError("boom")
        return real(read, *args, **kw)

    monkeypatch.setattr(ingest_module, "validate", flaky)
    first = ingest_files(ws, [a], county=HUANGHUA, now=at("2025-04-03 10:00")).files[0]
    second = ingest_files(ws, [b], county=RENQIU, now=at("2025-04-03 10:00")).files[0]
    assert (first.verdict, [p.code for p in first.problems]) == ("rejected", ["internal_error"])
    assert second.verdict == "accepted"
    assert (ws.home / "archive" / first.sha256[:2] / f"{first.sha256}.xlsx").read_bytes() == a.read_bytes()
    conn = ws.connect()
    assert conn.execute("SELECT verdict, state FROM submissions WHERE id = ?", (first.submission_id,)
                        ).fetchone()[:] == ("rejected", "rejected")
    conn.close()


def test_received_at_overrides_receipt_time(ws: Workspace, tmp_path: Path) -> None:
    path = filled(ws, HUANGHUA, MARCH, tmp_path / "a.xlsx")
    f = ingest_files(ws, [path], county=HUANGHUA, now=at("2025-04-07 09:00"),
                     received_at=at("2025-04-05 18:30")).files[0]
    assert f.received_at == "2025-04-05T18:30:00+08:00"
    [s] = [s for s in _status(ws) if s.county_code == HUANGHUA]
    assert s.state == "on_time"


def test_a_batch_gives_each_file_its_own_sender_and_receipt_time(ws: Workspace, tmp_path: Path) -> None:
    """ingest_batch (the mails of one collect): one run, each file judged as its own ingest_files."""
    from supervise.intake.ingest import ingest_batch

    hh = filled(ws, HUANGHUA, MARCH, tmp_path / "hh.xlsx")
    rq = filled(ws, RENQIU, MARCH, tmp_path / "rq.xlsx")
    stray = filled(ws, RENQIU, MARCH, tmp_path / "stray.xlsx")     # 任丘's file, sent as 黄骅's
    report = ingest_batch(ws, [
        (hh, HUANGHUA, at("2025-04-05 18:30")),     # before the deadline (5 April 24:00): on time
        (rq, RENQIU, at("2025-04-06 08:00")),       # the morning after: one day late
        (stray, HUANGHUA, at("2025-04-05 10:00")),
    ], now=at("2025-04-07 09:00"), source="mail")
    assert [(f.verdict, f.received_at) for f in report.files[:2]] == [
        ("accepted", "2025-04-05T18:30:00+08:00"), ("accepted", "2025-04-06T08:00:00+08:00")]
    assert report.files[2].verdict == "rejected"
    assert [p.code for p in report.files[2].problems] == ["county_mismatch"]
    by = {s.county_code: s for s in _status(ws)}
    assert (by[HUANGHUA].state, by[RENQIU].state, by[RENQIU].days_late) == ("on_time", "late", 1)
    with pytest.raises(IntakeError):    # a receipt time in the future is refused before anything is read
        ingest_batch(ws, [(hh, HUANGHUA, at("2025-04-08 09:00"))], now=at("2025-04-07 09:00"))


# ------------------------------------------------------------------ 退回 and status


def _status(ws: Workspace) -> list[Any]:
    conn = ws.connect()
    try:
        return reporting_status(conn, ws.registry, MARCH, ws.settings.deadlines)
    finally:
        conn.close()


def test_status_on_time_late_missing_rejected(ws: Workspace, tmp_path: Path) -> None:
    # Deadline for March: 5 April 24:00.
    send(ws, filled(ws, HUANGHUA, MARCH, tmp_path / "hh.xlsx"), "2025-04-05 23:59")
    send(ws, filled(ws, RENQIU, MARCH, tmp_path / "rq.xlsx"), "2025-04-06 00:30", county=RENQIU)
    send(ws, filled(ws, "130984", MARCH, tmp_path / "hj.xlsx"), "2025-04-08 10:00", county="130984")
    send(ws, filled(ws, "130981", MARCH, tmp_path / "bt.xlsx", CZ17__ent_total="?"),
         "2025-04-02 10:00", county="130981")
    by = {s.county_code: s for s in _status(ws)}
    assert (by[HUANGHUA].state, by[HUANGHUA].days_late) == ("on_time", 0)
    assert (by[RENQIU].state, by[RENQIU].days_late) == ("late", 1)        # the 6th for the 5th
    assert (by["130984"].state, by["130984"].days_late) == ("late", 3)
    assert by["130981"].state == "rejected"
    assert by["130926"].state == "missing" and by["130926"].received_at is None
    conn = ws.connect()
    doc = status_report(conn, ws.registry, MARCH, ws.settings.deadlines)
    conn.close()
    assert doc["period"] == "2025-03"
    assert doc["completeness"] == round(100 * 3 / 14, 1) and doc["timeliness"] == round(100 / 14, 1)
    first = doc["counties"][0]
    assert (first["county_code"], first["county_name"], first["state"], first["received_at"]) == (
        HUANGHUA, "黄骅市", "on_time", "2025-04-05T23:59:00+08:00")


def test_return_then_resubmit(ws: Workspace, tmp_path: Path) -> None:
    send(ws, filled(ws, HUANGHUA, MARCH, tmp_path / "v1.xlsx"), "2025-04-03 10:00")
    with pytest.raises(IntakeError):
        reject_submission(ws, RENQIU, MARCH, "数据有误", actor="张三", now=at("2025-04-04 09:00"))
    before = dump(ws)["values"]
    done = reject_submission(ws, HUANGHUA, MARCH, "营业收入与统计局数据不符", actor="张三",
                             now=at("2025-04-04 09:00"))
    assert done["state"] == "returned"
    assert dump(ws)["values"] == before            # the data stay on record
    [s] = [s for s in _status(ws) if s.county_code == HUANGHUA]
    assert s.state == "rejected"
    conn = ws.connect()
    row = conn.execute("SELECT actor, action, detail FROM audit WHERE action = 'reject'").fetchone()
    assert (row[0], row[1], json.loads(row[2])) == ("张三", "reject", {"reason": "营业收入与统计局数据不符"})
    conn.close()
    # Nothing in force any more: a second 退回 is refused.
    with pytest.raises(IntakeError):
        reject_submission(ws, HUANGHUA, MARCH, "again", actor="张三", now=at("2025-04-04 09:05"))
    # The corrected file arrives on the 7th: judged by its own receipt, 2 days late.
    send(ws, filled(ws, HUANGHUA, MARCH, tmp_path / "v2.xlsx", CZ01__revenue_ytd=4800),
         "2025-04-07 15:00")
    [s] = [s for s in _status(ws) if s.county_code == HUANGHUA]
    assert (s.state, s.days_late) == ("late", 2)
    states = [v["state"] for v in history(ws, HUANGHUA, MARCH)["versions"]]
    assert states == ["returned", "current"]


# ------------------------------------------------------------------ command line


def test_cli_templates_ingest_status_history_reject(ws: Workspace, tmp_path: Path) -> None:
    runner = CliRunner()
    home = ["--home", str(ws.home)]
    r = runner.invoke(cli, [*home, "templates", "--month", "2025-03", "--county", HUANGHUA, "--json"])
    assert r.exit_code == 0, r.output
    [t] = json.loads(r.stdout)["templates"]
    assert (t["county_code"], t["period"]) == (HUANGHUA, "2025-03") and Path(t["path"]).exists()

    good = filled(ws, HUANGHUA, MARCH, tmp_path / "a.xlsx")
    bad = filled(ws, HUANGHUA, MARCH, tmp_path / "b.xlsx", CZ03__ent_total=-1)
    r = runner.invoke(cli, [*home, "ingest", str(bad), str(good), "--county", HUANGHUA,
                            "--received-at", "2025-04-05T20:00:00+08:00", "--json"])
    assert r.exit_code == 0, r.output          # a rejection is a verdict, not a failure
    doc = json.loads(r.stdout)
    assert [(f["verdict"], f["county_code"], f["period"]) for f in doc["files"]] == [
        ("rejected", HUANGHUA, "2025-03"), ("accepted", HUANGHUA, "2025-03")]
    p = doc["files"][0]["problems"][0]
    assert (p["code"], p["where"]) == ("negative_count", "填报表!C8 / CZ03 / ent_total")
    assert doc["summary"]["values"] == 60 and doc["summary"]["rejected"] == 1

    r = runner.invoke(cli, [*home, "status", "--month", "2025-03", "--json"])
    assert r.exit_code == 0
    st = json.loads(r.stdout)
    assert st["counties"][0]["state"] == "on_time" and st["counties"][1]["state"] == "missing"
    assert {"completeness", "timeliness", "period"} <= set(st)

    r = runner.invoke(cli, [*home, "reject", "--county", HUANGHUA, "--month", "2025-03", "--reason", "请核实"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, [*home, "history", "--county", HUANGHUA, "--month", "2025-03", "--json"])
    assert [v["state"] for v in json.loads(r.stdout)["versions"]] == ["rejected", "returned"]

    # Usage errors are failures: unknown county, bad time, missing file, nothing to send back.
    unknown = runner.invoke(cli, [*home, "ingest", str(good), "--county", "999999"])
    assert (unknown.exit_code, unknown.stderr) == (2, f"错误 / error: {UNKNOWN_999999}（见 --help）\n")
    assert runner.invoke(cli, [*home, "ingest", str(good), "--received-at", "yesterday"]).exit_code != 0
    assert runner.invoke(cli, [*home, "ingest", str(tmp_path / "nope.xlsx")]).exit_code != 0
    r = runner.invoke(cli, [*home, "reject", "--county", HUANGHUA, "--month", "2025-03", "--reason", "x"])
    assert r.exit_code == 1 and "没有可退回" in r.output


def test_cli_human_output_is_not_json(ws: Workspace, tmp_path: Path) -> None:
    good = filled(ws, HUANGHUA, MARCH, tmp_path / "a.xlsx", CZ01__rd_ytd="[bold]x[/bold]")
    r = CliRunner().invoke(cli, ["--home", str(ws.home), "ingest", str(good), "--county", HUANGHUA])
    assert r.exit_code == 0
    assert "[not_a_number]" in r.output and "│ 退回 " in r.output
    assert r.output.endswith("\n已受理 0，有提示 0，退回 1，未变化 0，存储数值 0\n")
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.stdout)


def test_database_is_plain_sqlite(ws: Workspace) -> None:
    # Other areas read through the functions in store.submissions; the file itself stays standard.
    conn = sqlite3.connect(ws.db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_cli_history_prints_submitted_text_literally(ws: Workspace, tmp_path: Path) -> None:
    from supervise.periods import Quarter

    q1 = Quarter(2025, 1)
    send(ws, filled(ws, HUANGHUA, q1, tmp_path / "v1.xlsx", CZ01__progress="[/x] 完成"), "2025-04-08 10:00")
    send(ws, filled(ws, HUANGHUA, q1, tmp_path / "v2.xlsx", CZ01__progress="[bold]完成[/bold] [/]"),
         "2025-04-09 10:00")
    r = CliRunner().invoke(cli, ["--home", str(ws.home), "history", "--county", HUANGHUA, "--quarter", "2025Q1"])
    assert r.exit_code == 0, r.output
    assert "[/x] 完成 → [bold]完成[/bold] [/]" in r.output
