"""退回 reaches the county (#9): the 退回通知 mailed to its contacts, the reason in status and in 催报.

A real SMTP server on 127.0.0.1 receives the mail; each message is decoded and read as the county
would read it. Expected texts are written out by hand from the facts of each case.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from datetime import date
from io import StringIO
from pathlib import Path

import pytest
from click.testing import CliRunner

from supervise import cli_intake
from supervise.assess.loading import load_rulebooks
from supervise.cli import cli
from supervise.intake import IntakeError, ingest_files, reject_submission
from supervise.jobs import collect, remind
from supervise.jobs.notices import RETURN_KIND, deductions_for, one_line, return_notice, text_lines
from supervise.periods import Month, Quarter
from supervise.store import runs
from supervise.workspace import Workspace

from .intake_corpus import HUANGHUA, at, filled
from .smtp_server import SmtpServer, configure, running_smtp

MARCH = Month(2025, 3)
CONTACTS = ("jxj@huanghua.example", "zhang@huanghua.example")   # 黄骅市's two contacts
FILE = "黄骅市2025年3月月报.xlsx"
REASON = "营业收入与统计局数据不符，请核实CZ01"
ISSUER = "沧州市民营经济领导小组办公室（沧州市工业和信息化局）"
# cz-monthly's 错报/退回 deduction, rewritten by `_rejected_deduction` so that the expected
# sentence does not depend on the shipped defaults.
DEDUCTION = '[[deductions]]\non = "rejected"\npoints = 3\nmax = 6\ndescription = "每退回一次扣3分。"\n'


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    yield from running_smtp()


def _contacts(ws: Workspace, emails: dict[str, str]) -> Workspace:
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


def _rejected_deduction(ws: Workspace) -> None:
    """cz-monthly charges 3 points per 退回, at most 6: its `rejected` block replaced."""
    path = ws.rules_dir / "cz-monthly.toml"
    blocks = path.read_text(encoding="utf-8").split("\n\n")
    kept = [b for b in blocks if 'on = "rejected"' not in b]
    assert len(kept) == len(blocks) - 1
    path.write_text("\n\n".join(kept) + "\n\n" + DEDUCTION, encoding="utf-8")


@pytest.fixture
def returned_ws(ws: Workspace, smtp: SmtpServer, tmp_path: Path) -> Workspace:
    """Mail pointed at the test server, 黄骅市 with two contacts, its March file accepted on 3 April 16:20."""
    ws = _contacts(configure(ws, smtp), {HUANGHUA: "; ".join(CONTACTS)})
    _rejected_deduction(ws)
    path = filled(ws, HUANGHUA, MARCH, tmp_path / FILE)
    [f] = ingest_files(ws, [path], county=HUANGHUA, now=at("2025-04-03 16:20")).files
    assert f.verdict == "accepted"
    return ws


def _text_and_html(msg: object) -> tuple[str, str]:
    """The plain-text part (its non-blank lines, joined by \\n) and the HTML part, decoded."""
    plain = msg.get_body(preferencelist=("plain",)).get_content()  # type: ignore[attr-defined]
    text = "\n".join(line for line in plain.splitlines() if line) + "\n"
    html = msg.get_body(preferencelist=("html",)).get_content()  # type: ignore[attr-defined]
    return text, html


# ------------------------------------------------------------------ the notice


def test_reject_mails_the_reason_and_what_to_do_to_every_contact(returned_ws: Workspace, smtp: SmtpServer) -> None:
    ws = returned_ws
    done = reject_submission(ws, HUANGHUA, MARCH, REASON, actor="张三", now=at("2025-04-04 09:00"))
    assert done["notice"]["recipients"] == list(CONTACTS)
    assert [(d["recipient"], d["state"]) for d in done["notice"]["deliveries"]] == [
        (CONTACTS[0], "sent"), (CONTACTS[1], "sent")]
    assert done["notice"]["waiting"] == 0 and done["notice"]["error"] is None

    for address in CONTACTS:
        [mail] = smtp.to(address)
        assert mail.rcpt_tos == [address]
        msg = mail.message
        assert msg["Subject"] == (
            "【退回】2025年3月县域特色产业集群发展月报数据已退回，请修改后重新报送"
            "（原因：营业收入与统计局数据不符，请核实CZ01）")
        # The name is two adjacent encoded words; Python's address parser keeps a space between them.
        assert "".join(msg["From"].addresses[0].display_name.split()) == ISSUER
        text, html = _text_and_html(msg)
        assert text.splitlines()[:7] == [
            "黄骅市：",
            "贵单位报送的2025年3月集群发展月报数据经审核已退回，请按退回原因修改后重新报送。"
            "重新报送并通过审核之前，本期按“退回”统计。",
            f"报送文件：{FILE}",
            "收到时间：2025年4月3日 16:20",
            "退回时间：2025年4月4日 09:00",
            "退回原因：营业收入与统计局数据不符，请核实CZ01",
            "重新报送要求：",
        ]
        # Due 5 April 24:00, sent back on the 4th: still in time.
        assert "1. 请于2025年4月5日24时前重新报送，逾期将按迟报计入考核；" in text
        assert ("2. 使用下发的2025年3月集群发展月报报送模板（Excel，每个集群一行，首列为集群代码，"
                "勿改动表头和代码），按退回原因修改，以 .xlsx 文件报送（.xls、.ods 亦可）；") in text
        assert "3. 报送方式：将修改后的文件作为附件直接回复本邮件（或按原报送渠道报送）" in text
        assert "考核扣分：本次退回按考核规则计入错报/退回扣分。" in text
        assert "《县域特色产业集群发展月度督导考核》（2025.1版）：每退回一次扣3分，最多扣6分。" in text
        assert text.splitlines()[-4:] == [
            "如有疑问，请直接回复本邮件联系。感谢支持与配合！", ISSUER, "2025年4月4日", "（本邮件由督导考核系统自动发送）"]
        assert "<b>退回原因：</b>营业收入与统计局数据不符，请核实CZ01</p>" in html

    conn = ws.connect()
    sent = [d for d in runs.recent_deliveries(conn) if d.kind == RETURN_KIND]
    conn.close()
    assert sorted((d.recipient, d.state, d.period) for d in sent) == [
        (CONTACTS[0], "sent", "2025-03"), (CONTACTS[1], "sent", "2025-03")]


def test_a_reason_with_markup_and_line_breaks_stays_data(returned_ws: Workspace, smtp: SmtpServer) -> None:
    reason = "<script>alert(1)</script>\r\nBcc: evil@attacker.example\r\n第二行 & 更多"
    reject_submission(returned_ws, HUANGHUA, MARCH, reason, actor="张三", now=at("2025-04-04 09:00"))
    assert sorted(r for m in smtp.received for r in m.rcpt_tos) == sorted(CONTACTS)  # nobody else
    [mail] = smtp.to(CONTACTS[0])
    headers = mail.raw.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"^bcc:", headers, re.IGNORECASE | re.MULTILINE)
    msg = mail.message
    assert msg["Bcc"] is None
    # On one line, cut to 30 characters: "<script>alert(1)</script>" (25), a space, "Bcc", then "…".
    assert msg["Subject"] == (
        "【退回】2025年3月县域特色产业集群发展月报数据已退回，请修改后重新报送"
        "（原因：<script>alert(1)</script> Bcc…）")
    text, html = _text_and_html(msg)
    assert "<script" not in html
    assert ("<b>退回原因：</b>&lt;script&gt;alert(1)&lt;/script&gt;<br>Bcc: evil@attacker.example<br>"
            "第二行 &amp; 更多</p>") in html
    # In the plain text it is only text: each of its lines on a line of its own.
    assert "退回原因：<script>alert(1)</script>\nBcc: evil@attacker.example\n第二行 & 更多\n" in text


def test_a_notice_after_the_deadline_asks_for_the_file_at_once() -> None:
    # March data were due on 5 April 24:00; sent back on the 7th, nothing is said of a deadline ahead.
    n = return_notice(county_name="任丘市", period=MARCH, file_name="rq.xlsx", received_at="2025-04-05T20:00:00+08:00",
                      returned_at=at("2025-04-07 10:30"), reason="单位填错", due_day=date(2025, 4, 5),
                      deductions=[], issuer="某局")
    assert ("1. 本期报送截止时间（2025年4月5日24时）已过，请尽快重新报送；重新报送按实际收到时间计算，"
            "晚于截止时间的按迟报计入考核；") in n.text
    assert "前重新报送" not in n.text
    assert "考核扣分" not in n.text                     # no rulebook deduction to name
    assert "收到时间：2025年4月5日 20:00" in n.text and "退回时间：2025年4月7日 10:30" in n.text


def test_one_line_and_text_lines() -> None:
    assert one_line("a\r\nb\u2028c\x00d\u202ee\t f") == "a b c de f"
    assert text_lines("一、数据不符\r\n\r\n二、\x1b[31m单位有误\n") == ["一、数据不符", "二、 [31m单位有误"]


def test_the_deductions_named_are_those_of_the_rulebooks_that_read_the_period(ws: Workspace) -> None:
    books = load_rulebooks(ws.rules_dir, ws.registry.indicators)

    def titles(period: Month | Quarter) -> list[str]:
        return [d.title for d in deductions_for(books, period)]

    assert titles(Month(2025, 3)) == ["县域特色产业集群发展月度督导考核"]
    # December is also what the annual 入园进区 assessment reads.
    assert titles(Month(2025, 12)) == ["县域特色产业集群发展月度督导考核", "工业企业入园进区年度考核"]
    assert titles(Quarter(2025, 1)) == ["县域特色产业集群创新发展与转型升级季度考核"]


# ------------------------------------------------------------------ the outbox


def test_smtp_down_at_reject_time_the_notice_waits_and_goes_once(
    returned_ws: Workspace, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = returned_ws
    smtp.stop()
    monkeypatch.setattr(cli_intake, "now", lambda: at("2025-04-04 09:00"))
    home = ["--home", str(ws.home)]
    r = CliRunner().invoke(cli, [*home, "reject", "--county", HUANGHUA, "--month", "2025-03",
                                 "--reason", REASON, "--actor", "张三"])
    assert r.exit_code == 0, r.output                      # the 退回 stands
    assert r.stdout.startswith(f"已退回：{HUANGHUA} 2025-03（#1）：{REASON}\n")
    for address in CONTACTS:
        assert f"  退回通知未能发出，已留在 outbox 待下次 collect 重发：{address}（" in r.stdout
    waiting = CliRunner().invoke(cli, [*home, "runs", "--json"])
    outbox = json.loads(waiting.stdout)["outbox"]
    assert sorted((d["kind"], d["recipient"], d["state"]) for d in outbox) == [
        (RETURN_KIND, CONTACTS[0], "failed"), (RETURN_KIND, CONTACTS[1], "failed")]
    assert len(list((ws.outbox_dir / "mail").glob("*.eml"))) == 2

    # A second 退回 of the same data is refused: nothing is in force to send back.
    with pytest.raises(IntakeError):
        reject_submission(ws, HUANGHUA, MARCH, REASON, actor="张三", now=at("2025-04-04 09:05"))

    smtp.start()
    result = collect(ws, at("2025-04-04 10:05"))
    assert sorted((d.recipient, d.state) for d in result.deliveries) == [
        (CONTACTS[0], "sent"), (CONTACTS[1], "sent")]
    assert [len(smtp.to(a)) for a in CONTACTS] == [1, 1]
    assert "退回原因：营业收入与统计局数据不符，请核实CZ01" in _text_and_html(smtp.to(CONTACTS[0])[0].message)[0]

    # The next runs retry nothing: each contact got the notice once.
    collect(ws, at("2025-04-04 11:05"))
    remind(ws, at("2025-04-04 11:10"), MARCH)
    notices = [m for m in smtp.received if m.message["Subject"].startswith("【退回】")]
    assert sorted(r for m in notices for r in m.rcpt_tos) == sorted(CONTACTS)
    assert list((ws.outbox_dir / "mail").glob("*.eml")) == []


def test_reject_of_a_county_without_contacts_succeeds_and_says_so(ws: Workspace, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    ingest_files(ws, [filled(ws, HUANGHUA, MARCH, tmp_path / FILE)], county=HUANGHUA, now=at("2025-04-03 16:20"))
    monkeypatch.setattr(cli_intake, "now", lambda: at("2025-04-04 09:00"))
    r = CliRunner().invoke(cli, ["--home", str(ws.home), "reject", "--county", HUANGHUA, "--month", "2025-03",
                                 "--reason", REASON, "--json"])
    assert r.exit_code == 0, r.output
    notice = json.loads(r.stdout)["notice"]
    assert (notice["recipients"], notice["no_address"], notice["deliveries"]) == ([], True, [])


# ------------------------------------------------------------------ status and 催报


def test_status_shows_the_reason_of_the_return(returned_ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = returned_ws
    reject_submission(ws, HUANGHUA, MARCH, REASON, actor="张三", now=at("2025-04-04 09:00"))
    home = ["--home", str(ws.home)]
    doc = json.loads(CliRunner().invoke(cli, [*home, "status", "--month", "2025-03", "--json"]).stdout)
    [row] = [c for c in doc["counties"] if c["county_code"] == HUANGHUA]
    assert {k: row[k] for k in ("county_code", "county_name", "state", "received_at", "reason", "returned_at")} == {
        "county_code": HUANGHUA, "county_name": "黄骅市", "state": "rejected",
        "received_at": "2025-04-03T16:20:00+08:00", "reason": REASON,
        "returned_at": "2025-04-04T09:00:00+08:00",
    }
    others = [c for c in doc["counties"] if c["county_code"] != HUANGHUA]
    assert {(c["state"], c["reason"], c["returned_at"]) for c in others} == {("missing", "", None)}

    monkeypatch.setattr(cli_intake._out, "_console", None)   # a console as wide as COLUMNS says
    human = CliRunner().invoke(cli, [*home, "status", "--month", "2025-03"], env={"COLUMNS": "400"})
    assert human.exit_code == 0, human.output
    [line] = [ln for ln in human.stdout.splitlines() if HUANGHUA in ln]
    assert [cell.strip() for cell in line.split("│")[1:-1]] == [
        HUANGHUA, "黄骅市", "退回", "2025-04-03 16:20", "", f"退回原因：{REASON}（2025-04-04 09:00 退回）"]


def test_remind_of_a_returned_county_gives_the_reason(returned_ws: Workspace, smtp: SmtpServer) -> None:
    ws = returned_ws
    reject_submission(ws, HUANGHUA, MARCH, REASON, actor="张三", now=at("2025-04-04 09:00"))
    result = remind(ws, at("2025-04-06 09:00"), MARCH)
    assert sorted(r["recipient"] for r in result.reminded) == sorted(CONTACTS)
    [mail] = [m for m in smtp.to(CONTACTS[0]) if m.message["Subject"].startswith("【催报】")]
    body = mail.message.get_content()
    assert ("贵单位报送的2025年3月集群发展月报数据（文件：黄骅市2025年3月月报.xlsx，收到时间：2025年4月3日 16:20）"
            "已于2025年4月4日 09:00退回，退回原因：营业收入与统计局数据不符，请核实CZ01。"
            "目前尚无有效报送，请按退回原因修改后重新报送。") in body
    assert "尚未收到" not in body
    assert "现已逾期1天" in body          # due the 5th, reminded on the 6th
