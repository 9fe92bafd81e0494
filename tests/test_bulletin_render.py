"""Rendering into a real workspace: files, workbook read back, determinism, atomicity, injection."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest

from supervise.assess.model import RewardTally, Settlement
from supervise.jobs import render as render_mod
from supervise.workspace import Workspace

from .bulletin_support import ATTACKS, Dom, annual_settlement, cells, make_result, render

TITLE = "关于2025年3月全市县域特色产业集群发展情况的通报"


def test_files_and_names(filled: Workspace) -> None:
    out = render(filled)
    folder = filled.reports_dir / "2025-03"
    assert out.xlsx == folder / "bulletin-2025-03.xlsx" and out.html == folder / "bulletin-2025-03.html"
    assert out.email_html == folder / "email-2025-03.html" and out.json == folder / "results-2025-03.json"
    assert out.title == TITLE
    assert out.docx == folder / "bulletin-2025-03.docx" and out.pdf == folder / "bulletin-2025-03.pdf"
    assert out.attachment_names == {"xlsx": f"{TITLE}.xlsx", "html": f"{TITLE}.html", "docx": f"{TITLE}.docx",
                                    "pdf": f"{TITLE}.pdf"}
    # The shipped [bulletin] attach: all four, the workbook first.
    assert [name for _, name in out.attachments] == [f"{TITLE}.xlsx", f"{TITLE}.html", f"{TITLE}.docx",
                                                     f"{TITLE}.pdf"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["bulletin-2025-03.xlsx", "bulletin-2025-03.html", "bulletin-2025-03.docx", "bulletin-2025-03.pdf",
         "email-2025-03.html", "results-2025-03.json"])
    assert out.docx.read_bytes()[:2] == b"PK" and out.pdf.read_bytes()[:5] == b"%PDF-"
    doc = json.loads(out.json.read_text(encoding="utf-8"))
    assert doc["period"] == "2025-03"
    assert doc["outputs"] == {"xlsx": str(out.xlsx), "html": str(out.html), "docx": str(out.docx),
                              "pdf": str(out.pdf), "json": str(out.json), "email": str(out.email_html)}
    (a,) = doc["assessments"]
    assert a["rulebook"] == "cz-monthly" and a["ranking"][0]["county_name"] == "黄骅市"


def test_workbook_sheets_and_ranking(filled: Workspace) -> None:
    out = render(filled)
    wb = openpyxl.load_workbook(out.xlsx)
    assert wb.sheetnames == ["通报", "综合排名", "分项得分", "集群情况", "报送情况", "目标进度", "奖惩结算"]
    cover = [c for row in wb["通报"].iter_rows(values_only=True) for c in row if c]
    assert cover[0] == "沧州市民营经济领导小组办公室（沧州市工业和信息化局）"
    assert TITLE in cover and "2025年4月8日" in cover
    assert any("2025.1版" in str(c) for c in cover) and not any("cz-monthly" in str(c) for c in cover)
    ws = wb["综合排名"]
    assert ws.freeze_panes == "C3" and ws.print_title_rows == "$1:$2"
    assert ws.page_setup.fitToWidth == 1 and int(ws.page_setup.paperSize) == 9
    assert len(ws._charts) == 1
    # name and rank on one row; scores 100 − 5 × (rank − 1)
    rows = {r[1]: r for r in ws.iter_rows(min_row=3, values_only=True) if isinstance(r[0], int)}
    assert len(rows) == 14
    assert rows["黄骅市"][0] == 1 and rows["黄骅市"][3] == 100
    assert rows["肃宁县"][0] == 5 and rows["肃宁县"][3] == 80 and rows["肃宁县"][5] == 2
    assert rows["海兴县"][0] == 14 and rows["海兴县"][3] == 35 and rows["海兴县"][9] == "后三（鞭策后进）"
    assert ws.cell(3, 4).number_format == "0.00"
    assert ws.cell(3, 2).font.name == "宋体"


def test_workbook_clusters_status_goals(filled: Workspace) -> None:
    out = render(filled)
    book = cells(out.xlsx)
    clusters = {r[2]: r for r in book["集群情况"] if isinstance(r[0], int)}
    assert len(clusters) == 45
    assert clusters["CZ01"][4:] == (1_200_000, 120, 1_000_000, 20, "100–200亿")
    assert clusters["CZ11"][8] == "500亿以上" and clusters["CZ05"][8] == "200–500亿"
    assert clusters["CZ12"][7] == pytest.approx(-20.0) and clusters["CZ12"][8] == "100亿以下"
    assert clusters["CZ03"][4] == "未报送" and clusters["CZ03"][8] == "未报送"
    total = next(r for r in book["集群情况"] if str(r[0]).startswith("合计"))
    assert total[4] == 9_580_000 and total[5] == pytest.approx(958.0)
    assert total[7] == pytest.approx((9_580_000 - 8_400_000) / 8_400_000 * 100)
    wb = openpyxl.load_workbook(out.xlsx)
    assert wb["集群情况"].cell(3, 5).number_format == "#,##0"

    status = {r[1]: r for r in book["报送情况"][:16] if isinstance(r[0], int)}
    assert status["黄骅市"][2:5] == ("按时报送", "2025-04-03 16:20", 0)
    assert status["任丘市"][2] == "按时报送"          # 23:59 on the 5th is still on time
    assert status["河间市"][2:6] == ("迟报", "2025-04-07 10:00", 2, "迟报2天")
    assert status["海兴县"][2:4] == ("漏报", "—")

    goals = {r[0]: r for r in book["目标进度"]}
    assert goals["高新技术企业"][2:5] == (400, 1300, pytest.approx(400 / 1300 * 100))
    assert goals["营业收入超百亿元集群"][2:5] == (3, 25, 12)


def test_settlement_sheet(ws: Workspace) -> None:
    reg = ws.registry
    park = make_result(reg, rulebook="cz-park", period="2025", settlement=annual_settlement(reg),
                       tally=[RewardTally("130983", "黄骅市", 3, 2, 8.0), RewardTally("130982", "任丘市", 1, 4, 6.0)])
    monthly = make_result(reg, period="2025", settlement=Settlement(False, "参评县（市）不足6个", [500, 300, 100]))
    out = render(ws, "2025", [park, monthly])
    wb = openpyxl.load_workbook(out.xlsx)
    assert "综合排名（2）" in wb.sheetnames and "分项得分（2）" in wb.sheetnames
    rows = [r for r in wb["奖惩结算"].iter_rows(values_only=True)]
    start = rows.index(("付款县（市）", "收款县（市）", "金额（万元）", None))
    assert rows[start + 1: start + 5] == [
        ("海兴县", "黄骅市", 500, None), ("盐山县", "任丘市", 300, None),
        ("孟村回族自治县", "河间市", 100, None), ("合计", None, 900, None)]
    nets = {r[0]: r[2] for r in rows if r[3] in ("获得奖励", "承担奖励资金")}
    assert nets == {"黄骅市": 500, "任丘市": 300, "河间市": 100, "孟村回族自治县": -100, "盐山县": -300, "海兴县": -500}
    assert ("净额合计", None, 0, None) in rows
    # 3 × 2 + 2 × 1 = 8; 1 × 2 + 4 × 1 = 6; total 14 万元
    assert ("黄骅市", 3, 2, 8) in rows and ("合计", None, None, 14) in rows
    assert ("本期不进行奖惩结算：参评县（市）不足6个", None, None, None) in rows
    page = out.html.read_text(encoding="utf-8")
    assert "本期不进行奖惩结算：参评县（市）不足6个" in page and "+500.00" in page


def test_no_settlement_states_the_reason(filled: Workspace) -> None:
    out = render(filled)
    rows = cells(out.xlsx)["奖惩结算"]
    assert ("本项考核不设奖惩结算。", None, None, None) in rows


def test_same_inputs_same_output(filled: Workspace) -> None:
    first = render(filled)
    html, email, xlsx, js = (p.read_bytes() for p in (first.html, first.email_html, first.xlsx, first.json))
    second = render(filled)
    assert second.html.read_bytes() == html and second.email_html.read_bytes() == email
    assert second.json.read_bytes() == js
    assert second.xlsx.read_bytes() == xlsx          # byte-stable: fixed zip dates and properties
    wb = openpyxl.load_workbook(second.xlsx)
    assert wb.properties.created == wb.properties.modified == datetime(2025, 4, 8)


def test_issued_date_falls_back_to_now(filled: Workspace) -> None:
    result = make_result(filled.registry, issued_at="")
    out = render(filled, results=[result])
    assert "2025年4月20日" in out.html.read_text(encoding="utf-8")


def test_crash_mid_write_keeps_previous_files(filled: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    out = render(filled)
    before = {p: p.read_bytes() for p in (out.xlsx, out.html, out.docx, out.pdf, out.email_html, out.json)}
    real_fsync = os.fsync
    calls = {"n": 0}

    def failing_fsync(fd: int) -> None:
        calls["n"] += 1
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    changed = make_result(filled.registry, order=list(reversed([c.code for c in filled.registry.assessed_counties()])))
    with pytest.raises(OSError, match="disk full"):
        render(filled, results=[changed])
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert calls["n"] == 1
    folder = out.xlsx.parent
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in before)


def test_crash_after_first_file_leaves_whole_files(filled: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure on the second file: the first is replaced whole, the others untouched, no temp files."""
    out = render(filled)
    old_html = out.html.read_bytes()
    real = render_mod.atomic_write
    seen: list[Path] = []

    def flaky(path: Path, data: bytes, **kw: int) -> None:
        seen.append(path)
        if len(seen) == 2:
            tmp = path.parent / f".{path.name}.partial.tmp"
            tmp.write_bytes(data[: len(data) // 2])
            tmp.unlink()
            raise RuntimeError("killed")
        real(path, data, **kw)

    monkeypatch.setattr(render_mod, "atomic_write", flaky)
    with pytest.raises(RuntimeError):
        render(filled, results=[make_result(filled.registry, issued_at="2025-04-09T09:00:00+08:00")])
    assert out.html.read_bytes() == old_html
    openpyxl.load_workbook(out.xlsx)                 # the new workbook, complete
    assert not [p for p in out.xlsx.parent.iterdir() if p.name.startswith(".")]


# --------------------------------------------------------------------------- injection


def test_submission_text_is_never_a_formula(filled: Workspace) -> None:
    names = {"130926": '=HYPERLINK("http://x","y")'}         # a county name, too
    out = render(filled, results=[make_result(filled.registry, names=names)])
    wb = openpyxl.load_workbook(out.xlsx)
    found: dict[str, list[str]] = {}
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                if isinstance(c.value, str) and c.value in ATTACKS:
                    assert c.data_type == "s", (ws.title, c.coordinate, c.value)
                    found.setdefault(c.value, []).append(ws.title)
                if c.data_type == "f":
                    pytest.fail(f"formula in {ws.title}!{c.coordinate}: {c.value}")
    assert set(found) == set(ATTACKS)                  # each warning message, unchanged
    assert "综合排名" in found['=HYPERLINK("http://x","y")']


def test_quarterly_texts_are_text(filled: Workspace) -> None:
    result = make_result(filled.registry, rulebook="cz-quarterly", period="2025Q1")
    out = render(filled, "2025Q1", [result])
    wb = openpyxl.load_workbook(out.xlsx)
    progress = next(r for r in wb["集群进展"].iter_rows(min_row=3) if r[0].value == 1)
    assert progress[4].value == "\n".join(ATTACKS) and progress[4].data_type == "s"
    dom = Dom()
    dom.feed(out.html.read_text(encoding="utf-8"))
    assert "script" not in dom.tags and "\n".join(ATTACKS) in "".join(dom.text)


def test_submission_text_is_never_markup(filled: Workspace) -> None:
    out = render(filled)
    for path in (out.html, out.email_html):
        page = path.read_text(encoding="utf-8")
        dom = Dom()
        dom.feed(page)
        assert "script" not in dom.tags
        text = "".join(dom.text)
        assert "<script>alert(1)</script>" in text      # shown, as text
        assert '=HYPERLINK("http://x","y")' in text
        assert not [u for u in dom.urls if u.startswith(("http:", "https:", "//"))]
        assert "<script" not in page


def test_quarter_reads_quarterly_and_last_month(filled: Workspace) -> None:
    result = make_result(filled.registry, rulebook="cz-quarterly", period="2025Q1")
    result.data = "quarterly"
    out = render(filled, "2025Q1", [result])
    book = cells(out.xlsx)
    assert TITLE.replace("3月", "第一季度") in [c for r in book["通报"] for c in r]
    clusters = {r[2]: r for r in book["集群情况"] if isinstance(r[0], int)}
    assert clusters["CZ01"][4] == 1_200_000            # from the March monthly data
    status = {r[1]: r[2] for r in book["报送情况"][:16] if isinstance(r[0], int)}
    assert status["黄骅市"] == "按时报送" and status["任丘市"] == "漏报"   # the Q1 update


def test_page_prints_on_a4(filled: Workspace) -> None:
    page = render(filled).html.read_text(encoding="utf-8")
    assert "@page { size: A4;" in page and "thead { display: table-header-group; }" in page
    assert "break-before: page" in page
    assert page.count('class="badge top"') == 3 and page.count('class="badge bottom"') == 3


def test_period_without_results(filled: Workspace) -> None:
    out = render(filled, results=[])
    wb = openpyxl.load_workbook(out.xlsx)
    assert "综合排名" in wb.sheetnames
    assert "本期无考核结果" in out.html.read_text(encoding="utf-8")
    assert json.loads(out.json.read_text(encoding="utf-8"))["assessments"] == []


TALLY_RULEBOOK = """
[rulebook]
id = "t-tally"
title = "新增规上企业奖励测试"
version = "T1"
period = "year"
data = "monthly"

[[indicators]]
code = "new_entered"
expr = "ent_above_new_ytd"
weight = 100
method = "rank"

[settlement]
reward_tally = true
reward_new = 3
reward_upgraded = 0.5
"""


def test_reward_tally_heading_states_the_rulebooks_rates(ws: Workspace) -> None:
    from supervise.assess.engine import UnitInput, assess
    from supervise.assess.loading import parse_rulebook

    book = parse_rulebook(TALLY_RULEBOOK, ws.registry.indicators)
    units = [
        UnitInput(c.code, c.name, {"ent_above_new_ytd": 2.0, "ent_above_upgraded_ytd": 4.0})
        for c in ws.registry.assessed_counties()
    ]
    result = assess(book, "2025", "2025-12", 1.0, units)
    out = render(ws, "2025", [result])
    heading = "新增规上工业企业奖励（新建入统每家3万元、小升规每家0.5万元）"
    rows = cells(out.xlsx)["奖惩结算"]
    assert (heading, None, None, None) in rows
    # 2 × 3 + 4 × 0.5 = 8 万元 for each of the 14 counties: 112 in all.
    assert ("黄骅市", 2, 4, 8) in rows and ("合计", None, None, 112) in rows
    page = out.html.read_text(encoding="utf-8")
    assert f"<h4>{heading}</h4>" in page and "每家2万元" not in page


# --------------------------------------------------------------------------- printing and files

ISSUER = "沧州市民营经济领导小组办公室（沧州市工业和信息化局）"


def test_every_printed_page_has_its_number_the_issuer_and_the_period(filled: Workspace) -> None:
    out = render(filled)
    wb = openpyxl.load_workbook(out.xlsx)
    assert len(wb.worksheets) == 7  # 通报, 综合排名, 分项得分, 集群情况, 报送情况, 目标进度, 奖惩结算
    for sheet in wb.worksheets:
        for part in (sheet.oddFooter, sheet.evenFooter):
            assert part.center.text == f"{ISSUER}　2025年3月\n第 &P 页，共 &N 页", sheet.title
            assert part.center.size == 9
        assert sheet.oddHeader.center.text is None, sheet.title  # headers: only a preview's mark


def test_an_ampersand_in_the_issuer_is_printed_not_read_as_a_code() -> None:
    from io import BytesIO

    from supervise.bulletin import write_workbook

    from .bulletin_support import make_bulletin

    wb = openpyxl.load_workbook(BytesIO(write_workbook(make_bulletin(issuer="工信局&统计局", city="沧州市"))))
    assert wb.worksheets[0].oddFooter.center.text == "工信局&&统计局　2025年3月\n第 &P 页，共 &N 页"


@pytest.mark.parametrize("umask", [0o077, 0o022, 0o000])
def test_bulletin_files_get_the_configured_mode_whatever_the_umask(filled: Workspace, umask: int) -> None:
    import os
    import stat

    def modes(out: render_mod.BulletinOutputs) -> set[int]:
        return {stat.S_IMODE(p.stat().st_mode) for p in (out.xlsx, out.html, out.email_html, out.json)}

    old = os.umask(umask)
    try:
        assert modes(render(filled)) == {0o640}                          # the default, "0640"
        text = filled.settings_path.read_text(encoding="utf-8")
        filled.settings_path.write_text(text.replace('file_mode = "0640"', 'file_mode = "0600"'), encoding="utf-8")
        ws = Workspace(filled.home)                                      # the settings read again
        changed = make_result(ws.registry, issued_at="2025-04-09T09:00:00+08:00")
        assert modes(render(ws, results=[changed])) == {0o600}           # files replaced get it too
    finally:
        os.umask(old)


def test_the_mails_plain_text_part_comes_from_the_same_model(tmp_path: Path) -> None:
    from supervise.bulletin.html import render_email_text

    from .bulletin_support import make_bulletin

    b = make_bulletin()
    text = render_email_text(b)
    lines = text.splitlines()
    assert lines[0] == b.issuer and b.title in lines
    for r in b.sections[0].ranking:       # every county of the ranking, in rank order, with its score
        assert any(line.startswith(f"{r.rank}　{r.county_name}") and f"　{r.score:,.2f}　" in line for line in lines)
    assert b.status_summary.sentence in lines
    assert "<" not in text.replace("<script>", "")     # no markup of ours in the plain part
    # A bureau's own wording of the plain part (reports/templates/email.txt in the workspace).
    (tmp_path / "email.txt").write_text("{{ b.title }}——请查收附件。\n", encoding="utf-8")
    assert render_email_text(b, tmp_path) == f"{b.title}——请查收附件。\n"
