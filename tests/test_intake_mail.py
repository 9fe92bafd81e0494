"""Intake by mail (#12): the 报送 mailbox read over IMAP, answered, never double-counted.

Every test talks to a real IMAP server on 127.0.0.1 (Dovecot, `tests/imap_server.py`, an account
of its own per test) and a real SMTP server (aiosmtpd, `tests/smtp_server.py`) that receives the
replies and the administrator's alerts. Messages are built with real MIME (Chinese names in
RFC 2231 and RFC 2047, raw GB18030 bytes, base64, a zip, a forwarded message) and appended with
the arrival time the test chooses, which must come back as the receipt time.
"""

from __future__ import annotations

import base64
import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid
from io import BytesIO, StringIO
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from supervise.cli import cli
from supervise.intake.mailparts import MAX_NAME_BYTES, ZipLimits, parse_message, safe_filename
from supervise.periods import TZ, Month
from supervise.workspace import Workspace

from .conftest import require_peer
from .imap_server import Dovecot, running_dovecot
from .intake_corpus import HUANGHUA, RENQIU, filled
from .smtp_server import ADMIN, SmtpServer, configure, running_smtp

ROOT = Path(__file__).resolve().parents[1]
MARCH = Month(2025, 3)
HH = "jxj@huanghua.example"            # 黄骅市
RQ = "tongji@renqiu.example"           # 任丘市
SHARED = "office@cangzhou.example"     # 河间市 and 泊头市 both list it
STRANGER = "someone@elsewhere.example"
ARRIVED = datetime(2025, 4, 3, 10, 0, tzinfo=TZ)          # on time: March is due by 5 April, 24:00
ARRIVED_ISO = "2025-04-03T10:00:00+08:00"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[Dovecot | None]:
    yield from running_dovecot()


@pytest.fixture
def dovecot(dovecot_server: Dovecot | None) -> Dovecot:
    require_peer("Dovecot (apt-get install dovecot-imapd)", dovecot_server)
    assert dovecot_server is not None
    return dovecot_server


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    yield from running_smtp()


@dataclass
class Box:
    """A workspace whose [imap] is one Dovecot account, and whose [smtp] is the test's server."""

    ws: Workspace
    dovecot: Dovecot
    user: str
    smtp: SmtpServer

    @property
    def home(self) -> Path:
        return self.ws.home

    def send(self, raw: bytes, when: datetime = ARRIVED) -> int:
        return self.dovecot.append(self.user, raw, when)

    def folder(self, name: str = "INBOX") -> dict[int, bytes]:
        return self.dovecot.messages(self.user, name)

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.ws.db_path)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()


def _imap_toml(dovecot: Dovecot, user: str, **extra: object) -> str:
    lines = ["[imap]", f'host = "{dovecot.host}"', f"port = {dovecot.port}", f'username = "{user}"',
             'password = "secret-过关"', "ssl = false", "timeout_seconds = 10"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def _contacts(ws: Workspace, emails: dict[str, str]) -> None:
    path = ws.reference_dir / "counties.csv"
    rows = list(csv.DictReader(StringIO(path.read_text(encoding="utf-8-sig"))))
    for row in rows:
        row["email"] = emails.get(row["county_code"], "")
    out = StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")


def make_box(ws: Workspace, dovecot: Dovecot, smtp: SmtpServer, **imap: object) -> Box:
    user = dovecot.add_user()
    _contacts(ws, {HUANGHUA: HH, RENQIU: f"{RQ};rq2@renqiu.example", "130984": SHARED, "130981": SHARED})
    configure(ws, smtp, recipients=[], extra="\n" + _imap_toml(dovecot, user, **imap))
    return Box(Workspace(ws.home), dovecot, user, smtp)


@pytest.fixture
def box(ws: Workspace, dovecot: Dovecot, smtp: SmtpServer) -> Box:
    return make_box(ws, dovecot, smtp)


def mail(sender: str, files: list[tuple[str, bytes, str]], *, subject: str = "3月报表",
         message_id: str | None = None, text: str = "请查收。") -> bytes:
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = f"黄骅市工信局 <{sender}>"
    msg["To"] = "baosong@bureau.example"
    msg["Subject"] = subject
    msg["Message-ID"] = message_id or make_msgid(domain="county.example")
    msg["Date"] = "Thu, 03 Apr 2025 09:59:00 +0800"
    msg.set_content(text)
    for name, data, ctype in files:
        maintype, subtype = ctype.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


def march_file(box: Box, county: str = HUANGHUA, **changes: Any) -> bytes:
    out = box.home.parent / f"made-{county}-{len(changes)}-{time.monotonic_ns()}.xlsx"
    return filled(box.ws, county, MARCH, out, **changes).read_bytes()


def collect_json(box: Box) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["--home", str(box.home), "collect", "--json"])
    assert result.stdout, result.output
    return result.exit_code, json.loads(result.stdout)


def text_of(raw: bytes) -> str:
    msg = message_from_bytes(raw, policy=policy.default)
    body = msg.get_body(preferencelist=("plain",))  # type: ignore[attr-defined]
    assert body is not None
    return str(body.get_content())


def html_of(raw: bytes) -> str:
    msg = message_from_bytes(raw, policy=policy.default)
    body = msg.get_body(preferencelist=("html",))  # type: ignore[attr-defined]
    assert body is not None
    return str(body.get_content())


# ------------------------------------------------------------------ a county's mail


def test_a_good_attachment_is_ingested_with_its_arrival_time_answered_and_moved(box: Box) -> None:
    mid = "<march-report-1@huanghua.example>"
    xlsx = march_file(box)
    raw = mail(HH, [("黄骅市2025年3月月报.xlsx", xlsx, XLSX)], message_id=mid)
    uid = box.send(raw)
    code, doc = collect_json(box)
    assert code == 0, doc

    [m] = doc["mail"]
    assert (m["sender"], m["county"], m["county_code"], m["county_name"]) == (HH, HUANGHUA, HUANGHUA, "黄骅市")
    assert (m["state"], m["uid"], m["moved_to"], m["message_id"]) == ("ingested", uid, "Processed", mid)
    assert m["received_at"] == ARRIVED_ISO
    [f] = m["files"]
    assert (f["file"], f["county_code"], f["period"], f["verdict"]) == (
        "黄骅市2025年3月月报.xlsx", HUANGHUA, "2025-03", "accepted")
    assert f["received_at"] == ARRIVED_ISO and f["values"] == 4 * 15   # 4 clusters × 15 indicators

    # stored as the county's version, received when the server got it: on time
    assert box.query("SELECT county_code, sender_code, source, received_at, file_name, state FROM submissions") == [
        (HUANGHUA, HUANGHUA, "mail", ARRIVED_ISO, "黄骅市2025年3月月报.xlsx", "current")]
    status = CliRunner().invoke(cli, ["--home", str(box.home), "status", "--month", "2025-03", "--json"])
    row = next(c for c in json.loads(status.stdout)["counties"] if c["county_code"] == HUANGHUA)
    assert (row["state"], row["received_at"]) == ("on_time", ARRIVED_ISO)

    # the message left INBOX for Processed, unchanged, and is archived with its file
    assert box.folder() == {}
    assert list(box.folder("Processed").values()) == [raw]
    [folder] = box.query("SELECT folder FROM mail_messages")
    assert (box.home / folder[0] / "message.eml").read_bytes() == raw
    assert (box.home / folder[0] / "1" / "黄骅市2025年3月月报.xlsx").read_bytes() == xlsx

    # the sender gets one reply, threaded, in Chinese
    [reply] = box.smtp.to(HH)
    message = reply.message
    assert message["In-Reply-To"] == mid and message["References"] == mid
    assert message["Reply-To"] == box.user      # a corrected file sent back reaches the 报送 mailbox
    assert message["Subject"] == "【报送回执】黄骅市：已受理1份（来信：3月报表）"
    text = text_of(reply.raw)
    assert "黄骅市：" in text
    assert "1. 黄骅市2025年3月月报.xlsx" in text
    assert "审核结论：已受理（黄骅市 2025年3月）" in text
    assert "已保存60个数值。" in text
    assert "收到时间：2025年4月3日 10:00" in text
    assert doc["deliveries"][0]["kind"] == "mail_reply" and doc["deliveries"][0]["state"] == "sent"


def test_a_bad_file_is_rejected_with_every_located_problem_in_the_reply(box: Box) -> None:
    bad = march_file(box, CZ01__revenue_ytd="约三千", CZ02__employees=-5)
    box.send(mail(RQ.replace("tongji", "rq2"), []))   # a second contact of 任丘市, nothing attached
    box.send(mail(HH, [("3月.xlsx", bad, XLSX)], subject="<b>三月</b> & 报表"), when=datetime(2025, 4, 3, 11, 0, tzinfo=TZ))
    code, doc = collect_json(box)
    assert code == 0, doc
    first, second = doc["mail"]
    assert (first["state"], first["reason"], first["county"]) == ("set_aside", "no_spreadsheet", RENQIU)
    [f] = second["files"]
    assert f["verdict"] == "rejected"
    got = sorted((p["code"], p["where"]) for p in f["problems"])
    assert got == [("negative_count", "填报表!N7 / CZ02 / employees"), ("not_a_number", "填报表!I6 / CZ01 / revenue_ytd")]
    assert box.query("SELECT verdict, state, source FROM submissions") == [("rejected", "rejected", "mail")]

    [reply] = box.smtp.to(HH)
    text = text_of(reply.raw)
    assert "审核结论：退回（未通过审核）" in text
    # each problem on its own line: kind, place, cluster, indicator (by its label), message
    messages = {p["where"]: p["message"] for p in f["problems"]}
    assert f"  [错误] 填报表!I6 / CZ01 化工 / 营业收入（本年累计）：{messages['填报表!I6 / CZ01 / revenue_ytd']}" in text
    assert f"  [错误] 填报表!N7 / CZ02 模具 / 从业人员：{messages['填报表!N7 / CZ02 / employees']}" in text
    assert "退回的文件未被采用" in text
    html = html_of(reply.raw)
    assert "&lt;b&gt;三月&lt;/b&gt; &amp; 报表" in html and "<b>三月</b>" not in html   # the subject is data
    assert "<td style=\"padding:4px 6px;border:1px solid #bfbfbf;font-size:13px;line-height:1.5;vertical-align:top;\">填报表!I6</td>" in html
    assert reply.message["Subject"] == "【报送回执】黄骅市：退回1份（来信：<b>三月</b> & 报表）"

    [nothing] = box.smtp.to("rq2@renqiu.example")   # the county's other contact is told why nothing was read
    assert "未处理原因：邮件中没有报送表格" in text_of(nothing.raw)
    assert sorted(box.folder("Processed")) and len(box.folder("Set-aside")) == 1


def test_mail_from_an_unknown_sender_is_set_aside_reported_and_never_ingested(box: Box) -> None:
    box.send(mail(STRANGER, [("黄骅市3月.xlsx", march_file(box), XLSX)], subject="冒充的报表"))
    box.send(mail(SHARED, [("河间市3月.xlsx", march_file(box), XLSX)], subject="共用邮箱"))
    code, doc = collect_json(box)
    assert code == 0, doc
    assert [(m["sender"], m["state"], m["reason"], m["county"], m["files"]) for m in doc["mail"]] == [
        (STRANGER, "set_aside", "unknown_sender", None, []),
        (SHARED, "set_aside", "shared_sender", None, []),
    ]
    assert box.query("SELECT COUNT(*) FROM submissions") == [(0,)]
    assert box.folder() == {} and len(box.folder("Set-aside")) == 2 and box.folder("Processed") == {}
    assert box.smtp.to(STRANGER) == []                    # no reply to a stranger
    assert "无法确定报送单位" in text_of(box.smtp.to(SHARED)[0].raw)
    [alert] = box.smtp.to(ADMIN)
    body = text_of(alert.raw)
    assert alert.message["Subject"] == "【supervise】报送邮箱：2 封邮件未收取"
    assert f"- {STRANGER}：冒充的报表" in body and "[unknown_sender]" in body and "[shared_sender]" in body
    # the job itself succeeded: setting mail aside is what it is for
    assert box.query("SELECT state FROM job_runs WHERE job = 'collect'") == [("success",)]


def test_mail_set_aside_and_put_back_by_staff_is_read_again(box: Box) -> None:
    box.send(mail(STRANGER, [("黄骅市3月.xlsx", march_file(box), XLSX)], subject="新联系人"))
    code, doc = collect_json(box)
    assert (code, doc["mail"][0]["reason"]) == (0, "unknown_sender")
    # staff add the new contact, then move the message back into INBOX
    _contacts(box.ws, {HUANGHUA: f"{HH};{STRANGER}"})
    client = box.dovecot.client(box.user)
    try:
        client.select_folder("Set-aside")
        client.move(client.search("ALL"), "INBOX")
    finally:
        client.logout()
    code, doc = collect_json(box)
    assert code == 0, doc
    [m] = doc["mail"]
    assert (m["state"], m["county"], [f["verdict"] for f in m["files"]]) == ("ingested", HUANGHUA, ["accepted"])
    assert box.query("SELECT state, county_code, reopened, moved_to FROM mail_messages") == [
        ("ingested", HUANGHUA, 1, "Processed")]
    [reply] = box.smtp.to(STRANGER)              # now a county's contact: answered, once
    assert "已受理" in reply.message["Subject"]
    assert len(box.smtp.to(ADMIN)) == 1          # the first collect's alert only
    assert collect_json(box)[1]["mail"] == []


def test_several_attachments_a_zip_a_forwarded_mail_and_files_that_are_not_spreadsheets(box: Box) -> None:
    march = march_file(box)
    renqiu = march_file(box, RENQIU)
    # a zip from a Chinese Windows: its entry names in GB18030, no UTF-8 flag
    packed = _gb18030_zip({"黄骅市/三月报表.xlsx": march, "说明.txt": "见附件".encode("gb18030")})
    forwarded = EmailMessage(policy=policy.SMTP)
    forwarded.set_content("转发")
    inner = message_from_bytes(mail(HH, [("转发的月报.xlsx", march, XLSX)]), policy=policy.SMTP)
    forwarded.add_attachment(inner)   # message/rfc822
    raw = mail(HH, [
        ("月报.xlsx", march, XLSX),
        ("任丘市的表.xlsx", renqiu, XLSX),               # another county's file, sent by 黄骅市
        ("打包.zip", packed, "application/zip"),
        ("签字盖章.pdf", b"%PDF-1.4 a scan", "application/pdf"),
        ("说明.docx", _docx(), "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ])
    msg = message_from_bytes(raw, policy=policy.SMTP)
    msg.add_attachment(message_from_bytes(forwarded.as_bytes(), policy=policy.SMTP))  # type: ignore[attr-defined]
    box.send(msg.as_bytes())
    code, doc = collect_json(box)
    assert code == 0, doc
    [m] = doc["mail"]
    assert [(f["file"], f["verdict"], bool(f.get("unchanged"))) for f in m["files"]] == [
        ("月报.xlsx", "accepted", False),
        ("任丘市的表.xlsx", "rejected", False),
        ("打包.zip / 三月报表.xlsx", "accepted", True),
        ("转发的月报.xlsx", "accepted", True),
    ]
    assert [p["code"] for p in m["files"][1]["problems"]] == ["county_mismatch"]
    assert m["ignored"] == [
        {"file": "打包.zip / 说明.txt", "reason": "不是报送表格，未处理"},
        {"file": "签字盖章.pdf", "reason": "不是报送表格（.xlsx、.xls、.ods 或 .csv），未处理"},
        {"file": "说明.docx", "reason": "不是报送表格（.xlsx、.xls、.ods 或 .csv），未处理"},
    ]
    # the other county's file counts against the sender, never for 任丘市
    assert box.query("SELECT county_code, verdict FROM submissions ORDER BY id") == [
        (HUANGHUA, "accepted"), (HUANGHUA, "rejected")]
    text = text_of(box.smtp.to(HH)[0].raw)
    assert "未处理的附件：" in text and "签字盖章.pdf：不是报送表格" in text
    assert "与已报送的版本相同，未重复保存" in text


def test_an_oversized_message_is_set_aside_without_being_downloaded(ws: Workspace, dovecot: Dovecot,
                                                                   smtp: SmtpServer) -> None:
    box = make_box(ws, dovecot, smtp, max_message_bytes=60_000)
    big = os.urandom(80_000)
    box.send(mail(HH, [("黄骅市3月.xlsx", big, XLSX)], subject="大文件"))
    code, doc = collect_json(box)
    assert code == 0, doc
    [m] = doc["mail"]
    assert (m["state"], m["reason"], m["county"]) == ("set_aside", "too_large", HUANGHUA)
    [folder] = box.query("SELECT folder FROM mail_messages")
    kept = sorted(p.name for p in (box.home / folder[0]).iterdir())
    assert kept == ["header.eml"]            # only its header was fetched
    assert box.query("SELECT COUNT(*) FROM submissions") == [(0,)]
    text = text_of(box.smtp.to(HH)[0].raw)
    assert "未处理原因：邮件过大（邮件大小" in text and "超过上限60000字节" in text
    assert len(box.folder("Set-aside")) == 1


def test_too_many_attachments_and_a_malformed_message_are_set_aside(ws: Workspace, dovecot: Dovecot,
                                                                    smtp: SmtpServer) -> None:
    box = make_box(ws, dovecot, smtp, max_attachments=2)
    march = march_file(box)
    box.send(mail(HH, [(f"{i}.xlsx", march, XLSX) for i in range(3)]))
    box.send(b"Subject: no sender\r\nMessage-ID: <x@y.z>\r\n\r\nhello\r\n")
    code, doc = collect_json(box)
    assert code == 0, doc
    assert [(m["state"], m["reason"]) for m in doc["mail"]] == [
        ("set_aside", "too_many_attachments"), ("set_aside", "malformed")]
    assert box.query("SELECT COUNT(*) FROM submissions") == [(0,)]
    assert "附件过多（附件3个，超过上限2个）" in text_of(box.smtp.to(HH)[0].raw)
    assert "[malformed]" in text_of(box.smtp.to(ADMIN)[0].raw)


def test_hostile_file_names_are_decoded_and_never_leave_the_message_folder(box: Box) -> None:
    march = march_file(box)
    names = [
        # RFC 2231, percent-encoded UTF-8 climbing out of the folder
        ("filename*=UTF-8''..%2F..%2F..%2Fetc%2F%E9%BB%84%E9%AA%85.xlsx", "黄骅.xlsx"),
        # RFC 2047 inside the quotes, in GB2312 (what many Chinese mail clients write)
        ('filename="=?GB2312?B?' + base64.b64encode("黄骅市三月.xlsx".encode("gb2312")).decode() + '?="',
         "黄骅市三月.xlsx"),
        # raw GB18030 bytes in the header
        (b'filename="' + "三月月报.xlsx".encode("gb18030") + b'"', "三月月报.xlsx"),
        # a Windows path, a bidi override hiding the extension, control characters
        ('filename="C:\\\\Users\\\\x\\\\..\\\\四月.xlsx"', "四月.xlsx"),
        ("filename*=UTF-8''%E6%8A%A5%E8%A1%A8%E2%80%AExslx.exe%07%0D%0A.xlsx", "报表xslx.exe.xlsx"),
        ('filename=".."', "附件6"),
        ('filename="/.hidden.xlsx"', "hidden.xlsx"),
    ]
    box.send(_raw_mail(HH, [(n if isinstance(n, bytes) else n.encode(), march) for n, _ in names]))
    code, doc = collect_json(box)
    assert code == 0, doc
    [m] = doc["mail"]
    assert [f["file"] for f in m["files"]] == [want for _, want in names]
    assert [f["verdict"] for f in m["files"]] == ["accepted"] * len(names)
    assert sum(1 for f in m["files"] if f.get("unchanged")) == len(names) - 1
    [folder] = box.query("SELECT folder FROM mail_messages")
    top = (box.home / folder[0]).resolve()
    written = [p for p in box.home.rglob("*") if p.is_file() and "mail" in p.relative_to(box.home).parts[:1]]
    assert written and all(p.resolve().is_relative_to(top) for p in written)
    assert not (box.home / "etc").exists() and not Path("/etc/黄骅.xlsx").exists()
    assert sorted(p.name for p in written if p.name != "message.eml") == sorted(want for _, want in names)


@given(st.text(min_size=0, max_size=400))
def test_safe_filename_is_always_one_plain_name(raw: str) -> None:
    name = safe_filename(raw)
    assert name and "/" not in name and "\\" not in name and "\x00" not in name
    assert not name.startswith(".") and name not in (".", "..")
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
    assert all(ch == " " or not (ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0 or ch in "\u202e\u200f\u2066") for ch in name)


def test_parse_never_raises_on_junk() -> None:
    for junk in (b"", b"\x00\xff" * 100, b"From: \r\n\r\n", b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n"):
        parsed = parse_message(junk, ZipLimits())
        assert parsed.malformed and parsed.attachments == []


# ------------------------------------------------------------------ exactly once


def _spawn(home: Path, pause: str | None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    env.pop("SUPERVISE_TEST_PAUSE_AT", None)
    if pause:
        env["SUPERVISE_TEST_PAUSE_AT"] = pause
    return subprocess.Popen([sys.executable, "-m", "supervise", "--home", str(home), "collect", "--json"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _kill_at(home: Path, point: str) -> None:
    proc = _spawn(home, point)
    marker = home / ".locks" / f"paused-{point}"
    deadline = time.monotonic() + 60
    try:
        while not marker.exists():
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"collect ended before {point}: {err.decode()[-3000:]}")
            assert time.monotonic() < deadline, f"collect never reached {point}"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=20)
    assert proc.returncode == -signal.SIGKILL
    marker.unlink()


def _collect_again(home: Path) -> dict[str, Any]:
    proc = _spawn(home, None)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-3000:]
    return json.loads(out)


POINTS = ["mail_recorded", "mail_ingested", "mail_decided", "mail_replied", "mail_moved"]


@pytest.mark.parametrize("point", POINTS)
def test_a_collect_killed_at_any_step_then_run_again_ingests_each_message_once(point: str, box: Box) -> None:
    good = march_file(box)
    bad = march_file(box, RENQIU, CZ05__revenue_ytd="约三千")
    box.send(mail(HH, [("黄骅市3月.xlsx", good, XLSX)]))
    box.send(mail(RQ, [("任丘市3月.xlsx", bad, XLSX)]), when=datetime(2025, 4, 3, 10, 5, tzinfo=TZ))

    _kill_at(box.home, point)
    _collect_again(box.home)
    again = _collect_again(box.home)       # and a third time: nothing left to do
    assert again["mail"] == []

    # each file stored once: the accepted one in force, the rejected one recorded once (not twice)
    assert box.query("SELECT county_code, verdict, state, received_at FROM submissions ORDER BY id") == [
        (HUANGHUA, "accepted", "current", ARRIVED_ISO), (RENQIU, "rejected", "rejected", "2025-04-03T10:05:00+08:00")]
    assert box.query("SELECT COUNT(*) FROM audit WHERE action = 'ingest'") == [(2,)]
    assert box.query("SELECT state, moved_to FROM mail_messages ORDER BY id") == [
        ("ingested", "Processed"), ("ingested", "Processed")]
    # each sender answered once, each message moved once
    assert (len(box.smtp.to(HH)), len(box.smtp.to(RQ))) == (1, 1)
    assert box.folder() == {} and len(box.folder("Processed")) == 2
    assert "退回" in box.smtp.to(RQ)[0].message["Subject"]
    assert box.query("SELECT state FROM job_runs WHERE job = 'collect' ORDER BY id") == [
        ("error",), ("success",), ("success",)]   # the killed run is recorded as interrupted


def test_a_new_uidvalidity_and_a_second_copy_are_the_same_message(box: Box) -> None:
    raw = mail(HH, [("黄骅市3月.xlsx", march_file(box), XLSX)])
    box.send(raw)
    _kill_at(box.home, "mail_decided")            # ingested, still in INBOX
    before = box.dovecot.uidvalidity(box.user)
    box.dovecot.set_uidvalidity(box.user, before + 1000)   # the server forgets every UID
    box.send(raw, when=datetime(2025, 4, 3, 10, 30, tzinfo=TZ))   # and a second copy arrives
    later = mail(HH, [("黄骅市3月更正.xlsx", march_file(box, CZ04__ent_total=150), XLSX)], subject="更正")
    box.send(later, when=datetime(2025, 4, 4, 9, 0, tzinfo=TZ))

    doc = _collect_again(box.home)
    assert [(m["uidvalidity"], m["state"], m["subject"]) for m in doc["mail"]] == [
        (before + 1000, "ingested", "3月报表"), (before + 1000, "ingested", "3月报表"),
        (before + 1000, "ingested", "更正")]
    assert box.query("SELECT received_at, state FROM submissions ORDER BY id") == [
        (ARRIVED_ISO, "superseded"), ("2025-04-04T09:00:00+08:00", "current")]
    assert box.query("SELECT COUNT(*) FROM mail_messages") == [(2,)]
    assert len(box.smtp.to(HH)) == 2             # one reply per message, none for the copy
    assert box.folder() == {} and len(box.folder("Processed")) == 3


def test_an_unreachable_mailbox_fails_the_collect_loudly_after_the_inbox(ws: Workspace, smtp: SmtpServer,
                                                                         tmp_path: Path) -> None:
    from .smtp_server import free_port

    _contacts(ws, {HUANGHUA: HH})
    configure(ws, smtp, recipients=[], extra=(
        f'\n[imap]\nhost = "127.0.0.1"\nport = {free_port()}\nusername = "u"\nssl = false\ntimeout_seconds = 2\n'))
    inbox = ws.home / "inbox" / HUANGHUA
    inbox.mkdir(parents=True)
    filled(ws, HUANGHUA, MARCH, inbox / "3月.xlsx")
    os.utime(inbox / "3月.xlsx", (time.time() - 60, time.time() - 60))
    result = CliRunner().invoke(cli, ["--home", str(ws.home), "collect", "--json"])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["ingest"]["accepted"] == 1 and doc["mail"] == []
    assert "报送邮箱 127.0.0.1:" in result.stderr and "could not be read to the end" in result.stderr
    assert "任务失败" in smtp.to(ADMIN)[0].message["Subject"]


@pytest.mark.parametrize("how", ["ssl", "starttls"])
def test_tls_is_verified_against_the_trusted_certificates(how: str, ws: Workspace, dovecot: Dovecot,
                                                          smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    if not dovecot.tls_port:
        require_peer("openssl (a certificate for the test server)", None)
    tls = {"ssl": True, "port": dovecot.tls_port} if how == "ssl" else {"ssl": False, "starttls": True}
    box = make_box(ws, dovecot, smtp)
    settings = box.ws.settings_path.read_text(encoding="utf-8").replace("ssl = false\n", "")
    settings = settings.replace(f"port = {dovecot.port}\n", "") + "".join(
        f"{k} = {json.dumps(v)}\n" for k, v in ({"port": dovecot.port} | tls).items())
    box.ws.settings_path.write_text(settings, encoding="utf-8")
    box.send(mail(HH, [("黄骅市3月.xlsx", march_file(box), XLSX)]))

    # a certificate nobody vouches for: refused, loudly, and the message stays where it is
    monkeypatch.setenv("SSL_CERT_FILE", str(box.home / "no-such-ca.pem"))
    result = CliRunner().invoke(cli, ["--home", str(box.home), "collect", "--json"])
    assert result.exit_code == 1 and json.loads(result.stdout)["mail"] == []
    assert "CERTIFICATE_VERIFY_FAILED" in result.stderr
    assert len(box.folder()) == 1 and box.query("SELECT COUNT(*) FROM mail_messages") == [(0,)]
    # the bureau's CA (here the server's own certificate) trusted: read over TLS
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.certificate))
    code, doc = collect_json(box)
    assert code == 0, doc
    assert [m["state"] for m in doc["mail"]] == ["ingested"]


def test_a_server_that_never_answers_is_cut_off_by_the_timeout(ws: Workspace, smtp: SmtpServer) -> None:
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:   # takes the connection and says nothing, not even the greeting
        listener.settimeout(10)
        try:
            held.append(listener.accept()[0])
        except OSError:
            return
        stop.wait(20)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    configure(ws, smtp, recipients=[], extra=(
        f'\n[imap]\nhost = "127.0.0.1"\nport = {port}\nusername = "u"\nssl = false\ntimeout_seconds = 1\n'))
    try:
        t0 = time.monotonic()
        result = CliRunner().invoke(cli, ["--home", str(ws.home), "collect", "--json"])
        elapsed = time.monotonic() - t0
    finally:
        stop.set()
        thread.join(10)
        for s in held:
            s.close()
        listener.close()
    assert result.exit_code == 1
    assert "could not be read to the end" in result.stderr and elapsed < 15


def test_without_imap_host_collect_reads_no_mail(ws: Workspace) -> None:
    result = CliRunner().invoke(cli, ["--home", str(ws.home), "collect", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["mail"] == []
    assert Workspace(ws.home).settings.imap.enabled is False


def test_imap_folders_must_be_distinct(ws: Workspace) -> None:
    ws.settings_path.write_text('[imap]\nhost = "mail.example"\ndone_folder = "INBOX"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["--home", str(ws.home), "collect"])
    assert result.exit_code != 0
    assert "[imap] folder, done_folder and aside_folder must be three different" in result.output


def test_collect_prints_the_mailbox_line(box: Box) -> None:
    box.send(mail(STRANGER, [("x.xlsx", march_file(box), XLSX)], subject="[red]你好[/red]"))
    result = CliRunner().invoke(cli, ["--home", str(box.home), "collect"])
    assert result.exit_code == 0, result.output
    assert "报送邮箱：1 封邮件：收取 0，另存未收取 1；文件 已受理 0，有提示 0，退回 0，未变化 0" in result.output
    assert f"未收取：{STRANGER}「[red]你好[/red]」：发件地址未登记为任何县（市、区）的报送邮箱" in result.output


# ------------------------------------------------------------------ building odd mail


def _raw_mail(sender: str, parts: list[tuple[bytes, bytes]]) -> bytes:
    """A multipart message written by hand: each part's Content-Disposition parameter as given."""
    boundary = b"=-=-boundary-=-="
    out = [b"From: " + sender.encode() + b"\r\n", b"To: baosong@bureau.example\r\n",
           b"Subject: =?UTF-8?B?" + base64.b64encode("3月报表".encode()) + b"?=\r\n",
           b"Message-ID: <hostile-names@huanghua.example>\r\n", b"MIME-Version: 1.0\r\n",
           b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n',
           b"--" + boundary + b"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhi\r\n"]
    for param, data in parts:
        out += [b"--" + boundary + b"\r\n", b"Content-Type: application/octet-stream\r\n",
                b"Content-Transfer-Encoding: base64\r\n", b"Content-Disposition: attachment; " + param + b"\r\n\r\n",
                base64.encodebytes(data).replace(b"\n", b"\r\n")]
    out.append(b"--" + boundary + b"--\r\n")
    return b"".join(out)


def _gb18030_zip(files: dict[str, bytes]) -> bytes:
    """A zip whose entry names are GB18030 bytes without the UTF-8 flag (as Windows' zip writes them)."""
    placeholders = {}
    buf = BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, (name, data) in enumerate(files.items()):
            encoded = name.encode("gb18030")
            stand_in = f"{i:02d}".encode() + b"x" * (len(encoded) - 2)
            placeholders[stand_in] = encoded
            zf.writestr(stand_in.decode(), data)
    raw = buf.getvalue()
    for stand_in, encoded in placeholders.items():
        raw = raw.replace(stand_in, encoded)
    return raw


def _docx() -> bytes:
    buf = BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", "<w:document/>")
    return buf.getvalue()
