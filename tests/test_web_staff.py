"""The staff console: the board, a submission's values and changes, 退回 (the county sees the reason
and is mailed), the bulletins, the run log and the outbox, and a run started from the page."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from supervise.intake import ingest_files
from supervise.periods import TZ
from supervise.workspace import Workspace

from .intake_corpus import at, filled, monthly_values
from .smtp_server import SmtpServer, configure, running_smtp
from .test_intake_return_notice import _contacts
from .web_support import HUANGHUA, MARCH, NOW, RENQIU, Clock, add_users, login, make_app

CONTACT = "jxj@huanghua.example"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    yield from running_smtp()


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture
def reported(ws: Workspace, tmp_path: Path) -> Workspace:
    """黄骅 sent March twice (revenue of CZ01 corrected), 任丘 once, two days late."""
    add_users(ws)
    reg = ws.registry
    first = filled(ws, HUANGHUA, MARCH, tmp_path / "first.xlsx")
    values = monthly_values(reg, HUANGHUA)
    values["CZ01"]["revenue_ytd"] = 6100.5
    second = filled(ws, HUANGHUA, MARCH, tmp_path / "second.xlsx", values=values)
    ingest_files(ws, [first], county=HUANGHUA, received_at=at("2025-04-02 09:00"), now=NOW)
    ingest_files(ws, [second], county=HUANGHUA, received_at=at("2025-04-03 09:30"), now=NOW)
    late = filled(ws, RENQIU, MARCH, tmp_path / "renqiu.xlsx")
    ingest_files(ws, [late], county=RENQIU, received_at=at("2025-04-07 11:00"), now=at("2025-04-08 09:00"))
    return ws


def test_the_board_shows_states_receipt_days_late_and_rates(reported: Workspace) -> None:
    b = login(make_app(reported, Clock(at("2025-04-08 09:00"))), "staff")
    r = b.get("/staff?period=2025-03")
    assert r.status_code == 200
    text = _text(r.text)
    assert "2025年3月报送情况" in text
    # judged on the first version (the correction of the 3rd does not make it late)
    assert re.search(r"130983 黄骅市 按时报送 2025-04-02 09:00", text)
    assert re.search(r"130982 任丘市 迟报 2025-04-07 11:00 2 ", text)     # due the 5th: two days late
    # 14 counties: 2 reported (14.3 %), 1 on time (7.1 %)
    assert "14.3%" in text and "7.1%" in text and "漏报" in text


def test_a_submission_page_shows_values_warnings_and_the_change_against_the_previous(reported: Workspace) -> None:
    b = login(make_app(reported), "staff")
    county = b.get(f"/staff/counties/{HUANGHUA}?period=2025-03").text
    links = re.findall(rf'href="(/staff/counties/{HUANGHUA}/2025-03/(\d+))"', county)
    assert len(links) == 2
    newest = max(links, key=lambda x: int(x[1]))[0]
    page = b.get(newest).text
    text = _text(page)
    assert "上一版 #" in text and "1 项数值变化" in text
    row = re.search(r'<tr class="changed">(.*?)</tr>', page, re.S)
    assert row is not None
    cells = _text(row.group(1))
    assert "CZ01" in cells and "revenue_ytd" in cells and "6,100.5" in cells and "5,000.5" in cells
    assert "#1 → #2" in _text(county) and "1 项变化" in _text(county)


def test_sending_back_mails_the_county_and_the_county_sees_the_reason(reported: Workspace, smtp: SmtpServer) -> None:
    ws = configure(_contacts(reported, {HUANGHUA: CONTACT}), smtp, recipients=[])
    app = make_app(ws, Clock(at("2025-04-04 15:00")))
    staff = login(app, "staff")
    reason = "CZ01营业收入与统计局快报不符，请核实后重报<script>"
    r = staff.post("/staff/reject", data={"csrf_token": staff.csrf, "county": HUANGHUA, "period": "2025-03",
                                          "reason": reason})
    assert r.status_code == 200
    text = _text(r.text)
    assert "已退回 黄骅市 2025年3月 的报送" in text and f"{CONTACT}：已发送" in text
    assert "<script>" not in r.text and "&lt;script&gt;" in r.text
    [mail] = [m for m in smtp.received if CONTACT in m.rcpt_tos]
    assert "【退回】" in mail.message["Subject"]
    county = login(app, "county-a").get("/county?period=2025-03")
    ctext = _text(county.text)
    assert "退回" in ctext and "CZ01营业收入与统计局快报不符" in ctext and "2025-04-04 15:00" in ctext
    board = _text(staff.get("/staff?period=2025-03").text)
    assert re.search(r"130983 黄骅市 退回 .*退回原因：CZ01营业收入与统计局快报不符", board)
    again = staff.post("/staff/reject", data={"csrf_token": staff.csrf, "county": HUANGHUA, "period": "2025-03",
                                              "reason": "再次"})
    assert again.status_code == 409 and "没有可退回的有效报送" in again.text
    conn = sqlite3.connect(ws.db_path)
    rows = conn.execute("SELECT username, action, outcome, county_code, period FROM web_audit WHERE action = 'reject' "
                        "ORDER BY id").fetchall()
    conn.close()
    assert rows == [("staff", "reject", "ok", HUANGHUA, "2025-03"), ("staff", "reject", "refused", HUANGHUA, "2025-03")]


def test_a_reject_needs_a_reason(reported: Workspace) -> None:
    staff = login(make_app(reported), "staff")
    r = staff.post("/staff/reject", data={"csrf_token": staff.csrf, "county": HUANGHUA, "period": "2025-03",
                                          "reason": "  "})
    assert r.status_code == 400 and "退回须填写原因" in r.text


def _all_counties(ws: Workspace, tmp_path: Path) -> None:
    paths = {code: filled(ws, code, MARCH, tmp_path / f"{code}.xlsx") for code in ws.registry.counties
             if ws.registry.counties[code].assessed}
    for code, path in paths.items():
        ingest_files(ws, [path], county=code, received_at=at("2025-04-02 09:00"), now=NOW)


def test_a_run_started_from_the_page_asks_first_and_is_logged(ws: Workspace, tmp_path: Path) -> None:
    add_users(ws)
    _all_counties(ws, tmp_path)
    clock = Clock(at("2025-04-03 12:00"))
    app = make_app(ws, clock)
    staff = login(app, "staff")
    early = _text(staff.get("/staff/run?period=2025-03").text)
    assert "尚未到期，现在不能考核" in early
    clock.now = datetime(2025, 4, 6, 9, 0, tzinfo=TZ)
    assert staff.get("/staff/run?period=2025-03").status_code == 302     # the session expired after 12 hours
    staff = login(app, "staff")
    confirm = staff.get("/staff/run?period=2025-03").text
    assert 'name="confirm"' in confirm and "尚未到期" not in confirm
    unconfirmed = staff.post("/staff/run", data={"csrf_token": staff.csrf, "period": "2025-03"})
    assert unconfirmed.status_code == 400
    done = staff.post("/staff/run", data={"csrf_token": staff.csrf, "period": "2025-03", "confirm": "yes"})
    assert done.status_code == 200, _text(done.text)
    text = _text(done.text)
    assert "运行完成" in text and "bulletin-2025-03.html" in text
    listing = staff.get("/staff/bulletins").text
    assert "bulletin-2025-03.xlsx" in listing
    page = staff.get("/staff/bulletins/2025-03/bulletin-2025-03.html")
    assert page.status_code == 200 and "关于2025年3月全市县域特色产业集群发展情况的通报" in page.text
    runs = _text(staff.get("/staff/runs").text)
    assert re.search(r"月度考核 2025-03 2025-04-06 09:00 \S+ 成功 网页", runs)
    conn = sqlite3.connect(ws.db_path)
    assert conn.execute("SELECT username, outcome, period FROM web_audit WHERE action = 'run'").fetchall() == [
        ("staff", "ok", "2025-03")]
    assert conn.execute("SELECT origin, state FROM job_runs WHERE job = 'run_month'").fetchall() == [
        ("web", "success")]
    conn.close()


def test_the_runs_page_shows_mail_waiting_in_the_outbox(reported: Workspace) -> None:
    ws = _contacts(reported, {HUANGHUA: CONTACT})
    text = ws.settings_path.read_text(encoding="utf-8").replace("port = 25\n", "port = 9\n", 1).replace(
        "retry_delay_seconds = 2.0", "retry_delay_seconds = 0.0")
    ws.settings_path.write_text(text + "\n", encoding="utf-8")   # a port nobody listens on
    app = make_app(Workspace(ws.home), Clock(at("2025-04-04 15:00")))
    staff = login(app, "staff")
    staff.post("/staff/reject", data={"csrf_token": staff.csrf, "county": HUANGHUA, "period": "2025-03",
                                      "reason": "请核实"})
    runs = _text(staff.get("/staff/runs").text)
    assert "发件箱中待发的邮件（1 封）" in runs and CONTACT in runs and "发送失败" in runs
