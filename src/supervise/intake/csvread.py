"""The long CSV (county_code, period, cluster_code, indicator, value) and a template saved as CSV:
decoded (UTF-8 or GB18030, never a mix), streamed row by row under the limits."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from .cells import Cell, Limits, ReadResult, RowRead
from .layout import WIDE_CSV_SHEET
from .locate import locate_table
from .problems import FileRejected, short_reason
from .sheetscan import col_letter

CSV_COLUMNS = ("county_code", "period", "cluster_code", "indicator", "value")


def decode_csv(data: bytes) -> str:
    """The text of a CSV file in one encoding: UTF-8 (with or without BOM) or GB18030.

    GB18030 decodes almost any bytes, so a UTF-8 file with one line typed in GB18030 would decode
    whole as GB18030 and store mojibake (杩涘睍 for 进展). A file whose lines are not all in one
    encoding is refused, naming the first line that differs.
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    lines = data.split(b"\n")
    utf8_line = bad_line = 0
    for n, line in enumerate(lines, start=1):
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            bad_line = bad_line or n
        else:
            utf8_line = utf8_line or n
        if utf8_line and bad_line:
            raise FileRejected(
                "file_unreadable",
                f"CSV 文件编码不一致：第{utf8_line}行是 UTF-8 编码，第{bad_line}行不是（可能是从其他文件复制的 GBK/GB18030 文字）。"
                "请在同一个文件中统一使用“CSV UTF-8”格式保存后再报送。",
            )
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        line_no = data.count(b"\n", 0, exc.start) + 1
        raise FileRejected("file_unreadable", f"CSV 文件编码无法识别（第{line_no}行）。请保存为“CSV UTF-8”格式后再报送。") from None


def _lines_of(text: str) -> Iterator[str]:
    """The lines of a text, one at a time (no copy of the whole text, as StringIO would make)."""
    pos = 1 if text.startswith("\ufeff") else 0
    end = len(text)
    while pos < end:
        nl = text.find("\n", pos)
        stop = end if nl < 0 else nl + 1
        yield text[pos:stop]
        pos = stop


def read_csv(data: bytes, limits: Limits, known_codes: set[str] | None = None) -> ReadResult:
    """A CSV (utf-8, utf-8-sig or gb18030): the long layout county_code,period,cluster_code,
    indicator,value, or a filled template saved as CSV (the wide layout, read like the workbook:
    same metadata cells, code row and cluster rows, the same places in every message).

    Rows are read one at a time and counted: a file with more rows than the limit is refused
    when the limit is passed, before it costs a list of every row.
    """
    text = decode_csv(data)
    lines: list[list[str]] = []
    try:
        for record in csv.reader(_lines_of(text)):
            lines.append(record)
            if len(lines) > limits.max_rows + 1:
                raise FileRejected("file_too_large", f"CSV 文件超过{limits.max_rows}行（上限），不予接收。")
    except csv.Error as exc:
        raise FileRejected("file_unreadable", f"CSV 文件格式错误（{short_reason(exc)}）。") from None
    if not lines:
        raise FileRejected("file_unreadable", "CSV 文件是空的。")
    head = [h.strip().lower() for h in lines[0]]
    if not set(CSV_COLUMNS) <= set(head) and known_codes:
        width = max(len(r) for r in lines)
        if width > limits.max_columns:
            raise FileRejected("file_too_large", f"CSV 文件有{width}列，超过上限{limits.max_columns}列。")
        wide = locate_table(lines, "csv", WIDE_CSV_SHEET, known_codes)
        if wide is not None:
            wide.wide = True
            return wide
    if len(head) > limits.max_columns:
        raise FileRejected("file_too_large", f"CSV 文件有{len(head)}列，超过上限{limits.max_columns}列。")
    missing = [c for c in CSV_COLUMNS if c not in head]
    if missing:
        raise FileRejected(
            "file_unreadable",
            f"CSV 文件缺少列：{', '.join(missing)}。接受两种 CSV：下发模板在 Excel/WPS 中“另存为 CSV”（保留第5行的指标代码行和A列的集群代码），"
            f"或长表（第1行为 {','.join(CSV_COLUMNS)}）。也可以直接报送 .xlsx 模板。",
        )
    idx = {c: head.index(c) for c in CSV_COLUMNS}
    letters = {c: col_letter(idx[c] + 1) for c in CSV_COLUMNS}
    res = ReadResult(format="csv", sheet=None)
    rows: dict[str, RowRead] = {}
    seen_codes: set[str] = set()
    for n, line in enumerate(lines[1:], start=2):
        if not any(x.strip() for x in line):
            continue
        county, period, cluster, code = (
            line[idx[c]].strip() if idx[c] < len(line) else ""
            for c in ("county_code", "period", "cluster_code", "indicator")
        )
        raw = line[idx["value"]] if idx["value"] < len(line) else ""
        if "county_code" not in res.meta:
            res.meta["county_code"] = Cell(county, f"{letters['county_code']}{n}", n)
            res.meta["period"] = Cell(period, f"{letters['period']}{n}", n)
        else:
            if county != res.meta["county_code"].value:
                res.csv_conflicts.append(("county_code", Cell(county, f"{letters['county_code']}{n}", n)))
            if period != res.meta["period"].value:
                res.csv_conflicts.append(("period", Cell(period, f"{letters['period']}{n}", n)))
        if code not in seen_codes:
            seen_codes.add(code)
            res.columns.append(Cell(code, f"{letters['indicator']}{n}", n))
        row = rows.get(cluster)
        if row is None:
            row = rows[cluster] = RowRead(Cell(cluster, f"{letters['cluster_code']}{n}", n))
            res.rows.append(row)
        cell = Cell(raw, f"{letters['value']}{n}", n)
        if code in row.cells:
            res.duplicates.append((cluster, code, cell))
        else:
            row.cells[code] = cell
    return res
