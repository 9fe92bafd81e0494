"""Mail through a real SMTP server on 127.0.0.1: what recipients get, the outbox, the log."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from io import BytesIO
from pathlib import Path

import pytest
from openpyxl import load_workbook

from supervise.delivery import (
    Attachment,
    DeliveryError,
    Outbox,
    SmtpSettings,
    alert_admin,
    build_message,
    html_to_text,
    send,
)
from supervise.periods import TZ
from supervise.store import runs
from supervise.workspace import Workspace

from .smtp_server import ADMIN, SmtpServer, configure, running_smtp


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    yield from running_smtp()


NOW = datetime(2025, 4, 6, 8, 0, tzinfo=TZ)
TITLE = "关于2025年3月全市县域特色产业集群发展情况的通报"


def _xlsx(path: Path) -> Path:
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["县（市、区）", "得分"])
    wb.active.append(["任丘市", 91.5])
    wb.save(path)
    return path


def _message(tmp_path: Path, recipient: str) -> bytes:
    page = tmp_path / "b.html"
    page.write_text(f"<html><body><h1>{TITLE}</h1><p>任丘市 第1名</p></body></html>", encoding="utf-8")
    msg = build_message(
        sender="bulletin@bureau.example", recipient=recipient, subject=TITLE,
        text=html_to_text(page.read_text(encoding="utf-8")), html=page.read_text(encoding="utf-8"),
        attachments=[Attachment(_xlsx(tmp_path / "b.xlsx"), f"{TITLE}.xlsx"), Attachment(page, f"{TITLE}.html")],
        now=NOW, sender_name="沧州市工业和信息化局",
    )
    return msg.as_bytes()


def test_recipient_reads_chinese_subject_body_and_attachments(tmp_path: Path, smtp: SmtpServer) -> None:
    settings = SmtpSettings(host=smtp.host, port=smtp.port, sender="bulletin@bureau.example", timeout=5)
    send(settings, _message(tmp_path, "chief@bureau.example"), "chief@bureau.example")

    [got] = smtp.received
    assert got.rcpt_tos == ["chief@bureau.example"]
    msg = got.message
    assert msg["Subject"] == TITLE
    assert "沧州市工业和信息化局" in str(msg["From"])
    assert msg.get_body(("plain",)).get_content().startswith(TITLE)
    assert "任丘市 第1名" in msg.get_body(("html",)).get_content()
    files = {part.get_filename(): part for part in msg.iter_attachments()}
    assert set(files) == {f"{TITLE}.xlsx", f"{TITLE}.html"}
    # RFC 2231 on the wire (filename*0*=utf-8''%E5..., continued), decoded back to Chinese above.
    assert b"filename*0*=utf-8''%E5%85%B3%E4%BA%8E2025" in got.raw
    sheet = load_workbook(BytesIO(files[f"{TITLE}.xlsx"].get_content())).active
    assert [c.value for c in sheet[2]] == ["任丘市", 91.5]


def test_refused_recipient_is_an_error_not_a_success(tmp_path: Path, smtp: SmtpServer) -> None:
    smtp.refuse.add("gone@bureau.example")
    settings = SmtpSettings(host=smtp.host, port=smtp.port, sender="bulletin@bureau.example", timeout=5)
    with pytest.raises(DeliveryError, match="550"):
        send(settings, _message(tmp_path, "gone@bureau.example"), "gone@bureau.example")
    assert smtp.received == []


def test_unreachable_server_is_one_line_error(tmp_path: Path) -> None:
    down = SmtpServer()  # never started: nothing listens on its port
    settings = SmtpSettings(host=down.host, port=down.port, sender="b@bureau.example", timeout=2)
    with pytest.raises(DeliveryError, match=f"cannot deliver via 127.0.0.1:{down.port}"):
        send(settings, b"Subject: x\r\n\r\nx\r\n", "x@bureau.example")


def _outbox(ws: Workspace) -> tuple[Outbox, object]:
    conn = ws.connect()
    return Outbox.open(ws, conn, sleep=lambda s: None), conn


def test_outbox_keeps_failed_mail_and_sends_it_once_when_the_server_is_back(
    ws: Workspace, tmp_path: Path, smtp: SmtpServer
) -> None:
    ws = configure(ws, smtp)
    box, conn = _outbox(ws)
    smtp.stop()
    d = box.queue(kind="bulletin", period="2025-03", recipient="chief@bureau.example", subject=TITLE,
                  content_hash="h1", message=lambda: build_message(
                      sender="b@bureau.example", recipient="chief@bureau.example", subject=TITLE,
                      text="正文", now=NOW), now=NOW)
    assert d is not None
    outcome = box.deliver(d, NOW)
    assert outcome.state == "failed"
    row = runs.get_delivery(conn, d.id)
    assert row.state == "failed" and row.attempts == 2 and "cannot deliver" in row.last_error
    eml = ws.home / f"outbox/mail/{d.id}.eml"
    assert row.message_path == f"outbox/mail/{d.id}.eml" and eml.exists()

    # The same mail queued again (next run) does not make a second copy.
    again = box.queue(kind="bulletin", period="2025-03", recipient="chief@bureau.example", subject=TITLE,
                      content_hash="h1", message=lambda: pytest.fail("must not rebuild"), now=NOW)
    assert again.id == d.id

    smtp.start()
    [retried] = box.flush(NOW)
    assert retried.state == "sent" and retried.retried
    assert box.flush(NOW) == []
    assert len(smtp.to("chief@bureau.example")) == 1
    assert not eml.exists()
    assert runs.get_delivery(conn, d.id).state == "sent"
    # Sent once: queueing that content again is a no-op.
    assert box.queue(kind="bulletin", period="2025-03", recipient="chief@bureau.example", subject=TITLE,
                     content_hash="h1", message=lambda: pytest.fail("must not rebuild"), now=NOW) is None
    conn.close()


def test_newer_content_supersedes_unsent_older_mail(ws: Workspace, smtp: SmtpServer) -> None:
    ws = configure(ws, smtp)
    box, conn = _outbox(ws)

    def q(h: str) -> runs.Delivery | None:
        return box.queue(kind="bulletin", period="2025-03", recipient="chief@bureau.example", subject=TITLE,
                         content_hash=h, message=lambda: build_message(
                             sender="b@bureau.example", recipient="chief@bureau.example", subject=h,
                             text=h, now=NOW), now=NOW)

    old = q("old")
    q("new")
    assert runs.get_delivery(conn, old.id).state == "superseded"
    box.flush(NOW)
    assert [r.message["Subject"] for r in smtp.received] == ["new"]
    conn.close()


def test_admin_alert_and_loud_log_when_even_that_fails(
    ws: Workspace, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    ws = configure(ws, smtp)
    assert alert_admin(ws, "【supervise】任务失败：run_month 2025-03", "原因：测试", now=NOW)
    [got] = smtp.to(ADMIN)
    assert got.message["Subject"] == "【supervise】任务失败：run_month 2025-03"

    smtp.stop()
    with caplog.at_level(logging.CRITICAL, logger="supervise.delivery"):
        assert not alert_admin(ws, "【supervise】任务失败：collect", "原因：测试", now=NOW)
    assert "ALERT NOT DELIVERED" in caplog.text and "任务失败：collect" in caplog.text
    conn = ws.connect()
    states = [(d.kind, d.state) for d in runs.recent_deliveries(conn)]
    conn.close()
    assert states == [("alert", "failed"), ("alert", "sent")]
    # The failed alert waits in the outbox and goes with the next flush once the server is back.
    assert len(list((ws.home / "outbox" / "mail").glob("*.eml"))) == 1
    smtp.start()
    conn = ws.connect()
    [retried] = Outbox.open(ws, conn).flush(NOW)
    conn.close()
    assert retried.kind == "alert" and retried.state == "sent"
    assert [m.message["Subject"] for m in smtp.to(ADMIN)][-1] == "【supervise】任务失败：collect"


def test_html_to_text_keeps_words_and_drops_markup() -> None:
    text = html_to_text("<html><head><style>p{}</style></head><body><h1>通报</h1><table>"
                        "<tr><td>1</td><td>任丘市</td></tr></table><p>a &amp; b</p></body></html>")
    assert text == "通报\n\n1 任丘市\n\na & b\n"


def test_queueing_a_resend_supersedes_every_unsent_copy_through_the_store(ws: Workspace, smtp: SmtpServer) -> None:
    ws = configure(ws, smtp)
    box, conn = _outbox(ws)
    smtp.stop()

    def q(h: str, resend: bool = False) -> runs.Delivery | None:
        return box.queue(kind="bulletin", period="2025-03", recipient="chief@bureau.example", subject=TITLE,
                         content_hash=h, message=lambda: build_message(
                             sender="b@bureau.example", recipient="chief@bureau.example", subject=h,
                             text=h, now=NOW), now=NOW, resend=resend)

    first = q("h1")
    box.deliver(first, NOW)  # failed: waits in the outbox
    second = q("h1", resend=True)
    assert second.id != first.id and runs.get_delivery(conn, first.id).state == "superseded"

    # keep_hash=None: every unsent mail of that recipient and period goes
    gone = runs.supersede_unsent(conn, kind="bulletin", period="2025-03", recipient="chief@bureau.example")
    assert [d.id for d in gone] == [second.id]
    assert runs.unsent_deliveries(conn) == []
    conn.close()


def test_one_atomic_write_and_mail_under_mail_dir(ws: Workspace, smtp: SmtpServer) -> None:
    import supervise.export
    import supervise.jobs.render
    from supervise.delivery import mail_dir
    from supervise.workspace import atomic_write

    assert supervise.jobs.render.atomic_write is atomic_write is supervise.export.atomic_write
    target = ws.home / "x" / "y.bin"
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two" and [p.name for p in target.parent.iterdir()] == ["y.bin"]

    ws = configure(ws, smtp)
    box, conn = _outbox(ws)
    smtp.stop()
    d = box.queue(kind="alert", period=None, recipient=ADMIN, subject="s", content_hash="h",
                  message=lambda: build_message(sender="b@bureau.example", recipient=ADMIN, subject="s",
                                                text="t", now=NOW), now=NOW)
    assert d is not None and d.message_path is not None
    assert (ws.home / d.message_path).parent == mail_dir(ws)
    conn.close()


def test_settings_accessors_read_the_merged_settings(ws: Workspace, smtp: SmtpServer) -> None:
    from supervise.workspace import Settings

    defaults = Settings()
    assert defaults.bureau.city == "沧州市" and "工业和信息化局" in defaults.bureau.issuer
    assert (defaults.reminder_days.before, defaults.reminder_days.after) == ((2, 0), ())
    assert (defaults.jobs.lock_wait, defaults.jobs.misfire_grace) == (300.0, 3600)
    assert defaults.smtp == SmtpSettings(host="127.0.0.1", port=25, sender="supervise@localhost", timeout=30.0)

    ws = configure(ws, smtp, extra='\n[bureau]\nissuer = "某某局"\n[deadlines]\nremind_days_after = [1, 3]\n')
    s = ws.settings
    assert s.bureau.issuer == "某某局" and s.bureau.city == "沧州市"
    assert s.reminder_days.after == (1, 3)
    assert (s.smtp.port, s.smtp.timeout, s.delivery.attempts, s.delivery.admin) == (smtp.port, 5.0, 2, ADMIN)
    assert s.jobs.lock_wait == 0.0
