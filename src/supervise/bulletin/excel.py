"""The bulletin as an Excel workbook (openpyxl): formatting only, every number comes from the model.

Sheets: 通报 (cover), 综合排名 (one per rulebook: 综合排名, 综合排名（2）…), 分项得分 (likewise),
集群情况, 报送情况 (with data-quality warnings), 集群进展 (quarterly texts, when present), 目标进度,
奖惩结算 (ledger and nets, or the reason there is none; the 新建入统/小升规 tally).

Safety: every string is stored as a string cell (data_type 's'), so text from a submission that
starts with = + - @ is never a formula, and "#N/A" is never an error value.
Determinism: fixed document properties (the bulletin's date) and fixed zip entry dates, so the
same bulletin gives the same bytes.
Speed: cells are addressed with ws.cell(r, c) only (no ws[row] scans), styles are shared objects.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from copy import copy
from datetime import datetime, time
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.styles.cell_style import StyleArray
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.writer.excel import ExcelWriter

from ..printing import print_setup
from .model import AssessmentSection, Bulletin

# Fonts present on every Chinese Windows (宋体 SimSun, 仿宋 FangSong, 黑体 SimHei).
F_TEXT = Font(name="仿宋", size=12)
F_CELL = Font(name="宋体", size=10.5)
F_CELL_BOLD = Font(name="宋体", size=10.5, bold=True)
F_HEAD = Font(name="黑体", size=10.5)
F_TITLE = Font(name="宋体", size=16, bold=True)
F_SHEET_TITLE = Font(name="黑体", size=14)
F_ISSUER = Font(name="宋体", size=22, bold=True, color="C00000")
F_NOTE = Font(name="仿宋", size=10, italic=False, color="404040")
F_PREVIEW = Font(name="黑体", size=14, bold=True, color="C00000")
F_CORRECTION = Font(name="仿宋", size=12, color="C00000")

THIN = Side(style="thin", color="808080")
BORDER = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
RED_LINE = Border(bottom=Side(style="thick", color="C00000"))
FILL_HEAD = PatternFill("solid", fgColor="D9E1F2")
FILL_TOP = PatternFill("solid", fgColor="E2EFDA")
FILL_BOTTOM = PatternFill("solid", fgColor="FCE4D6")
FILL_TOTAL = PatternFill("solid", fgColor="F2F2F2")

CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)
LEFT = Alignment(horizontal="left", vertical="center", wrap_text=True)
RIGHT = Alignment(horizontal="right", vertical="center")
PARA = Alignment(horizontal="left", vertical="top", wrap_text=True, indent=2)

SCORE = "0.00"
WAN = "#,##0"
YI = "#,##0.00"
PCT = "0.0"
INT = "0"
COUNT = "#,##0"

ZIP_DATE = (1980, 1, 1, 0, 0, 0)
# Printed in the footer of every page (&P: this page, &N: the pages of the sheet).
PAGES = "第 &P 页，共 &N 页"
CHART_MAX_BARS = 60


# --------------------------------------------------------------------------- cell helpers


def put(ws: Worksheet, r: int, c: int, value: Any, *, font: Font = F_CELL, fmt: str | None = None,
        align: Alignment | None = None, border: bool = True, fill: PatternFill | None = None) -> None:
    """Write one cell; strings are always literal text (never a formula, never an error code)."""
    cell = ws.cell(row=r, column=c)
    is_text = isinstance(value, str)
    if is_text:
        cell.value = ILLEGAL_CHARACTERS_RE.sub("", value)
        cell.data_type = "s"
    else:
        cell.value = value
    if align is None:
        align = LEFT if is_text else RIGHT
    number_format = fmt if fmt is not None and not is_text else None
    # Resolving a style against the workbook's tables hashes every attribute; do it once per
    # combination and copy the resulting index array (the 2,844-county workbook: 4× faster).
    key = (id(font), number_format, id(align), border, id(fill) if fill is not None else None)
    cache: dict[tuple[Any, ...], StyleArray] = ws.parent._bulletin_styles  # type: ignore[attr-defined]
    style = cache.get(key)
    if style is not None:
        cell._style = copy(style)
        return
    cell.font = font
    if number_format is not None:
        cell.number_format = number_format
    cell.alignment = align
    if border:
        cell.border = BORDER
    if fill is not None:
        cell.fill = fill
    cache[key] = copy(cell._style)


def header(ws: Worksheet, r: int, labels: list[str]) -> None:
    for c, label in enumerate(labels, start=1):
        put(ws, r, c, label, font=F_HEAD, align=CENTER, fill=FILL_HEAD)
    ws.row_dimensions[r].height = 30


def title_row(ws: Worksheet, r: int, text: str, width: int, *, font: Font = F_SHEET_TITLE) -> None:
    put(ws, r, 1, text, font=font, align=CENTER, border=False)
    if width > 1:
        ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=width)
    ws.row_dimensions[r].height = 28


def note_row(ws: Worksheet, r: int, text: str, width: int) -> None:
    put(ws, r, 1, text, font=F_NOTE, align=LEFT, border=False)
    if width > 1:
        ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=width)
    ws.row_dimensions[r].height = _height(text, width * 10, 15)


def widths(ws: Worksheet, values: Sequence[float]) -> None:
    for i, w in enumerate(values, start=1):
        ws.column_dimensions[get_column_letter(i)].width = w


def _height(text: str, units: float, line: float) -> float:
    """Row height for wrapped text: a CJK character takes about two width units."""
    per_line = max(int(units / 2.1), 1)
    lines = sum(max(1, -(-len(part) // per_line)) for part in text.split("\n"))
    return max(line, lines * line)


# --------------------------------------------------------------------------- sheets


def _cover(wb: Workbook, b: Bulletin) -> None:
    ws = wb.active
    ws.title = "通报"
    width = 8
    widths(ws, [12] * width)
    ws.sheet_view.showGridLines = False
    r = 1
    if b.preview:
        title_row(ws, r, f"{b.preview}：本表不是正式通报，不排名公布、不发送", width, font=F_PREVIEW)
        r += 2
    if b.correction_heading:
        title_row(ws, r, f"【更正】{b.version_label}", width, font=F_PREVIEW)
        r += 1
        for line in [b.correction_heading, *b.correction]:
            put(ws, r, 1, line, font=F_CORRECTION, align=PARA, border=False)
            ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=width)
            ws.row_dimensions[r].height = _height(line, width * 12 - 4, 20)
            r += 1
        r += 1
    title_row(ws, r, b.issuer, width, font=F_ISSUER)
    ws.row_dimensions[r].height = _height(b.issuer, width * 12 * 0.55, 32)
    r += 1
    for c in range(1, width + 1):
        ws.cell(row=r, column=c).border = RED_LINE
    ws.row_dimensions[r].height = 6
    r += 2
    title_row(ws, r, b.title, width, font=F_TITLE)
    ws.row_dimensions[r].height = _height(b.title, width * 12 * 0.75, 30)
    r += 1
    if b.version_label:
        put(ws, r, 1, f"（{b.version_label}）", font=F_TEXT, align=CENTER, border=False)
        ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=width)
    r += 1
    put(ws, r, 1, "一、总体情况", font=Font(name="黑体", size=12), align=LEFT, border=False)
    r += 1
    for para in b.overview:
        put(ws, r, 1, para, font=F_TEXT, align=PARA, border=False)
        ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=width)
        ws.row_dimensions[r].height = _height(para, width * 12 - 4, 20)
        r += 1
    r += 1
    put(ws, r, 1, "二、考核规则", font=Font(name="黑体", size=12), align=LEFT, border=False)
    r += 1
    for s in b.sections:
        line = f"《{s.title}》：{s.version}版，" + (
            f"参评县（市）{len(s.ranking)}个。" if s.assessable else f"本期不予排名：{'；'.join(s.reasons)}。")
        put(ws, r, 1, line, font=F_TEXT, align=PARA, border=False)
        ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=width)
        ws.row_dimensions[r].height = _height(line, width * 12 - 4, 20)
        r += 1
    if not b.sections:
        put(ws, r, 1, "本期无考核结果。", font=F_TEXT, align=PARA, border=False)
        r += 1
    r += 1
    put(ws, r, 1, "附表：综合排名、分项得分、集群情况、报送情况、目标进度、奖惩结算（见本工作簿各工作表）。",
        font=F_TEXT, align=PARA, border=False)
    ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=width)
    ws.row_dimensions[r].height = 40
    r += 3
    for text in (b.issuer, b.date_line):
        put(ws, r, 1, text, font=F_TEXT, align=Alignment(horizontal="right", vertical="center", wrap_text=True),
            border=False)
        ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=width)
        ws.row_dimensions[r].height = _height(text, width * 12, 20)
        r += 1
    print_setup(ws, "")


def _ranking(wb: Workbook, s: AssessmentSection, name: str) -> None:
    ws = wb.create_sheet(name)
    labels = ["名次", "县（市）", "县（市）代码", "综合得分", "指标得分", "扣分", "上期名次", "名次变化", "报送情况", "备注"]
    widths(ws, [7, 18, 12, 10, 10, 8, 10, 10, 10, 14])
    title_row(ws, 1, f"《{s.title}》综合排名（{s.version}版）", len(labels))
    header(ws, 2, labels)
    r = 3
    if not s.assessable:
        note_row(ws, r, _unranked(s), len(labels))
        r += 1
    for row in s.ranking:
        fill = FILL_TOP if row.mark == "top" else FILL_BOTTOM if row.mark == "bottom" else None
        remark = "前三（鼓励先进）" if row.mark == "top" else "后三（鞭策后进）" if row.mark == "bottom" else ""
        put(ws, r, 1, row.rank, fmt=INT, align=CENTER, fill=fill)
        put(ws, r, 2, row.county_name, fill=fill)
        put(ws, r, 3, row.county_code, align=CENTER, fill=fill)
        put(ws, r, 4, row.score, fmt=SCORE, fill=fill, font=F_CELL_BOLD)
        put(ws, r, 5, row.points_total, fmt=SCORE, fill=fill)
        put(ws, r, 6, row.deductions, fmt=SCORE, fill=fill)
        put(ws, r, 7, row.previous_rank if row.previous_rank is not None else "—", fmt=INT, align=CENTER, fill=fill)
        put(ws, r, 8, row.change_label, align=CENTER, fill=fill)
        put(ws, r, 9, row.reporting, align=CENTER, fill=fill)
        put(ws, r, 10, remark, align=CENTER, fill=fill)
        r += 1
    end = r
    note = (
        f"注：名次变化与上期（{s.previous_period}）相比；“—”表示上期未参评或无上期结果。"
        if s.previous_period else "注：本规则无上期考核结果，名次变化记为“—”。"
    )
    note_row(ws, end + 1, note, len(labels))
    ws.freeze_panes = "C3"
    print_setup(ws, "1:2")
    if s.ranking:
        bars = min(len(s.ranking), CHART_MAX_BARS)
        chart = BarChart()
        chart.type = "col" if bars <= 20 else "bar"
        chart.style = 10
        chart.title = "综合得分" if bars == len(s.ranking) else f"综合得分（前{bars}名）"
        chart.y_axis.title = "得分"
        chart.legend = None
        chart.add_data(Reference(ws, min_col=4, min_row=2, max_row=2 + bars), titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=2, min_row=3, max_row=2 + bars))
        chart.width = 18
        chart.height = 8 if bars <= 20 else max(8.0, bars * 0.45)
        # Below the table, so that printing fits the table's width and not the chart's.
        ws.add_chart(chart, f"A{end + 3}")


def _points(wb: Workbook, s: AssessmentSection, name: str) -> None:
    ws = wb.create_sheet(name)
    labels = ["名次", "县（市）"] + [f"{c.label}（权重{c.weight:g}）" for c in s.indicators] + ["扣分", "扣分说明", "综合得分"]
    widths(ws, [7, 18] + [13] * len(s.indicators) + [8, 28, 10])
    title_row(ws, 1, f"《{s.title}》分项得分（{s.version}版）", len(labels))
    header(ws, 2, labels)
    ws.row_dimensions[2].height = 45
    r = 3
    n = len(s.indicators)
    if not s.assessable:
        note_row(ws, r, _unranked(s), len(labels))
        r += 1
    for row in s.points:
        put(ws, r, 1, row.rank, fmt=INT, align=CENTER)
        put(ws, r, 2, row.county_name)
        for i, p in enumerate(row.points):
            put(ws, r, 3 + i, p if p is not None else "—", fmt=SCORE)
        put(ws, r, 3 + n, row.deductions, fmt=SCORE)
        put(ws, r, 4 + n, row.deduction_note)
        put(ws, r, 5 + n, row.score, fmt=SCORE, font=F_CELL_BOLD)
        r += 1
    methods = "；".join(f"{c.label}：{c.method}" for c in s.indicators)
    note_row(ws, r + 1, f"注：各项得分为未取整的计分结果，综合得分 = 各项得分之和 − 扣分，按规则保留小数后排名。计分方法：{methods}。",
             len(labels))
    ws.freeze_panes = "C3"
    print_setup(ws, "1:2", landscape=True)


def _unranked(s: AssessmentSection) -> str:
    return f"本期不予排名，不进行奖惩结算：{'；'.join(s.reasons)}。"


def _clusters(wb: Workbook, b: Bulletin) -> None:
    ws = wb.create_sheet("集群情况")
    labels = ["序号", "县（市）", "集群代码", "集群名称", "营业收入本年累计（万元）", "营业收入本年累计（亿元）",
              "上年同期（万元）", "同比增长（%）", "规模档次"]
    widths(ws, [6, 16, 9, 22, 16, 14, 16, 12, 12])
    title_row(ws, 1, f"{b.period_label}县域特色产业集群情况（{b.cluster_summary.months}累计）", len(labels))
    header(ws, 2, labels)
    r = 3
    for c in b.clusters:
        put(ws, r, 1, c.index, fmt=INT, align=CENTER)
        put(ws, r, 2, c.county_name)
        put(ws, r, 3, c.cluster_code, align=CENTER)
        put(ws, r, 4, c.cluster_name)
        put(ws, r, 5, c.revenue if c.revenue is not None else c.absent, fmt=WAN)
        put(ws, r, 6, c.revenue_yi if c.revenue_yi is not None else "—", fmt=YI)
        put(ws, r, 7, c.revenue_ly if c.revenue_ly is not None else "—", fmt=WAN)
        put(ws, r, 8, c.growth if c.growth is not None else "—", fmt=PCT)
        put(ws, r, 9, c.tier if c.reported else c.absent, align=CENTER)
        r += 1
    s = b.cluster_summary
    put(ws, r, 1, f"合计（已报送{s.reported}个集群，共{s.clusters}个）", font=F_CELL_BOLD, fill=FILL_TOTAL)
    ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=4)
    put(ws, r, 5, s.revenue, fmt=WAN, font=F_CELL_BOLD, fill=FILL_TOTAL)
    put(ws, r, 6, s.revenue_yi, fmt=YI, font=F_CELL_BOLD, fill=FILL_TOTAL)
    put(ws, r, 7, s.revenue_ly, fmt=WAN, font=F_CELL_BOLD, fill=FILL_TOTAL)
    put(ws, r, 8, s.growth if s.growth is not None else "—", fmt=PCT, font=F_CELL_BOLD, fill=FILL_TOTAL)
    put(ws, r, 9, "", fill=FILL_TOTAL)
    r += 2
    put(ws, r, 1, "规模档次", font=F_HEAD, align=CENTER, fill=FILL_HEAD)
    ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=4)
    put(ws, r, 5, "集群数（个）", font=F_HEAD, align=CENTER, fill=FILL_HEAD)
    r += 1
    for t in s.tiers:
        put(ws, r, 1, t.tier, align=CENTER)
        ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=4)
        put(ws, r, 5, t.count, fmt=COUNT)
        r += 1
    note_row(ws, r + 1, b.tier_note, len(labels))
    ws.freeze_panes = "A3"
    print_setup(ws, "1:2", landscape=True)


def _status(wb: Workbook, b: Bulletin) -> None:
    ws = wb.create_sheet("报送情况")
    labels = ["序号", "县（市）", "报送情况", "接收时间", "迟报天数", "说明", "数据质量提示（条）"]
    widths(ws, [6, 18, 22, 18, 10, 40, 12])
    title_row(ws, 1, f"{b.period_label}数据报送情况", len(labels))
    header(ws, 2, labels)
    r = 3
    for i, s in enumerate(b.statuses, start=1):
        fill = None if s.state == "on_time" else FILL_BOTTOM
        put(ws, r, 1, i, fmt=INT, align=CENTER, fill=fill)
        put(ws, r, 2, s.county_name, fill=fill)
        put(ws, r, 3, s.label, align=CENTER, fill=fill)
        put(ws, r, 4, s.received_at or "—", align=CENTER, fill=fill)
        put(ws, r, 5, s.days_late, fmt=INT, fill=fill)
        put(ws, r, 6, s.detail, fill=fill)
        put(ws, r, 7, s.warnings, fmt=COUNT, fill=fill)
        r += 1
    note_row(ws, r, b.status_summary.sentence, len(labels))
    r += 2
    title_row(ws, r, "数据质量提示", len(labels))
    r += 1
    put(ws, r, 1, "序号", font=F_HEAD, align=CENTER, fill=FILL_HEAD)
    put(ws, r, 2, "县（市）", font=F_HEAD, align=CENTER, fill=FILL_HEAD)
    put(ws, r, 3, "位置", font=F_HEAD, align=CENTER, fill=FILL_HEAD)
    ws.merge_cells(start_row=r, start_column=3, end_row=r, end_column=4)
    put(ws, r, 5, "提示内容", font=F_HEAD, align=CENTER, fill=FILL_HEAD)
    ws.merge_cells(start_row=r, start_column=5, end_row=r, end_column=7)
    r += 1
    if not b.warnings:
        put(ws, r, 1, "本期无数据质量提示。", border=False)
    for i, w in enumerate(b.warnings, start=1):
        put(ws, r, 1, i, fmt=INT, align=CENTER)
        put(ws, r, 2, w.county_name)
        put(ws, r, 3, w.where)
        ws.merge_cells(start_row=r, start_column=3, end_row=r, end_column=4)
        put(ws, r, 5, w.message)
        ws.merge_cells(start_row=r, start_column=5, end_row=r, end_column=7)
        ws.row_dimensions[r].height = _height(w.message, 60, 15)
        r += 1
    ws.freeze_panes = "A3"
    print_setup(ws, "1:2", landscape=True)


def _texts(wb: Workbook, b: Bulletin) -> None:
    ws = wb.create_sheet("集群进展")
    labels = ["序号", "县（市）", "集群名称", "进展成效", "存在问题", "下一步措施"]
    widths(ws, [6, 14, 16, 45, 40, 40])
    title_row(ws, 1, f"{b.period_label}各集群进展情况（县（市）报送原文）", len(labels))
    header(ws, 2, labels)
    for i, t in enumerate(b.texts, start=1):
        r = i + 2
        put(ws, r, 1, i, fmt=INT, align=CENTER)
        put(ws, r, 2, t.county_name)
        put(ws, r, 3, t.cluster_name)
        put(ws, r, 4, t.progress)
        put(ws, r, 5, t.problems)
        put(ws, r, 6, t.next_steps)
        ws.row_dimensions[r].height = max(_height(x, 40, 15) for x in (t.progress, t.problems, t.next_steps))
    ws.freeze_panes = "A3"
    print_setup(ws, "1:2", landscape=True)


def _goals(wb: Workbook, b: Bulletin) -> None:
    ws = wb.create_sheet("目标进度")
    labels = ["目标", "单位", "当前值", "2025年目标", "完成进度（%）", "口径说明"]
    widths(ws, [26, 8, 14, 16, 14, 44])
    title_row(ws, 1, "2025年主要目标完成进度", len(labels))
    header(ws, 2, labels)
    r = 3
    for g in b.goals:
        put(ws, r, 1, g.label)
        put(ws, r, 2, g.unit, align=CENTER)
        put(ws, r, 3, g.current if g.current is not None else "—", fmt="#,##0.0" if g.unit == "%" else COUNT)
        put(ws, r, 4, g.goal if g.goal is not None else g.goal_text, fmt=COUNT, align=RIGHT)
        put(ws, r, 5, g.percent if g.percent is not None else "—", fmt=PCT)
        put(ws, r, 6, g.basis)
        r += 1
    note_row(ws, r + 1, b.goal_note, len(labels))
    ws.freeze_panes = "A3"
    print_setup(ws, "1:2")


def _settlement(wb: Workbook, b: Bulletin) -> None:
    ws = wb.create_sheet("奖惩结算")
    width = 4
    widths(ws, [20, 20, 16, 16])
    title_row(ws, 1, f"{b.period_label}奖惩结算", width)
    r = 3
    for s in b.sections:
        title_row(ws, r, f"《{s.title}》（{s.version}版）", width, font=F_HEAD)
        r += 1
        v = s.settlement
        if v is not None and v.applies:
            header(ws, r, ["付款县（市）", "收款县（市）", "金额（万元）", ""])
            r += 1
            for line in v.ledger:
                put(ws, r, 1, line.payer_name)
                put(ws, r, 2, line.payee_name)
                put(ws, r, 3, line.amount, fmt=YI)
                r += 1
            put(ws, r, 1, "合计", font=F_CELL_BOLD, fill=FILL_TOTAL)
            put(ws, r, 2, "", fill=FILL_TOTAL)
            put(ws, r, 3, v.ledger_total, fmt=YI, font=F_CELL_BOLD, fill=FILL_TOTAL)
            r += 2
            header(ws, r, ["县（市）", "名次", "净额（万元）", "说明"])
            r += 1
            for n in v.nets:
                put(ws, r, 1, n.county_name)
                put(ws, r, 2, n.rank if n.rank is not None else "—", fmt=INT, align=CENTER)
                put(ws, r, 3, n.net, fmt="#,##0.00;-#,##0.00;0")
                put(ws, r, 4, "获得奖励" if n.net > 0 else "承担奖励资金" if n.net < 0 else "", align=CENTER)
                r += 1
            put(ws, r, 1, "净额合计", font=F_CELL_BOLD, fill=FILL_TOTAL)
            put(ws, r, 2, "", fill=FILL_TOTAL)
            put(ws, r, 3, v.net_sum, fmt="#,##0.00;-#,##0.00;0", font=F_CELL_BOLD, fill=FILL_TOTAL)
            put(ws, r, 4, "", fill=FILL_TOTAL)
            r += 1
        else:
            note_row(ws, r, s.settlement_note, width)
            r += 1
        if s.tally:
            r += 1
            title_row(ws, r, s.tally_title, width, font=F_HEAD)
            r += 1
            header(ws, r, ["县（市）", "新建入统（家）", "小升规（家）", "奖励金额（万元）"])
            r += 1
            for t in s.tally:
                put(ws, r, 1, t.county_name)
                put(ws, r, 2, t.new_entered, fmt=COUNT)
                put(ws, r, 3, t.upgraded, fmt=COUNT)
                put(ws, r, 4, t.amount, fmt=YI)
                r += 1
            put(ws, r, 1, "合计", font=F_CELL_BOLD, fill=FILL_TOTAL)
            put(ws, r, 2, "", fill=FILL_TOTAL)
            put(ws, r, 3, "", fill=FILL_TOTAL)
            put(ws, r, 4, s.tally_total, fmt=YI, font=F_CELL_BOLD, fill=FILL_TOTAL)
            r += 1
        r += 2
    if not b.sections:
        note_row(ws, r, "本期无考核结果，不进行奖惩结算。", width)
    print_setup(ws, "")


def sheet_names(b: Bulletin) -> list[str]:
    """综合排名, 分项得分 for the first rulebook; 综合排名（2）… for the others."""
    return [("" if i == 0 else f"（{i + 1}）") for i in range(len(b.sections))]


# --------------------------------------------------------------------------- the workbook


def build_workbook(b: Bulletin) -> Workbook:
    wb = Workbook()
    wb._bulletin_styles = {}  # type: ignore[attr-defined]
    stamp = datetime.combine(b.issued, time(0))
    wb.properties.created = stamp
    wb.properties.modified = stamp
    wb.properties.creator = b.issuer
    wb.properties.lastModifiedBy = b.issuer
    wb.properties.title = b.title
    _cover(wb, b)
    suffixes = sheet_names(b)
    for s, suffix in zip(b.sections, suffixes):
        _ranking(wb, s, f"综合排名{suffix}")
    for s, suffix in zip(b.sections, suffixes):
        _points(wb, s, f"分项得分{suffix}")
    if not b.sections:
        ws = wb.create_sheet("综合排名")
        title_row(ws, 1, "本期无考核结果", 4)
    _clusters(wb, b)
    _status(wb, b)
    if b.texts:
        _texts(wb, b)
    _goals(wb, b)
    _settlement(wb, b)
    _footers(wb, b)
    if b.preview:
        _mark_preview(wb, b.preview)
    return wb


def _literal(text: str) -> str:
    """Text for a header or footer, where & starts a code (&P, &N): a literal & is &&."""
    return text.replace("&", "&&")


def _footer_text(b: Bulletin) -> str:
    """Who issued it and for which period (and version); then the page of the pages, after a
    preview's mark."""
    who = "　".join(x for x in (b.footer_left, b.footer_right) if x)
    pages = f"{_literal(b.preview)}　{PAGES}" if b.preview else PAGES
    return f"{_literal(who)}\n{pages}" if who else pages


def _footers(wb: Workbook, b: Bulletin) -> None:
    """Every printed page of every sheet: the issuer and the period, page N of M (a preview's
    footer in its red, like its header)."""
    text = _footer_text(b)
    for ws in wb.worksheets:
        for part in (ws.oddFooter, ws.evenFooter, ws.firstFooter):
            part.center.text = text
            part.center.size = 12 if b.preview else 9
            if b.preview:
                part.center.color = "C00000"


def _mark_preview(wb: Workbook, mark: str) -> None:
    """A preview says so on every sheet: in its title row (the cover has its own banner), in
    the header of every printed page, and in its footer beside the page numbers (`_footers`)."""
    for ws in wb.worksheets:
        for part in (ws.oddHeader, ws.evenHeader, ws.firstHeader):
            part.center.text = _literal(mark)
            part.center.size = 12
            part.center.color = "C00000"
        if ws is wb.worksheets[0]:
            continue
        title = ws.cell(row=1, column=1)
        if isinstance(title.value, str):
            title.value = f"【{mark}】{title.value}"


def workbook_bytes(wb: Workbook) -> bytes:
    """Save without openpyxl's wall-clock 'modified' stamp, then fix every zip entry's date."""
    raw = io.BytesIO()
    # Stored, not compressed, here: the entries are compressed once, below.
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        ExcelWriter(wb, archive).save()
    out = io.BytesIO()
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=ZIP_DATE)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o600 << 16
            dst.writestr(entry, src.read(info.filename))
    return out.getvalue()


def write_workbook(b: Bulletin) -> bytes:
    """The bulletin workbook as .xlsx bytes (the same bulletin gives the same bytes)."""
    return workbook_bytes(build_workbook(b))
