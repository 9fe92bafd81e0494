"""催报: reminder windows around each deadline, and mail to counties that have not reported."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import date, datetime
from io import StringIO

import pytest
from click.testing import CliRunner

from supervise.cli import cli
from supervise.jobs import remind
from supervise.jobs.reminders import windows_at, windows_for
from supervise.periods import TZ, Deadlines, Month, Quarter
from supervise.store import runs
from supervise.workspace import Workspace

from .smtp_server import SmtpServer, configure, running_smtp
from .test_jobs_support import FAKE_STEPS, fake_status_from


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    yield from running_smtp()


DL = Deadlines(monthly_day=5, quarterly_day=10)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def test_windows_open_before_the_deadline_and_the_day_after() -> None:
    # March data are due 5 April: reminded from the 3rd (2 days before) and on the 6th (1 after).
    ws = windows_for(Month(2025, 3), DL, [2], [1])
    assert [(w.key, w.start, w.end) for w in ws] == [
        ("before2", date(2025, 4, 3), date(2025, 4, 6)),
        ("after1", date(2025, 4, 6), date(2025, 4, 7)),
    ]

    def open_at(text: str) -> list[tuple[str, str]]:
        return [(str(w.period), w.key) for w in windows_at(at(text), DL, [2], [1])]

    assert open_at("2025-04-02 09:00") == []
    assert open_at("2025-04-03 09:00") == [("2025-03", "before2")]
    assert open_at("2025-04-05 23:00") == [("2025-03", "before2")]  # a missed 3rd is caught up
    assert open_at("2025-04-06 09:00") == [("2025-03", "after1")]
    assert open_at("2025-04-07 09:00") == []
    assert open_at("2025-04-08 09:00") == [("2025Q1", "before2")]  # Q1 due 10 April
    assert open_at("2025-04-11 09:00") == [("2025Q1", "after1")]


def test_default_windows_are_before_and_on_the_deadline_day_never_after() -> None:
    # The default [deadlines]: remind_days_before = [2, 0], remind_days_after = []. March data
    # are due 5 April: reminded on the 3rd and on the 5th; on the 6th the run publishes 漏报.
    from supervise.workspace import Settings

    days = Settings().reminder_days
    assert (days.before, days.after) == ((2, 0), ())
    ws = windows_for(Month(2025, 3), DL, days.before, days.after)
    assert [(w.key, w.start, w.end) for w in ws] == [
        ("before2", date(2025, 4, 3), date(2025, 4, 5)),
        ("before0", date(2025, 4, 5), date(2025, 4, 6)),
    ]
    assert not any(w.after_deadline for w in ws)
    assert [w.key for w in windows_at(at("2025-04-05 23:00"), DL, days.before, days.after)] == ["before0"]
    assert windows_at(at("2025-04-06 09:00"), DL, days.before, days.after) == []


def _with_contacts(ws: Workspace, emails: dict[str, str]) -> Workspace:
    path = ws.reference_dir / "counties.csv"
    rows = list(csv.DictReader(StringIO(path.read_text(encoding="utf-8-sig"))))
    for row in rows:
        row["email"] = emails.get(row["county_code"], "")
    out = StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")
    return Workspace(ws.home)


CONTACTS = {
    "130983": "jxj@huanghua.example; zhang@huanghua.example",  # 黄骅市: two contacts
    "130982": "gxj@renqiu.example",                             # 任丘市
    "130981": "gxj@botou.example",                              # 泊头市 reported on time
}


def test_remind_mails_missing_and_rejected_counties_once_per_window(ws: Workspace, smtp: SmtpServer) -> None:
    ws = _with_contacts(configure(ws, smtp), CONTACTS)
    status = fake_status_from({"130983": "missing", "130982": "rejected", "130925": "missing"})
    steps = FAKE_STEPS.__class__(FAKE_STEPS.collect_inbox, FAKE_STEPS.run_assessments,
                                 FAKE_STEPS.render_bulletins, status)

    result = remind(ws, at("2025-04-03 09:00"), steps=steps)
    assert sorted(r["recipient"] for r in result.reminded) == [
        "gxj@renqiu.example", "jxj@huanghua.example", "zhang@huanghua.example"]
    assert result.no_address == [{"county_code": "130925", "county_name": "盐山县"}]
    assert smtp.to("gxj@botou.example") == []

    msg = smtp.to("jxj@huanghua.example")[0].message
    assert msg["Subject"] == "【催报】请报送2025年3月县域特色产业集群发展月报数据（截止2025年4月5日24时）"
    body = msg.get_content()
    assert body.startswith("黄骅市：")
    assert "截至2025年4月3日，我们尚未收到贵单位2025年3月集群发展月报数据。" in body
    assert "报送截止时间为2025年4月5日24时，请按时报送" in body
    assert "需报送的集群：" in body
    rejected = smtp.to("gxj@renqiu.example")[0].message.get_content()
    assert "未能通过审核（数据校验未通过，待重新报送）" in rejected

    # Same window (the 4th): nothing new. On the deadline day (the 5th): once more. After it (the
    # 6th, when the monthly run has published 漏报): no reminder.
    assert remind(ws, at("2025-04-04 09:00"), steps=steps).reminded == []
    assert len(smtp.received) == 3
    last = remind(ws, at("2025-04-05 09:00"), steps=steps)
    assert [w["window"] for w in last.windows] == ["before0"] and len(last.reminded) == 3
    assert "报送截止时间为2025年4月5日24时，请按时报送" in smtp.to("gxj@renqiu.example")[1].message.get_content()
    assert remind(ws, at("2025-04-06 09:00"), steps=steps).windows == []

    conn = ws.connect()
    sent = [d for d in runs.recent_deliveries(conn) if d.kind == "reminder"]
    history = [r.state for r in runs.recent_runs(conn, job="remind")]
    conn.close()
    assert len(sent) == 6 and {d.state for d in sent} == {"sent"}
    assert history == ["success"] * 4


def test_quarterly_reminder_text(ws: Workspace, smtp: SmtpServer) -> None:
    ws = _with_contacts(configure(ws, smtp), CONTACTS)
    steps = FAKE_STEPS.__class__(FAKE_STEPS.collect_inbox, FAKE_STEPS.run_assessments,
                                 FAKE_STEPS.render_bulletins, fake_status_from({"130982": "missing"}))
    result = remind(ws, at("2025-04-08 09:00"), Quarter(2025, 1), steps=steps)
    assert [w["window"] for w in result.windows] == ["before2"]
    msg = smtp.to("gxj@renqiu.example")[0].message
    assert msg["Subject"] == "【催报】请报送2025年第一季度县域特色产业集群季度更新数据（截止2025年4月10日24时）"


def test_supervise_remind_by_hand_sends_once_that_day(ws: Workspace, smtp: SmtpServer) -> None:
    ws = _with_contacts(configure(ws, smtp), {"130982": "gxj@renqiu.example"})
    runner = CliRunner()
    first = runner.invoke(cli, ["--home", str(ws.home), "remind", "--month", "2025-03", "--json"])
    assert first.exit_code == 0, first.output
    doc = json.loads(first.stdout)
    # Nobody has reported: every county is missing; only 任丘市 has a contact.
    assert [r["county_name"] for r in doc["reminded"]] == ["任丘市"]
    assert len(doc["no_address"]) == 13
    again = runner.invoke(cli, ["--home", str(ws.home), "remind", "--month", "2025-03", "--json"])
    assert json.loads(again.stdout)["reminded"] == []
    assert len(smtp.to("gxj@renqiu.example")) == 1
