"""Reading a county's file: .xlsx, .xls, .ods (python-calamine) and the long CSV.

The seams: `sniff` (what the bytes are), `zipguard` (the container checked before parsing),
`sheetscan` (a sheet's real extent, formulas and errors before any grid), `locate` (where the
table is in the grid), `csvread` (the CSV forms), `cells` (what a reader returns). This module
puts them together: `read_submission` is the one entry point.

Everything a file could do to hurt us is checked before it is parsed: size, zip entry count,
uncompressed size and compression ratio, DTD/ENTITY declarations in any XML part, encryption,
rows, columns and sheets. The format is taken from the content (magic bytes), never the name.

calamine does not expose formulas, so the XML of xlsx sheets (and ods content.xml) is scanned
for formulas that have no cached value, keeping each one's text (`Cell.formula`): in a numeric
cell such a formula is an error, not a zero; in a text cell (progress, problems, next_steps)
validation takes the formula's own text, "=" first, as the literal text typed (see validate).

A reader returns a `ReadResult`: the metadata cells, the header codes, and one `RowRead` per
data row. It judges nothing beyond "can this be read"; `validate` does the rest.
"""

from __future__ import annotations

import io

import python_calamine as calamine

from .cells import Cell, FromSettings, Limits, ReadResult, RowRead
from .csvread import decode_csv, read_csv
from .layout import DATA_SHEET, HELP_SHEET
from .locate import locate_table, mark_errors, mark_formulas
from .problems import FileRejected, short_reason
from .sheetscan import SheetScan, scan_ods, scan_xls, scan_xlsx_sheet
from .sniff import OLE_MAGIC, archive_extension, sniff
from .zipguard import check_zip, xlsx_sheet_parts

# --------------------------------------------------------------------------- sniffing


# --------------------------------------------------------------------------- zip containers


# --------------------------------------------------------------------------- reading


def read_submission(data: bytes, limits: Limits, known_codes: set[str]) -> ReadResult:
    """Read a file's bytes (already size-checked) into a ReadResult, or raise FileRejected."""
    if len(data) > limits.max_file_bytes:
        raise FileRejected("file_too_large", f"文件大小{len(data)}字节，超过上限{limits.max_file_bytes}字节。")
    if not data:
        raise FileRejected("file_unreadable", "文件是空的（0字节）。")
    kind = sniff(data)
    if kind == "ole_encrypted":
        raise FileRejected("file_encrypted", "文件已加密（设有打开密码），请取消密码后重新保存再报送。")
    if kind == "csv":
        return read_csv(data, limits, known_codes)
    if kind == "xls":
        return _read_workbook(data, "xls", limits, known_codes, {})
    if kind == "zip":
        fmt, parts = check_zip(data, limits)
        return _read_workbook(data, fmt, limits, known_codes, parts)
    if kind == "ole":
        raise FileRejected("file_unreadable", "文件不是电子表格（可能是 Word 等其他文档），请使用下发的模板填报。")
    raise FileRejected("file_unreadable", "文件不是电子表格（.xlsx/.xls/.ods）或规定格式的 CSV，无法读取。请使用下发的模板填报。")


def _read_workbook(
    data: bytes, fmt: str, limits: Limits, known_codes: set[str], parts: dict[str, bytes]
) -> ReadResult:
    # The real extent, formulas and error cells, before calamine builds any grid: it reads every
    # sheet of an .ods or .xls when it opens the workbook, and an .xlsx sheet when asked for it.
    scans: dict[str, SheetScan] = {}
    if fmt == "ods":
        if "content.xml" not in parts:
            raise FileRejected("file_unreadable", "ODS 文件缺少内容部分（content.xml），文件已损坏。")
        scans = scan_ods(parts["content.xml"], limits.max_rows, limits.max_columns)
    elif fmt == "xls":
        scans = scan_xls(data, limits.max_rows, limits.max_columns)
    try:
        wb = calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
    except calamine.PasswordError:
        raise FileRejected("file_encrypted", "文件设有密码，请取消密码后重新保存再报送。") from None
    except Exception as exc:  # calamine raises several classes for broken files
        if "password" in str(exc).lower() or "encrypt" in str(exc).lower():
            raise FileRejected("file_encrypted", "文件设有密码，请取消密码后重新保存再报送。") from None
        raise FileRejected("file_unreadable", f"文件无法打开（{short_reason(exc)}）。请用 Excel/WPS 重新保存后再报送。") from None
    try:
        names = list(wb.sheet_names)
        if len(names) > limits.max_sheets:
            raise FileRejected("file_too_large", f"文件有{len(names)}个工作表，超过上限{limits.max_sheets}个。")
        if not names:
            raise FileRejected("file_unreadable", "文件中没有工作表。")

        sheet_parts = xlsx_sheet_parts(parts) if fmt == "xlsx" else {}

        order = [DATA_SHEET] if DATA_SHEET in names else []
        # The 填报说明 sheet lists every indicator code: it must never be taken for the data table.
        order += [n for n in names if n not in (DATA_SHEET, HELP_SHEET)]
        first_error: FileRejected | None = None
        for name in order:
            if fmt == "xlsx" and name not in scans:
                part = parts.get(sheet_parts.get(name, ""))
                if part is None:
                    # calamine would read a sheet we cannot see: never hand it an unmeasured part.
                    if first_error is None:
                        first_error = FileRejected("file_unreadable", f"工作表“{name}”的内容无法定位，文件已损坏。", sheet=name)
                    continue
                scans[name] = scan_xlsx_sheet(part, name, limits.max_rows, limits.max_columns)
            scan = scans.get(name)
            if scan is None and fmt != "xlsx":
                scan = SheetScan()    # a sheet with no cells at all
            try:
                sheet = wb.get_sheet_by_name(name)
            except calamine.PasswordError:
                raise FileRejected("file_encrypted", "文件设有密码，请取消密码后重新保存再报送。") from None
            except Exception as exc:
                if first_error is None:
                    first_error = FileRejected("file_unreadable", f"工作表“{name}”无法读取（{short_reason(exc)}）。", sheet=name)
                continue
            _check_dims(name, sheet.total_height, sheet.total_width, limits)
            grid = sheet.to_python(skip_empty_area=False)
            result = locate_table(grid, fmt, name, known_codes)
            if result is not None:
                result.formula_cells = dict(scan.formulas) if scan is not None else {}
                mark_formulas(result)
                if scan is not None:
                    mark_errors(result, scan.errors)
                return result
        if first_error is not None:
            raise first_error
        where = f"工作表“{DATA_SHEET}”中" if DATA_SHEET in names else "文件中"
        raise FileRejected(
            "header_not_found",
            f"在{where}找不到指标代码行（模板第5行，如 ent_total、revenue_ytd）。请使用下发的模板，不要删除或修改指标代码行。",
        )
    finally:
        wb.close()


def _check_dims(name: str, rows: int, cols: int, limits: Limits) -> None:
    if rows > limits.max_rows:
        raise FileRejected("file_too_large", f"工作表“{name}”有{rows}行，超过上限{limits.max_rows}行。")
    if cols > limits.max_columns:
        raise FileRejected("file_too_large", f"工作表“{name}”有{cols}列，超过上限{limits.max_columns}列。")


# --------------------------------------------------------------------------- CSV


__all__ = [
    "OLE_MAGIC", "Cell", "FromSettings", "Limits", "ReadResult", "RowRead", "archive_extension", "check_zip",
    "decode_csv", "read_submission",
]
