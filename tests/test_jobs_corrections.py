"""Corrections (更正): a period's bulletin mailed again after a change of data says so, with its
version and what changed. The real bulletins and a real SMTP server; results written by hand."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import docx
import openpyxl
import pytest

from supervise.assess.model import AssessmentResult, Settlement, Transfer
from supervise.jobs import run_period
from supervise.jobs.tasks import DEFAULT_STEPS, Steps
from supervise.periods import Month, Period
from supervise.store import editions
from supervise.workspace import Workspace

from .bulletin_support import make_result
from .smtp_server import RECIPIENTS, SmtpServer, configure, running_smtp
from .test_bulletin_pdf import pages
from .test_jobs_support import NOW, fake_collect


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    yield from running_smtp()


MARCH = Month(2025, 3)
TITLE = "关于2025年3月全市县域特色产业集群发展情况的通报"
RULEBOOK = "《县域特色产业集群发展月度督导考核》"
# Registry order: 黄骅市 130983, 任丘市 130982, 河间市 130984 … 孟村回族自治县 130930, 盐山县 130925, 海兴县 130924.
HUANGHUA, RENQIU, HEJIAN = "130983", "130982", "130984"
MENGCUN, YANSHAN, HAIXING = "130930", "130925", "130924"


def _order(ws: Workspace, first: list[str]) -> list[str]:
    rest = [c.code for c in ws.registry.assessed_counties() if c.code not in first]
    return first + rest


def _settlement(first: str, second: str, third: str) -> Settlement:
    """The last three pay the first three 500, 300 and 100 万元."""
    ledger = [Transfer(HAIXING, first, 500), Transfer(YANSHAN, second, 300), Transfer(MENGCUN, third, 100)]
    net = {first: 500.0, second: 300.0, third: 100.0, MENGCUN: -100.0, YANSHAN: -300.0, HAIXING: -500.0}
    return Settlement(True, "", [500, 300, 100], ledger, net)


def _data(ws: Workspace, order: list[str]) -> None:
    """The period's results, as a county's corrected data would make them: the order of the
    ranking (the i-th county scores 100 − 5i) and who is paid."""
    (ws.home / "order.json").write_text(json.dumps(order), encoding="utf-8")


def _assess(ws: Workspace, period: Period, *, now: datetime, provisional: bool = False) -> list[AssessmentResult]:
    order = json.loads((ws.home / "order.json").read_text(encoding="utf-8"))
    return [make_result(ws.registry, period=str(period), order=order, settlement=_settlement(*order[:3]))]


STEPS = Steps(collect_inbox=fake_collect, run_assessments=_assess, render_bulletins=DEFAULT_STEPS.render_bulletins)


def _body(mail: Any) -> list[str]:
    return [line for line in mail.message.get_body(("plain",)).get_content().splitlines() if line]


def test_a_correction_says_so_with_its_version_and_what_changed(ws: Workspace, smtp: SmtpServer) -> None:
    ws = configure(ws, smtp)
    _data(ws, _order(ws, [HUANGHUA, RENQIU, HEJIAN]))
    first = run_period(ws, MARCH, now=NOW, steps=STEPS)
    doc = first.to_json()
    assert (doc["bulletin_version"], doc["correction"]) == (1, [])
    [mail] = smtp.to(RECIPIENTS[0])
    assert mail.message["Subject"] == TITLE                       # the first: no 更正 mark
    assert "更正" not in mail.message.get_body(("html",)).get_content()
    page = first.outputs.html.read_text(encoding="utf-8")
    assert "更正" not in page and '<p class="edition">（第1版）</p>' in page
    assert json.loads(first.outputs.json.read_text(encoding="utf-8"))["bulletin_version"] == 1

    again = run_period(ws, MARCH, now=NOW, steps=STEPS)           # the same data: nothing changes
    assert again.content_hash == first.content_hash and again.bulletin_version == 1
    assert [d.state for d in again.deliveries] == ["skipped", "skipped"]

    # 任丘市 corrected its data and overtakes 黄骅市: their scores, ranks and payments swap.
    _data(ws, _order(ws, [RENQIU, HUANGHUA, HEJIAN]))
    corrected = run_period(ws, MARCH, now=NOW, steps=STEPS)
    assert [d.state for d in corrected.deliveries] == ["sent", "sent"]
    changes = [
        f"{RULEBOOK}得分、名次有变化的县（市）：任丘市得分95.00→100.00、名次第2名→第1名；"
        "黄骅市得分100.00→95.00、名次第1名→第2名。",
        f"{RULEBOOK}奖惩结算台账有变化：撤销海兴县→黄骅市500.00万元、盐山县→任丘市300.00万元；"
        "新增海兴县→任丘市500.00万元、盐山县→黄骅市300.00万元。",
    ]
    heading = "更正：本通报为第2版，更正此前发出的第1版，请以本版为准。与第1版相比："
    doc = corrected.to_json()
    assert (doc["bulletin_version"], doc["correction"]) == (2, changes)

    [_, mail] = smtp.to(RECIPIENTS[0])
    subject = f"【更正】{TITLE}（第2版）"
    assert mail.message["Subject"] == subject
    assert _body(mail)[:4] == ["【更正】第2版", heading, f"1. {changes[0]}", f"2. {changes[1]}"]
    assert {p.get_filename() for p in mail.message.iter_attachments()} == {
        f"{TITLE}（第2版）.xlsx", f"{TITLE}（第2版）.html", f"{TITLE}（第2版）.docx", f"{TITLE}（第2版）.pdf"}

    page = corrected.outputs.html.read_text(encoding="utf-8")
    assert f"<title>{subject}</title>" in page
    top = page[page.index("<main"):page.index('<header class="cover">')]
    assert all(line in top for line in ("【更正】第2版", heading, *changes))
    assert '<p class="edition">（第2版）</p>' in page

    book = openpyxl.load_workbook(corrected.outputs.xlsx)
    cover = book["通报"]
    assert [cover.cell(row=r, column=1).value for r in range(1, 5)] == ["【更正】第2版", heading, *changes]
    assert "（第2版）" in [cover.cell(row=r, column=1).value for r in range(5, 15)]
    assert book["综合排名"].oddFooter.center.text.endswith("2025年3月　第2版\n第 &P 页，共 &N 页")

    # The Word and PDF 通报 say the same under the 版头's red rule, right above the title.
    assert corrected.outputs.docx is not None and corrected.outputs.pdf is not None
    paragraphs = [p.text for p in docx.Document(str(corrected.outputs.docx)).paragraphs]
    title = paragraphs.index(TITLE)
    assert paragraphs[title - 4:title] == ["【更正】第2版", heading, *changes]
    text = "".join(pages(corrected.outputs.pdf)[0].split())     # lines wrapped where the page ends them
    assert all("".join(line.split()) in text for line in ("【更正】第2版", heading, *changes)), text

    conn = ws.connect()
    try:
        latest = editions.latest_edition(conn, "2025-03")
    finally:
        conn.close()
    assert latest is not None and latest.version == 2 and latest.draft_hash == corrected.outputs.draft_hash

    redo = run_period(ws, MARCH, now=NOW, steps=STEPS)            # the correction again: nothing
    assert (redo.bulletin_version, redo.content_hash) == (2, corrected.content_hash)
    assert [d.state for d in redo.deliveries] == ["skipped", "skipped"]
    assert redo.to_json()["correction"] == changes
    assert len(smtp.to(RECIPIENTS[0])) == 2


def test_a_new_version_is_told_against_the_latest_even_when_it_goes_back(ws: Workspace, smtp: SmtpServer) -> None:
    """Back to what 第1版 said: its readers have 第2版, so 第3版 corrects that."""
    ws = configure(ws, smtp, recipients=RECIPIENTS[:1])
    _data(ws, _order(ws, [HUANGHUA, RENQIU, HEJIAN]))
    run_period(ws, MARCH, now=NOW, steps=STEPS)
    _data(ws, _order(ws, [HUANGHUA, HEJIAN, RENQIU]))
    second = run_period(ws, MARCH, now=NOW, steps=STEPS)
    assert second.to_json()["correction"] == [
        f"{RULEBOOK}得分、名次有变化的县（市）：河间市得分90.00→95.00、名次第3名→第2名；"
        "任丘市得分95.00→90.00、名次第2名→第3名。",
        f"{RULEBOOK}奖惩结算台账有变化：撤销盐山县→任丘市300.00万元、孟村回族自治县→河间市100.00万元；"
        "新增盐山县→河间市300.00万元、孟村回族自治县→任丘市100.00万元。",
    ]
    _data(ws, _order(ws, [HUANGHUA, RENQIU, HEJIAN]))
    third = run_period(ws, MARCH, now=NOW, steps=STEPS)
    assert third.bulletin_version == 3
    assert third.to_json()["correction"][0] == (
        f"{RULEBOOK}得分、名次有变化的县（市）：任丘市得分90.00→95.00、名次第3名→第2名；"
        "河间市得分95.00→90.00、名次第2名→第3名。")
    assert [m.message["Subject"] for m in smtp.to(RECIPIENTS[0])] == [
        TITLE, f"【更正】{TITLE}（第2版）", f"【更正】{TITLE}（第3版）"]


def test_no_deliver_shows_the_version_it_would_be_and_publishes_none(ws: Workspace, smtp: SmtpServer) -> None:
    ws = configure(ws, smtp)
    _data(ws, _order(ws, [HUANGHUA, RENQIU, HEJIAN]))
    run_period(ws, MARCH, now=NOW, steps=STEPS)
    _data(ws, _order(ws, [HEJIAN, RENQIU, HUANGHUA]))
    looked = run_period(ws, MARCH, now=NOW, steps=STEPS, deliver=False)
    assert looked.bulletin_version == 2 and "第2版" in looked.outputs.html.read_text(encoding="utf-8")
    assert len(smtp.received) == 2

    # Checked, fixed, and sent: the bulletin mailed is 第2版, told against 第1版 (the one looked
    # at was never published).
    _data(ws, _order(ws, [RENQIU, HUANGHUA, HEJIAN]))
    sent = run_period(ws, MARCH, now=NOW, steps=STEPS)
    assert sent.bulletin_version == 2
    assert sent.to_json()["correction"][0].startswith(f"{RULEBOOK}得分、名次有变化的县（市）：任丘市得分95.00→100.00")
    assert [m.message["Subject"] for m in smtp.to(RECIPIENTS[0])] == [TITLE, f"【更正】{TITLE}（第2版）"]


def test_a_preview_is_never_a_version(ws: Workspace, smtp: SmtpServer) -> None:
    """A provisional preview (before the deadline) prints no version; the bulletin after it is 第1版."""
    ws = configure(ws, smtp)
    _data(ws, _order(ws, [HUANGHUA, RENQIU, HEJIAN]))
    early = datetime(2025, 4, 3, 8, 0, tzinfo=NOW.tzinfo)
    preview = run_period(ws, MARCH, now=early, steps=STEPS, provisional=True)
    assert preview.to_json()["bulletin_version"] is None and preview.outputs.version == 0
    page = preview.outputs.html.read_text(encoding="utf-8")
    assert 'class="edition"' not in page and "第1版" not in page
    _data(ws, _order(ws, [RENQIU, HUANGHUA, HEJIAN]))
    first = run_period(ws, MARCH, now=NOW, steps=STEPS)
    assert (first.bulletin_version, first.to_json()["correction"]) == (1, [])
    assert [m.message["Subject"] for m in smtp.to(RECIPIENTS[0])] == [TITLE]
