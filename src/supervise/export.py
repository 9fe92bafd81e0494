"""Export a period's stored values as one wide table (a row per cluster, a column per indicator).

What an analyst at the bureau asks for first: every county's figures for the month in one sheet,
to sort, filter and chart in Excel. The values are those of each county's version in force; a
county with nothing accepted still has its clusters listed, with the state saying why the row is
empty. The store reads the long values (through sqlite-utils), pandas pivots them into columns.
"""

from __future__ import annotations

import csv
import io
import math
from datetime import datetime
from pathlib import Path
from typing import Any

from .jobs.reporting import reporting_status
from .periods import Month, Quarter
from .status import STATE_LABELS, as_of
from .store.submissions import current_value_rows
from .workspace import Workspace, atomic_write

ID_COLUMNS = ["county_code", "county_name", "cluster_code", "cluster_name", "state", "received_at",
              "submission_id", "file_sha256"]
ID_LABELS = ["县（市）代码", "县（市）", "集群代码", "集群名称", "报送情况", "接收时间", "报送编号", "文件SHA-256"]
# A text cell starting with one of these would be taken as a formula by a spreadsheet program.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def period_table(
    ws: Workspace, period: Month | Quarter, now: datetime | None = None
) -> tuple[list[str], list[str], list[list[Any]]]:
    """(codes, Chinese headers, rows) of the wide table for a period, registry order.

    With `now`, a county that has sent nothing before the deadline is 未到截止, not 漏报."""
    import pandas as pd

    reg = ws.registry
    indicators = reg.indicators_of(period.dataset)
    deadlines = ws.settings.deadlines
    conn = ws.connect()
    try:
        found = reporting_status(conn, reg, period, deadlines)
        statuses = {s.county_code: s for s in (as_of(found, period, deadlines, now) if now else found)}
        long = pd.DataFrame(
            current_value_rows(conn, str(period)),
            columns=["county_code", "cluster_code", "indicator", "value", "text", "submission_id", "file_sha256"],
        )
    finally:
        conn.close()
    long["cell"] = long["text"].astype(object).where(long["text"].notna(), long["value"])
    wide = (
        long.pivot_table(index="cluster_code", columns="indicator", values="cell", aggfunc="first")
        if len(long) else pd.DataFrame()
    )
    files = long.drop_duplicates("cluster_code").set_index("cluster_code")

    codes = ID_COLUMNS + [i.code for i in indicators]
    headers = ID_LABELS + [i.header for i in indicators]
    rows: list[list[Any]] = []
    for county in reg.assessed_counties():
        st = statuses.get(county.code)
        for cluster in reg.clusters_of(county.code):
            have = cluster.code in wide.index
            row: list[Any] = [
                county.code, county.name, cluster.code, cluster.name,
                STATE_LABELS[st.state] if st else "",
                st.received_at.isoformat() if st and st.received_at else "",
                int(files.at[cluster.code, "submission_id"]) if have else "",
                files.at[cluster.code, "file_sha256"] if have else "",
            ]
            for ind in indicators:
                value = wide.at[cluster.code, ind.code] if have and ind.code in wide.columns else None
                if value is None or (isinstance(value, float) and math.isnan(value)):
                    value = ""
                elif ind.integer and isinstance(value, float) and value.is_integer():
                    value = int(value)  # counts print as 7, not 7.0
                row.append(value)
            rows.append(row)
    return codes, headers, rows


def export_period(
    ws: Workspace, period: Month | Quarter, out: Path | None = None, fmt: str | None = None,
    now: datetime | None = None,
) -> Path:
    """Write the wide table as .xlsx (default) or .csv (UTF-8 with BOM, opens in Excel); atomic."""
    fmt = fmt or (out.suffix.lstrip(".").lower() if out else "xlsx")
    if fmt not in ("xlsx", "csv"):
        from .errors import SuperviseError

        raise SuperviseError(f"unknown export format {fmt!r}: use xlsx or csv")
    out = out or ws.report_dir(period) / f"data-{period}.{fmt}"
    out.parent.mkdir(parents=True, exist_ok=True)
    codes, headers, rows = period_table(ws, period, now)
    atomic_write(out, _csv(codes, headers, rows) if fmt == "csv" else _xlsx(period, codes, headers, rows))
    return out


def _csv(codes: list[str], headers: list[str], rows: list[list[Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(codes)
    w.writerow(headers)
    for row in rows:
        # A leading apostrophe keeps county text from being run as a formula by a spreadsheet.
        w.writerow(["'" + v if isinstance(v, str) and v.startswith(FORMULA_START) else v for v in row])
    return buf.getvalue().encode("utf-8-sig")


def _xlsx(period: Month | Quarter, codes: list[str], headers: list[str], rows: list[list[Any]]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font

    wb = Workbook()
    sheet = wb.active
    assert sheet is not None
    sheet.title = f"{period.label}数据"
    bold = Font(bold=True)
    for r, line in enumerate((headers, codes), start=1):
        for c, text in enumerate(line, start=1):
            cell = sheet.cell(r, c, text)
            cell.font = bold
    for r, row in enumerate(rows, start=3):
        for c, value in enumerate(row, start=1):
            cell = sheet.cell(r, c)
            if isinstance(value, str):
                cell.value = ILLEGAL_CHARACTERS_RE.sub("", value)
                cell.data_type = "s"  # literal text, never a formula
            else:
                cell.value = value
    sheet.freeze_panes = "E3"
    for c in range(1, len(codes) + 1):
        sheet.column_dimensions[sheet.cell(1, c).column_letter].width = 14
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
