"""A period is assessed only once its deadline has passed (#9): run, explain and status before it,
the provisional preview (marked on every page, stored nowhere, never mailed), reminders, and the
periods the scheduler picks. Through the real CLI, with the CLI's clock set by the test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import docx
import openpyxl
import pytest
from click.testing import CliRunner, Result

from supervise.cli import cli
from supervise.jobs.schedule import placeholders
from supervise.periods import TZ, Deadlines, Month, Quarter, Year
from supervise.scheduler import missed_jobs
from supervise.store import runs
from supervise.workspace import Workspace

from .conftest import at, store_submission
from .smtp_server import RECIPIENTS, SmtpServer, configure, running_smtp
from .test_assess_integration import december_row
from .test_bulletin_pdf import pages
from .test_jobs_remind import _with_contacts

HAIXING = "130924"   # 海兴县: has not reported December 2026 by the 4th of January
HUANGHUA = "130983"  # 黄骅市
DECEMBER = "2026-12"
TITLE = "关于2026年12月全市县域特色产业集群发展情况的通报"
MARK = "预览（未到报送截止时间）"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    yield from running_smtp()


def set_clock(monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    """The CLI's clock (the one place that reads the real one) reads `when`, Asia/Shanghai."""
    t = at(when)
    for module in ("supervise.cli_jobs", "supervise.cli_assess", "supervise.cli_intake", "supervise.cli_export"):
        monkeypatch.setattr(f"{module}.now", lambda: t, raising=False)  # not every command reads it


def invoke(ws: Workspace, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--home", str(ws.home), *args], env={"COLUMNS": "400"})  # rows unwrapped


def report_december(ws: Workspace, *, but: tuple[str, ...] = (HAIXING,), period: str = DECEMBER,
                    received: str = "2027-01-03T10:00:00+08:00") -> None:
    """Every assessed county but `but` sends the same figures for `period`, on time."""
    conn = ws.connect()
    try:
        for c in ws.registry.assessed_counties():
            if c.code not in but:
                store_submission(conn, c.code, period, {f"X{c.code}": december_row(50, 5)}, received)
    finally:
        conn.close()


def job_runs(ws: Workspace) -> list[tuple[str, str | None, str]]:
    conn = ws.connect()
    try:
        return [(r.job, r.period, r.state) for r in reversed(runs.recent_runs(conn, limit=100))]
    finally:
        conn.close()


def stored_assessments(ws: Workspace) -> int:
    conn = ws.connect()
    try:
        return int(conn.execute("SELECT COUNT(*) FROM assessments").fetchone()[0])
    finally:
        conn.close()


# --------------------------------------------------------------------------- run


def test_run_before_the_deadline_is_refused_naming_it(
    ws: Workspace, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = configure(ws, smtp)
    report_december(ws, but=(), period="2026-11", received="2026-12-01T10:00:00+08:00")  # all 14, on time
    set_clock(monkeypatch, "2026-12-02 10:00")
    for month in ("2026-12", "2026-11"):  # the month not over yet, and the one due on the 5th
        result = invoke(ws, "run", "--month", month)
        assert result.exit_code == 1, result.output
        [line] = result.stderr.strip().splitlines()
        assert "--provisional" in line and "尚未到期" in line
    assert "2026年11月的数据报送截止时间为2026年12月5日24时，尚未到期" in line

    set_clock(monkeypatch, "2026-12-05 23:59:59")  # the last second of the due day: still open
    assert invoke(ws, "run", "--month", "2026-11").exit_code == 1
    assert not (ws.reports_dir / "2026-11").exists() and not (ws.reports_dir / "2026-12").exists()
    assert job_runs(ws) == [] and stored_assessments(ws) == 0 and smtp.received == []

    set_clock(monkeypatch, "2026-12-06 00:00")  # 24:00 of the 5th: due
    result = invoke(ws, "run", "--month", "2026-11", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["provisional"] is False
    assert [m["state"] for m in doc["delivery"]["mails"]] == ["sent", "sent"]
    assert job_runs(ws) == [("run_month", "2026-11", "success")]


def test_run_of_the_current_month_is_refused_by_the_real_clock(ws: Workspace) -> None:
    """No clock set: the month now running is never due, whatever day the tests run on."""
    today = datetime.now(TZ)
    month = Month(today.year, today.month)
    result = invoke(ws, "run", "--month", str(month), "--no-deliver")
    assert result.exit_code == 1
    assert f"{month.label}的数据报送截止时间为" in result.stderr
    assert not ws.report_dir(month).exists()


def test_a_quarter_and_a_year_wait_for_the_deadline_of_their_update(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_clock(monkeypatch, "2027-01-08 09:00")  # December was due on the 5th, Q4 is due on the 10th
    quarter = invoke(ws, "run", "--quarter", "2026Q4", "--no-deliver")
    assert quarter.exit_code == 1 and "2026年第四季度的数据报送截止时间为2027年1月10日24时" in quarter.stderr
    year = invoke(ws, "run", "--year", "2026", "--no-deliver")
    assert year.exit_code == 1
    assert "2026年的数据报送截止时间为2027年1月10日24时（2026年第四季度集群季度更新）" in year.stderr


def test_provisional_preview_is_marked_on_every_page_never_stored_and_never_mailed(
    ws: Workspace, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = configure(ws, smtp)
    report_december(ws)  # 13 counties on 3 January; 海兴 has until the 5th
    set_clock(monkeypatch, "2027-01-04 10:00")
    result = invoke(ws, "run", "--month", DECEMBER, "--provisional", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["provisional"], doc["preview"]) == (True, MARK)
    assert doc["bulletin_version"] is None                 # a preview is never a version of the bulletin
    assert doc["delivery"]["delivered"] is False and doc["delivery"]["mails"] == []
    assert "预览不发送" in doc["delivery"]["skipped"]
    [a] = doc["assessments"]
    assert a["assessable"] is True and a["reasons"] == []
    rows = {r["county_code"]: r for r in a["ranking"]}
    # 海兴 has not reported, but the deadline is still ahead: 未到截止, no 漏报 deduction, no points.
    assert (rows[HAIXING]["reporting_state"], rows[HAIXING]["deductions"], rows[HAIXING]["score"]) == (
        "not_due", 0, 0.0)
    assert rows[HAIXING]["rank"] == 14
    # The 13 others sent the same figures: growth, tax, tech_invest, park_rate equal → 25 + 15 + 15 + 20;
    # 黄骅's above_new: (1 + 2) / (22 (its 2026 target) × 12/12) × 25 = 3.409… → 78.41.
    assert rows[HUANGHUA]["score"] == 78.41

    folder = ws.report_dir(DECEMBER)
    assert sorted(p.name for p in folder.iterdir()) == [
        "bulletin-2026-12-provisional.docx", "bulletin-2026-12-provisional.html", "bulletin-2026-12-provisional.pdf",
        "bulletin-2026-12-provisional.xlsx", "email-2026-12-provisional.html", "results-2026-12-provisional.json"]
    assert doc["outputs"]["html"].endswith("bulletin-2026-12-provisional.html")
    page = (folder / "bulletin-2026-12-provisional.html").read_text(encoding="utf-8")
    assert f"<title>【{MARK}】{TITLE}</title>" in page
    assert f'<div class="preview-watermark" aria-hidden="true">{MARK}</div>' in page  # fixed: every printed page
    assert page.count(f"{MARK}：本页不是正式通报") == 2                             # at the top and at the end
    assert "未到截止" in page and "截止前尚未报送1个" in page
    assert MARK in (folder / "email-2026-12-provisional.html").read_text(encoding="utf-8")
    assert json.loads((folder / "results-2026-12-provisional.json").read_text(encoding="utf-8"))["provisional"]

    book = openpyxl.load_workbook(folder / "bulletin-2026-12-provisional.xlsx")
    assert book.worksheets[0]["A1"].value.startswith(MARK)  # the cover's banner
    for sheet in book.worksheets:
        for part in (sheet.oddHeader, sheet.evenHeader, sheet.firstHeader):
            assert part.center.text == MARK, sheet.title
        for part in (sheet.oddFooter, sheet.evenFooter, sheet.firstFooter):  # the mark beside the page numbers
            assert part.center.text.endswith(f"2026年12月\n{MARK}　第 &P 页，共 &N 页"), sheet.title
        assert MARK in sheet["A1"].value, sheet.title
    # The Word and PDF 通报 say it right above the title: not the official document.
    banner = f"{MARK}：本文不是正式通报，不排名公布、不发送"
    paragraphs = [p.text for p in docx.Document(str(folder / "bulletin-2026-12-provisional.docx")).paragraphs]
    assert paragraphs[paragraphs.index(TITLE) - 1] == banner
    assert banner in "".join(pages(folder / "bulletin-2026-12-provisional.pdf")[0].split())

    assert smtp.received == []
    assert stored_assessments(ws) == 0                     # nothing for the real run to reuse
    assert job_runs(ws) == [("preview_month", DECEMBER, "success")]

    # After the deadline the real run: 海兴 is 漏报 (−10), the bulletin is dated today, and mailed.
    set_clock(monkeypatch, "2027-01-06 08:00")
    result = invoke(ws, "run", "--month", DECEMBER, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["provisional"] is False and "preview" not in doc
    assert (doc["bulletin_version"], doc["correction"]) == (1, [])  # the first, whatever was previewed
    rows = {r["county_code"]: r for r in doc["assessments"][0]["ranking"]}
    assert (rows[HAIXING]["reporting_state"], rows[HAIXING]["deductions"], rows[HAIXING]["score"]) == (
        "missing", 10, -10.0)
    assert rows[HUANGHUA]["score"] == 78.41
    page = (folder / "bulletin-2026-12.html").read_text(encoding="utf-8")
    assert "预览" not in page and "2027年1月6日" in page
    assert [m.message["Subject"] for m in smtp.received] == [TITLE, TITLE]
    assert [len(smtp.to(r)) for r in RECIPIENTS] == [1, 1]
    assert (folder / "bulletin-2026-12-provisional.html").exists()  # the preview was never overwritten
    # The preview counts for nothing: catch-up still sees a run_month to do until the real one ran.
    assert job_runs(ws) == [("preview_month", DECEMBER, "success"), ("run_month", DECEMBER, "success")]


def test_provisional_needs_a_period(ws: Workspace) -> None:
    result = invoke(ws, "run", "--provisional")
    assert result.exit_code == 2 and "--provisional previews a period" in result.stderr


# --------------------------------------------------------------------------- explain, status, export


def test_explain_before_the_deadline_is_refused_unless_provisional(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    report_december(ws)
    set_clock(monkeypatch, "2027-01-04 10:00")
    refused = invoke(ws, "explain", "--county", HAIXING, "--month", DECEMBER)
    assert refused.exit_code == 1
    assert "2026年12月的数据报送截止时间为2027年1月5日24时，尚未到期，现在不能解释得分" in refused.stderr

    result = invoke(ws, "explain", "--county", HAIXING, "--month", DECEMBER, "--provisional", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["provisional"], doc["preview"]) == (True, MARK)
    [a] = doc["assessments"]
    assert (a["reporting_state"], a["deductions"], a["total"], a["rank"]) == ("not_due", [], 0.0, 14)

    text = invoke(ws, "explain", "--county", HAIXING, "--month", DECEMBER, "--provisional")
    assert text.exit_code == 0 and text.stdout.splitlines()[0] == MARK
    assert "报送情况：未到截止" in text.stdout and "漏报" not in text.stdout

    set_clock(monkeypatch, "2027-01-06 08:00")
    after = json.loads(invoke(ws, "explain", "--county", HAIXING, "--month", DECEMBER, "--json").stdout)
    assert after["provisional"] is False
    assert after["assessments"][0]["reporting_state"] == "missing"
    assert after["assessments"][0]["deduction_total"] == 10


def test_status_before_the_deadline_shows_not_due_instead_of_missing(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    report_december(ws)
    set_clock(monkeypatch, "2027-01-04 10:00")
    doc = json.loads(invoke(ws, "status", "--month", DECEMBER, "--json").stdout)
    haixing = next(c for c in doc["counties"] if c["county_code"] == HAIXING)
    assert (haixing["state"], haixing["state_label"]) == ("not_due", "未到截止")
    assert doc["counts"] == {"on_time": 13, "late": 0, "missing": 0, "rejected": 0, "not_due": 1}
    assert doc["deadline_passed"] is False
    assert doc["note"] == ("2026年12月的报送截止时间为2027年1月5日24时，尚未到期：尚未报送的县（市）显示为“未到截止”，"
                           "不计漏报")
    text = invoke(ws, "status", "--month", DECEMBER)
    assert text.exit_code == 0, text.output
    [row] = [ln for ln in text.stdout.splitlines() if "海兴县" in ln]  # the console may be narrow: no codes
    assert "未到截止" in row and "漏报" not in row

    exported = ws.home / "december.csv"
    assert invoke(ws, "export", "--month", DECEMBER, "--out", str(exported)).exit_code == 0
    assert "海兴县,CZ4" in exported.read_text(encoding="utf-8-sig")
    assert [ln for ln in exported.read_text(encoding="utf-8-sig").splitlines() if ln.startswith(HAIXING)][0].split(
        ",")[4] == "未到截止"

    set_clock(monkeypatch, "2027-01-06 00:00")
    doc = json.loads(invoke(ws, "status", "--month", DECEMBER, "--json").stdout)
    assert next(c for c in doc["counties"] if c["county_code"] == HAIXING)["state"] == "missing"
    assert doc["counts"]["missing"] == 1 and doc["counts"]["not_due"] == 0
    assert doc["deadline_passed"] is True and "note" not in doc


# --------------------------------------------------------------------------- remind


def test_remind_before_the_deadline_still_works_and_a_period_not_open_is_refused(
    ws: Workspace, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = _with_contacts(configure(ws, smtp), {HAIXING: "gxj@haixing.example"})
    report_december(ws)
    set_clock(monkeypatch, "2027-01-03 09:00")  # two days before the deadline: the before2 window
    result = invoke(ws, "remind", "--month", DECEMBER, "--json")
    assert result.exit_code == 0, result.output
    assert [(r["county_code"], r["window"]) for r in json.loads(result.stdout)["reminded"]] == [(HAIXING, "before2")]
    [mail] = smtp.to("gxj@haixing.example")
    assert "截止2027年1月5日24时" in mail.message["Subject"]

    early = invoke(ws, "remind", "--month", "2027-01")
    assert early.exit_code == 1
    assert ("2027年1月的报送尚未开始（各县（市）现在报送的是2026年12月集群发展月报，截止2027年1月5日24时），不能催报"
            in early.stderr)
    assert invoke(ws, "remind", "--quarter", "2027Q1").exit_code == 1
    assert invoke(ws, "remind", "--quarter", "2026Q4").exit_code == 0  # due on the 10th: open now
    assert len(smtp.to("gxj@haixing.example")) == 2


# --------------------------------------------------------------------------- the scheduler's periods


@pytest.mark.parametrize("monthly_day, quarterly_day", [(5, 10), (15, 10), (27, 3)])
def test_the_period_due_now_is_never_one_not_yet_due(monthly_day: int, quarterly_day: int) -> None:
    """Every 5 hours through two years: `due_now` (what `run --due`, the scheduler and catch-up
    run) is due, everything it reads is due, and the next period is not."""
    d = Deadlines(monthly_day=monthly_day, quarterly_day=quarterly_day)
    t = at("2025-12-20 00:00")
    while t < at("2027-12-31 00:00"):
        for kind in ("month", "quarter", "year"):
            p = d.due_now(kind, t)  # type: ignore[arg-type]
            assert d.is_due(d.last_due(p), t), (kind, p, t)
            assert d.is_due(p, t), (kind, p, t)
            assert not d.is_due(d.last_due(p.next()), t), (kind, p, t)
        t += timedelta(hours=5)


def test_quarterly_run_waits_for_its_last_month_when_that_is_due_later() -> None:
    d = Deadlines(monthly_day=15, quarterly_day=10)
    assert d.last_due(Quarter(2026, 4)) == Month(2026, 12)
    assert d.due_now("quarter", at("2027-01-12 09:00")) == Quarter(2026, 3)  # December due on the 15th
    assert d.due_now("quarter", at("2027-01-16 08:30")) == Quarter(2026, 4)
    assert d.due_now("year", at("2027-01-12 09:00")) == Year(2025)
    # ... and so does the schedule: the quarterly and annual runs fire the day after the later deadline
    assert placeholders({"monthly_day": 15, "quarterly_day": 10})["quarterly_after"] == "16"
    assert placeholders({"monthly_day": 5, "quarterly_day": 10})["quarterly_after"] == "11"


def test_run_due_and_catch_up_before_a_deadline_take_the_period_before(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    report_december(ws, but=(), period="2026-10", received="2026-11-03T10:00:00+08:00")
    set_clock(monkeypatch, "2026-12-05 23:00")  # November is due in an hour
    result = invoke(ws, "run", "--due", "month", "--no-deliver", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["period"] == "2026-10"
    # The server was down from 1 November: the run_month missed on 6 November is October's.
    conn = ws.connect()
    rid = runs.start_run(conn, "collect", None, at("2026-11-01 08:05"), origin="scheduler")
    runs.finish_run(conn, rid, "success", at("2026-11-01 08:05"))
    conn.close()
    assert ("run_month", "2026-10") not in {(e.name, p) for e, p, _ in missed_jobs(ws, at("2026-12-05 23:00"))}
    assert {p for e, p, _ in missed_jobs(ws, at("2026-12-06 08:01")) if e.name == "run_month"} == {"2026-11"}
