"""The period run with stand-in steps and a real SMTP server: idempotence, corrections, retry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from io import BytesIO

import pytest
from openpyxl import load_workbook

from supervise.jobs import JobFailed, collect, run_due, run_period
from supervise.periods import Month, Year
from supervise.store import runs
from supervise.workspace import Workspace

from .smtp_server import ADMIN, RECIPIENTS, SmtpServer, configure, running_smtp
from .test_jobs_support import FAKE_STEPS, NOW, SCORES, write_clusters, write_scores


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    yield from running_smtp()


MARCH = Month(2025, 3)
TITLE = "关于2025年3月全市县域特色产业集群发展情况的通报"


def _runs(ws: Workspace) -> list[runs.JobRun]:
    conn = ws.connect()
    try:
        return list(reversed(runs.recent_runs(conn, limit=100)))
    finally:
        conn.close()


def test_run_writes_spec_json_and_mails_each_recipient_once(ws: Workspace, smtp: SmtpServer) -> None:
    ws = configure(ws, smtp)
    result = run_period(ws, MARCH, now=NOW, steps=FAKE_STEPS)

    doc = result.to_json()
    assert doc["period"] == "2025-03"
    [a] = doc["assessments"]
    assert (a["rulebook"], a["version"]) == ("cz-monthly", "2025.1")
    # 黄骅 91.5 > 任丘 88.0 > 泊头 75.25
    assert [(r["county_name"], r["rank"]) for r in a["ranking"]] == [("黄骅市", 1), ("任丘市", 2), ("泊头市", 3)]
    assert set(doc["outputs"]) == {"xlsx", "html", "json"}
    assert [m["state"] for m in doc["delivery"]["mails"]] == ["sent", "sent"]

    for address in RECIPIENTS:
        [got] = smtp.to(address)
        msg = got.message
        assert msg["Subject"] == TITLE
        names = {p.get_filename() for p in msg.iter_attachments()}
        assert names == {f"{TITLE}.xlsx", f"{TITLE}.html"}
        xlsx = next(p for p in msg.iter_attachments() if p.get_filename().endswith(".xlsx"))
        assert load_workbook(BytesIO(xlsx.get_content())).active["A2"].value == "黄骅市"

    [record] = _runs(ws)
    assert (record.job, record.period, record.state, record.error) == ("run_month", "2025-03", "success", None)
    assert record.detail["content_hash"] == result.content_hash


def test_rerun_with_same_inputs_sends_nothing_and_a_correction_goes_out(ws: Workspace, smtp: SmtpServer) -> None:
    ws = configure(ws, smtp)
    first = run_period(ws, MARCH, now=NOW, steps=FAKE_STEPS)
    report = json.loads(first.outputs.json.read_text(encoding="utf-8"))

    again = run_period(ws, MARCH, now=NOW, steps=FAKE_STEPS)
    assert again.content_hash == first.content_hash
    assert [m.state for m in again.deliveries] == ["skipped", "skipped"]
    assert len(smtp.received) == 2
    assert json.loads(again.outputs.json.read_text(encoding="utf-8")) == report

    write_scores(ws, {**SCORES, "130981": 99.0})  # a county's data corrected: the ranking changes
    corrected = run_period(ws, MARCH, now=NOW, steps=FAKE_STEPS)
    assert corrected.content_hash != first.content_hash
    assert [m.state for m in corrected.deliveries] == ["sent", "sent"]
    assert len(smtp.received) == 4
    assert len(smtp.to(RECIPIENTS[0])) == 2
    assert smtp.to(RECIPIENTS[0])[1].message["Subject"] == f"【更正】{TITLE}（第2版）"


def test_resend_sends_again_and_no_deliver_sends_nothing(ws: Workspace, smtp: SmtpServer) -> None:
    ws = configure(ws, smtp)
    run_period(ws, MARCH, now=NOW, steps=FAKE_STEPS, deliver=False)
    assert smtp.received == []
    run_period(ws, MARCH, now=NOW, steps=FAKE_STEPS)
    assert len(smtp.received) == 2
    run_period(ws, MARCH, now=NOW, steps=FAKE_STEPS, resend=True)
    assert len(smtp.received) == 4


def test_server_down_mid_way_keeps_mail_then_the_next_collect_delivers_exactly_once(
    ws: Workspace, smtp: SmtpServer
) -> None:
    ws = configure(ws, smtp)
    smtp.refuse.add(RECIPIENTS[1])  # the server accepts the first recipient, refuses the second ...
    with pytest.raises(JobFailed, match="not delivered") as failed:
        run_period(ws, MARCH, now=NOW, steps=FAKE_STEPS)
    states = {d.recipient: d.state for d in failed.value.result.deliveries}
    assert states == {RECIPIENTS[0]: "sent", RECIPIENTS[1]: "failed"}
    [record] = _runs(ws)
    assert record.state == "error" and RECIPIENTS[1] in record.error
    [alert] = smtp.to(ADMIN)  # the administrator was told
    assert "任务失败" in alert.message["Subject"] and RECIPIENTS[1] in alert.message.get_content()

    smtp.stop()  # ... and then goes away entirely
    with pytest.raises(JobFailed):
        collect(ws, NOW, steps=FAKE_STEPS)
    assert list((ws.outbox_dir / "mail").glob("*.eml"))

    smtp.start()
    smtp.refuse.clear()
    result = collect(ws, NOW, steps=FAKE_STEPS)
    # the bulletin left over, and the alert about collect failing while the server was away
    assert sorted((d.recipient, d.state, d.retried) for d in result.deliveries) == [
        (ADMIN, "sent", True), (RECIPIENTS[1], "sent", True)]
    assert not list((ws.outbox_dir / "mail").glob("*.eml"))
    assert "collect" in smtp.to(ADMIN)[-1].message["Subject"]
    run_period(ws, MARCH, now=NOW, steps=FAKE_STEPS)  # nothing left to send
    assert len(smtp.to(RECIPIENTS[0])) == 1
    assert len(smtp.to(RECIPIENTS[1])) == 1
    assert [r.state for r in _runs(ws)] == ["error", "error", "success", "success"]


def test_failing_step_records_error_alerts_admin_and_leaves_no_running_record(
    ws: Workspace, smtp: SmtpServer
) -> None:
    ws = configure(ws, smtp)

    def broken(ws: Workspace, period: object, *, now: object) -> list[object]:
        raise ValueError("rulebook cz-monthly: weight must be a number")

    steps = FAKE_STEPS.__class__(FAKE_STEPS.collect_inbox, broken, FAKE_STEPS.render_bulletins)
    with pytest.raises(JobFailed, match=r"run_month 2025-03 失败 / failed: ValueError: rulebook cz-monthly"):
        run_period(ws, MARCH, now=NOW, steps=steps)
    [record] = _runs(ws)
    assert record.state == "error" and record.ended_at is not None
    assert "weight must be a number" in smtp.to(ADMIN)[0].message.get_content()
    assert not smtp.to(RECIPIENTS[0])


def test_run_due_picks_the_period_whose_deadline_passed(ws: Workspace, smtp: SmtpServer) -> None:
    ws = configure(ws, smtp, recipients=[])
    # 2025-04-06 08:00: March was due by 5 April 24:00; 2024 with Q4 by 10 January.
    assert str(run_due(ws, "month", now=NOW, steps=FAKE_STEPS).period) == "2025-03"
    assert run_due(ws, "year", now=NOW, steps=FAKE_STEPS).period == Year(2024)
    assert [(r.job, r.period) for r in _runs(ws)] == [("run_month", "2025-03"), ("run_year", "2024")]


def test_supervise_runs_lists_records_and_the_outbox(ws: Workspace, smtp: SmtpServer) -> None:
    from click.testing import CliRunner

    from supervise.cli import cli

    ws = configure(ws, smtp)
    run_period(ws, MARCH, now=NOW, steps=FAKE_STEPS)
    smtp.stop()
    write_scores(ws, {**SCORES, "130981": 99.0})
    with pytest.raises(JobFailed):
        run_period(ws, MARCH, now=NOW, steps=FAKE_STEPS)

    result = CliRunner().invoke(cli, ["--home", str(ws.home), "runs", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [(r["job"], r["period"], r["state"]) for r in doc["runs"]] == [
        ("run_month", "2025-03", "error"), ("run_month", "2025-03", "success")]
    # the two bulletins, and the alert about them that could not reach the administrator either
    assert sorted((d["kind"], d["recipient"]) for d in doc["outbox"]) == sorted(
        [("bulletin", r) for r in RECIPIENTS] + [("alert", ADMIN)])

    text = CliRunner().invoke(cli, ["--home", str(ws.home), "runs"], env={"COLUMNS": "400"}).stdout
    lines = text.splitlines()
    assert lines[0] == "编号  任务       报告期   开始                 结束                 用时  结果  来源    说明"
    assert lines[1].startswith("   2  run_month  2025-03  2025-04-06 08:00:00  2025-04-06 08:00:00  0秒   失败  "
                               "命令行  2 封邮件未能发出，已保存在 outbox 待下次重试")
    assert lines[2] == "   1  run_month  2025-03  2025-04-06 08:00:00  2025-04-06 08:00:00  0秒   成功  命令行"
    assert lines[3] == "outbox：3 封邮件待重发"
    assert f"alert  {ADMIN}（已尝试 2 次）：" in text

    both = CliRunner().invoke(cli, ["--home", str(ws.home), "run", "--month", "2025-03", "--due", "month"])
    assert both.exit_code == 2 and "报告期和 --due 只能给一个" in both.output


def test_a_correction_to_what_the_bulletin_prints_is_mailed_even_when_the_results_stay(
    ws: Workspace, smtp: SmtpServer
) -> None:
    """The cluster table (goals, texts, reporting status ...) is printed but read by no rulebook."""
    ws = configure(ws, smtp)
    write_clusters(ws, {"任丘市电线电缆产业集群": 120.5})
    first = run_period(ws, MARCH, now=NOW, steps=FAKE_STEPS)
    assert len(smtp.received) == 2

    again = run_period(ws, MARCH, now=NOW, steps=FAKE_STEPS)  # the same inputs: nothing goes out
    assert again.content_hash == first.content_hash
    assert [m.state for m in again.deliveries] == ["skipped", "skipped"]
    assert len(smtp.received) == 2

    write_clusters(ws, {"任丘市电线电缆产业集群": 135.0})  # a resubmission: same scores, new table
    corrected = run_period(ws, MARCH, now=NOW, steps=FAKE_STEPS)
    assert [r.to_json() for r in corrected.results] == [r.to_json() for r in first.results]
    assert corrected.content_hash != first.content_hash
    assert [m.state for m in corrected.deliveries] == ["sent", "sent"]
    [earlier, latest] = smtp.to(RECIPIENTS[0])
    assert "135.0" in latest.message.get_body(("html",)).get_content()
    # a correction, told as one: the scores, ranks and ledger stayed, the rest of the bulletin changed
    assert (earlier.message["Subject"], latest.message["Subject"]) == (TITLE, f"【更正】{TITLE}（第2版）")
    assert (first.bulletin_version, corrected.bulletin_version) == (1, 2)
    assert corrected.to_json()["correction"] == [
        "《cz-monthly》各县（市）得分、名次未变化。", "《cz-monthly》奖惩结算台账未变化（本期无结算）。",
        "各县（市）得分、名次和奖惩结算台账均未变化，更新的是集群情况、报送情况等其他内容。"]
    [record] = _runs(ws)[-1:]
    assert record.detail["content_hash"] == corrected.content_hash


def test_files_the_database_could_not_store_fail_collect_and_stop_the_run(
    ws: Workspace, smtp: SmtpServer
) -> None:
    """A lost batch (disk full, I/O error) is loud: collect fails and alerts; run does not assess."""
    from supervise.intake.results import FileResult, IngestReport

    ws = configure(ws, smtp)

    def lost_batch(ws: Workspace, *, now: object) -> IngestReport:
        return IngestReport([FileResult("130983-2025-03.xlsx", verdict="rejected", not_stored=True)])

    steps = FAKE_STEPS.__class__(lost_batch, FAKE_STEPS.run_assessments, FAKE_STEPS.render_bulletins)
    with pytest.raises(JobFailed, match="could not be stored"):
        collect(ws, NOW, steps=steps)
    with pytest.raises(JobFailed, match="could not be stored"):
        run_period(ws, MARCH, now=NOW, steps=steps)
    assert [r.state for r in _runs(ws)] == ["error", "error"]
    assert not (ws.reports_dir / "2025-03").exists()  # nothing published without those files
    assert all("任务失败" in m.message["Subject"] for m in smtp.to(ADMIN))
    assert len(smtp.to(ADMIN)) == 2
