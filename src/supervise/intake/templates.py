"""Blank submission templates for the counties, and filling them (tests, demo, benchmarks).

The layout is a contract with the readers (and with the counties' habits):

- sheet ``填报表``: row 1 title; row 2 the metadata (label cells, then the value to their right:
  county code B2, county name D2, period F2, template version H2), locked;
  row 3 a note; row 4 Chinese labels with units; row 5 the indicator codes (column A
  ``cluster_code``); one row per cluster from row 6, cluster code in column A, name in column B;
- sheet ``填报说明``: every field explained (label, code, unit, rules, deadline).

Readers find columns by the indicator codes and rows by the cluster codes, and the metadata by
its labels, so a re-save by LibreOffice or WPS that shifts rows still reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Protection, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from ..periods import Month, Period, Quarter, chinese_date, dataset_title
from ..printing import print_setup
from ..registry import Indicator, Registry, unknown_county_message
from ..workspace import Workspace, atomic_write
from .layout import (
    CLUSTER_CODE_HEADER,
    CLUSTER_NAME_HEADER,
    DATA_SHEET,
    HELP_SHEET,
    TEMPLATE_VERSION,
)

# Metadata labels and their fixed cells (label cell, value cell).
META_LABELS = {
    "county_code": "县（市）代码",
    "county_name": "县（市）名称",
    "period": "报告期",
    "template_version": "模板版本",
}
META_CELLS = {
    "county_code": ("A2", "B2"),
    "county_name": ("C2", "D2"),
    "period": ("E2", "F2"),
    "template_version": ("G2", "H2"),
}
TITLE_ROW = 1
META_ROW = 2
NOTE_ROW = 3
LABEL_ROW = 4
CODE_ROW = 5
FIRST_DATA_ROW = 6

_THIN = Side(style="thin", color="999999")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_HEAD_FILL = PatternFill("solid", fgColor="DDEBF7")
_META_FILL = PatternFill("solid", fgColor="F2F2F2")
_INPUT_FILL = PatternFill("solid", fgColor="FFFFFF")
_LOCKED = Protection(locked=True)
_UNLOCKED = Protection(locked=False)
_SAFE_NAME = re.compile(r"[^0-9A-Za-z\u4e00-\u9fff_-]+")


def title_of(period: Period) -> str:
    return f"{period.label}县域特色产业{dataset_title(period)}"


def _text_cell(sh: Any, row: int, col: int, value: Any) -> Any:
    """Write one cell; a string is always literal text, never a formula (a registry label or
    help text starting with "=" stays text)."""
    cell = sh.cell(row, col)
    cell.value = value
    if isinstance(value, str):
        cell.data_type = "s"
    return cell


def rule_text(ind: Indicator, max_text_chars: int) -> str:
    """The filling rule of one indicator, in the words a county clerk reads."""
    if not ind.is_number:
        rule = f"文字，不超过{max_text_chars}字"
        return rule + ("，可空" if ind.optional else "，必填")
    parts = ["整数" if ind.integer else "数字"]
    if ind.min is not None and ind.max is not None:
        parts.append(f"{_fmt(ind.min)}至{_fmt(ind.max)}之间")
    elif ind.min is not None:
        parts.append(f"不小于{_fmt(ind.min)}")
    elif ind.max is not None:
        parts.append(f"不大于{_fmt(ind.max)}")
    else:
        parts.append("可为负数")
    parts.append("可空" if ind.optional else "必填，没有填0")
    return "，".join(parts)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def template_name(county_code: str, county_name: str, period: Period) -> str:
    safe = _SAFE_NAME.sub("_", county_name).strip("_") or "county"
    return f"{county_code}-{safe}-{period}.xlsx"


def write_templates(
    ws: Workspace, period: Period, county_code: str | None = None
) -> list[dict[str, str]]:
    """Write one blank template per (assessed) county, or only `county_code`'s."""
    p = period
    if not isinstance(p, (Month, Quarter)):
        raise TypeError(f"templates exist for months and quarters, not {p}")
    dataset = p.dataset
    reg = ws.registry
    if county_code is not None:
        if county_code not in reg.counties:
            from ..errors import SuperviseError

            raise SuperviseError(unknown_county_message(county_code))
        counties = [reg.counties[county_code]]
    else:
        counties = reg.assessed_counties()
    out_dir = ws.outbox_dir / "templates" / str(p)
    out_dir.mkdir(parents=True, exist_ok=True)
    deadline = ws.settings.deadlines.deadline(p) - timedelta(seconds=1)
    max_text = int(ws.settings.limits.get("max_text_chars", 5000))
    out = []
    for county in counties:
        path = out_dir / template_name(county.code, county.name, p)
        wb = build_template(reg, county.code, p, dataset, deadline_text=_deadline_text(deadline),
                            max_text_chars=max_text)
        buf = BytesIO()
        wb.save(buf)
        atomic_write(path, buf.getvalue())
        out.append({"county_code": county.code, "period": str(p), "path": str(path)})
    return out


def _deadline_text(dt: Any) -> str:
    return f"{chinese_date(dt)}24时前"


def build_template(
    reg: Registry,
    county_code: str,
    period: Period,
    dataset: str,
    *,
    deadline_text: str,
    max_text_chars: int = 5000,
) -> Workbook:
    """The workbook of one county's blank template."""
    county = reg.counties[county_code]
    clusters = reg.clusters_of(county_code)
    indicators = reg.indicators_of(dataset)
    wb = Workbook()
    sh = wb.active
    sh.title = DATA_SHEET
    ncols = 2 + len(indicators)

    # Title
    _text_cell(sh, TITLE_ROW, 1, title_of(period)).font = Font(bold=True, size=14)
    sh.merge_cells(start_row=TITLE_ROW, start_column=1, end_row=TITLE_ROW, end_column=max(ncols, 8))
    sh.cell(TITLE_ROW, 1).alignment = Alignment(horizontal="center", vertical="center")
    sh.row_dimensions[TITLE_ROW].height = 28

    # Metadata (labels and values, all locked). Values are text so no program turns them into dates.
    meta_values: dict[str, Any] = {
        "county_code": county.code,
        "county_name": county.name,
        "period": str(period),
        "template_version": TEMPLATE_VERSION,
    }
    for key, (label_ref, value_ref) in META_CELLS.items():
        lc = sh[label_ref]
        lc.value = META_LABELS[key]
        lc.data_type = "s"
        lc.font = Font(bold=True)
        lc.fill = _META_FILL
        lc.border = _BORDER
        vc = sh[value_ref]
        vc.value = meta_values[key]
        if isinstance(meta_values[key], str):
            vc.data_type = "s"
            vc.number_format = "@"
        vc.fill = _META_FILL
        vc.border = _BORDER
        vc.alignment = Alignment(horizontal="left")

    note = (
        f"请在白色单元格内填写数据，截止时间：{deadline_text}。金额单位为万元（不是元），"
        "累计指标填本年1月至报告期末的累计数；没有的填0，不要留空；不要修改灰色单元格、"
        "第5行的指标代码和A列的集群代码。各项要求见“填报说明”表。"
    )
    nc = _text_cell(sh, NOTE_ROW, 1, note)
    nc.alignment = Alignment(wrap_text=True, vertical="top")
    nc.font = Font(color="C00000")
    sh.merge_cells(start_row=NOTE_ROW, start_column=1, end_row=NOTE_ROW, end_column=max(ncols, 8))
    sh.row_dimensions[NOTE_ROW].height = 36

    # Header: Chinese labels with units, then the codes.
    heads = [("集群代码", CLUSTER_CODE_HEADER), ("集群名称", CLUSTER_NAME_HEADER)]
    heads += [(ind.header, ind.code) for ind in indicators]
    for col, (label, code) in enumerate(heads, start=1):
        lc = _text_cell(sh, LABEL_ROW, col, label)
        lc.font = Font(bold=True)
        lc.fill = _HEAD_FILL
        lc.border = _BORDER
        lc.alignment = Alignment(wrap_text=True, horizontal="center", vertical="center")
        cc = _text_cell(sh, CODE_ROW, col, code)
        cc.font = Font(color="808080", size=9)
        cc.fill = _META_FILL
        cc.border = _BORDER
        cc.alignment = Alignment(horizontal="center")
        width = 10 if col == 1 else 16 if col == 2 else max(12, min(30, len(label) * 2 + 2))
        if col > 2 and not indicators[col - 3].is_number:
            width = 40
        sh.column_dimensions[get_column_letter(col)].width = width
    sh.row_dimensions[LABEL_ROW].height = 48

    # One row per cluster: code and name locked, input cells unlocked.
    last_row = FIRST_DATA_ROW + len(clusters) - 1
    for i, cl in enumerate(clusters):
        r = FIRST_DATA_ROW + i
        a = _text_cell(sh, r, 1, cl.code)
        b = _text_cell(sh, r, 2, cl.name)
        for c in (a, b):
            c.fill = _META_FILL
            c.border = _BORDER
        for j, ind in enumerate(indicators):
            cell = sh.cell(r, 3 + j)
            cell.protection = _UNLOCKED
            cell.fill = _INPUT_FILL
            cell.border = _BORDER
            if ind.is_number:
                cell.number_format = "0" if ind.integer else "0.00"
            else:
                cell.number_format = "@"
                cell.alignment = Alignment(wrap_text=True, vertical="top")

    # Data validation, one rule per indicator column.
    if clusters:
        for j, ind in enumerate(indicators):
            letter = get_column_letter(3 + j)
            dv = _validation(ind, max_text_chars)
            dv.add(f"{letter}{FIRST_DATA_ROW}:{letter}{last_row}")
            sh.add_data_validation(dv)

    sh.freeze_panes = sh.cell(FIRST_DATA_ROW, 3)
    print_setup(sh, f"1:{FIRST_DATA_ROW - 1}", landscape=True, margins=(0.4, 0.6, 0.6), page_numbers=True)
    sh.print_title_cols = "A:B"
    sh.protection.sheet = True
    sh.protection.formatColumns = False
    sh.protection.formatRows = False
    sh.protection.insertRows = True
    sh.protection.deleteRows = True
    sh.protection.selectLockedCells = False
    sh.protection.selectUnlockedCells = False

    _write_help(wb, reg, county_code, period, indicators, deadline_text, max_text_chars)
    wb.properties.title = title_of(period)
    wb.properties.creator = "supervise"
    return wb


def _validation(ind: Indicator, max_text_chars: int) -> DataValidation:
    rule = rule_text(ind, max_text_chars)
    if not ind.is_number:
        dv = DataValidation(type="textLength", operator="lessThanOrEqual", formula1=str(max_text_chars),
                            allow_blank=True)
    else:
        kind = "whole" if ind.integer else "decimal"
        lo, hi = ind.min, ind.max
        if lo is not None and hi is not None:
            dv = DataValidation(type=kind, operator="between", formula1=_fmt(lo), formula2=_fmt(hi))
        elif lo is not None:
            dv = DataValidation(type=kind, operator="greaterThanOrEqual", formula1=_fmt(lo))
        elif hi is not None:
            dv = DataValidation(type=kind, operator="lessThanOrEqual", formula1=_fmt(hi))
        else:
            dv = DataValidation(type=kind, operator="between", formula1="-1E+15", formula2="1E+15")
        dv.allow_blank = ind.optional
    dv.showErrorMessage = True
    dv.showInputMessage = True
    dv.errorTitle = "填写有误"
    dv.error = f"{ind.label}：{rule}"[:255]
    dv.promptTitle = ind.label[:32]
    dv.prompt = (f"{rule}。{ind.help}" if ind.help else rule)[:255]
    return dv


def _write_help(
    wb: Workbook,
    reg: Registry,
    county_code: str,
    period: Period,
    indicators: list[Indicator],
    deadline_text: str,
    max_text_chars: int,
) -> None:
    sh = wb.create_sheet(HELP_SHEET)
    county = reg.counties[county_code]
    lines = [
        f"{title_of(period)} 填报说明",
        f"填报单位：{county.name}（代码 {county.code}）；报告期：{period}（{period.label}）；"
        f"模板版本：{TEMPLATE_VERSION}",
        f"报送截止时间：{deadline_text}。逾期报送计为迟报，未报送计为漏报，校验未通过将被退回并需重新报送。",
        "请只在“填报表”的白色单元格内填写；不要增删行列，不要修改集群代码、指标代码和表头信息。",
        "数字单元格只填数字（不要填“约”“左右”、单位或文字）；没有的填0，不要留空；金额单位为万元。",
        "累计指标填本年1月至报告期末的累计数，不得小于上月累计数（更正数据时请在报送时说明）。",
        "可以用 Excel、WPS 或 LibreOffice 填写并保存为 .xlsx、.xls 或 .ods 格式，也可以“另存为 CSV”报送；请勿加密文件或设置打开密码。",
    ]
    for i, text in enumerate(lines, start=1):
        c = _text_cell(sh, i, 1, text)
        c.alignment = Alignment(wrap_text=False)
        if i == 1:
            c.font = Font(bold=True, size=13)
    start = len(lines) + 2
    heads = ["序号", "指标名称", "指标代码", "单位", "类型", "填写要求", "说明"]
    for col, h in enumerate(heads, start=1):
        c = _text_cell(sh, start, col, h)
        c.font = Font(bold=True)
        c.fill = _HEAD_FILL
        c.border = _BORDER
    kinds = {"stock": "期末数", "ytd": "本年累计", "text": "文字"}
    for i, ind in enumerate(indicators, start=1):
        row = [i, ind.label, ind.code, ind.unit, kinds.get(ind.kind, ind.kind),
               rule_text(ind, max_text_chars), ind.help]
        for col, v in enumerate(row, start=1):
            c = _text_cell(sh, start + i, col, v)
            c.border = _BORDER
            c.alignment = Alignment(wrap_text=True, vertical="top")
    extra = start + len(indicators) + 2
    _text_cell(sh, extra, 1, "交叉校验：规上工业企业数、入园进区企业数均不得大于集群企业总数；"
                      "百分比填0到100之间的数。").alignment = Alignment(wrap_text=False)
    for letter, w in zip("ABCDEFG", (6, 30, 24, 8, 10, 34, 60), strict=True):
        sh.column_dimensions[letter].width = w
    print_setup(sh, f"{start}:{start}", landscape=True, margins=(0.4, 0.6, 0.6), page_numbers=True)
    sh.protection.sheet = True


# ------------------------------------------------------------------ filling (tests, demo, benchmarks)


def find_code_row(sheet: Any, codes: set[str] | None = None, max_rows: int = 50) -> int:
    """The row holding the indicator codes: column A says cluster_code, or it holds a known code."""
    for r in range(1, min(sheet.max_row, max_rows) + 1):
        values = [sheet.cell(r, c).value for c in range(1, sheet.max_column + 1)]
        if values and isinstance(values[0], str) and values[0].strip() == CLUSTER_CODE_HEADER:
            return r
        if codes and any(isinstance(v, str) and v.strip() in codes for v in values):
            return r
    raise ValueError("no row of indicator codes found")


def fill_template(
    path: Path | str,
    values: Mapping[str, Mapping[str, Any]],
    out: Path | str | None = None,
) -> Path:
    """Write `values` (cluster code -> indicator code -> value) into a template, found by codes.

    Strings are written as text (never as formulas). Unknown clusters/indicators raise KeyError.
    """
    path = Path(path)
    wb = load_workbook(path)
    sh = wb[DATA_SHEET] if DATA_SHEET in wb.sheetnames else wb.worksheets[0]
    wanted = {code for row in values.values() for code in row}
    code_row = find_code_row(sh, wanted)
    columns = {}
    for c in range(1, sh.max_column + 1):
        v = sh.cell(code_row, c).value
        if isinstance(v, str) and v.strip():
            columns[v.strip()] = c
    rows = {}
    for r in range(code_row + 1, sh.max_row + 1):
        v = sh.cell(r, 1).value
        if v is not None and str(v).strip():
            rows[str(v).strip()] = r
    for cluster, row in values.items():
        if cluster not in rows:
            raise KeyError(f"cluster {cluster} not in {path.name}")
        for code, value in row.items():
            if code not in columns:
                raise KeyError(f"indicator {code} not in {path.name}")
            cell = sh.cell(rows[cluster], columns[code])
            cell.value = value
            if isinstance(value, str):
                cell.data_type = "s"
    target = Path(out) if out is not None else path
    wb.save(target)
    return target
