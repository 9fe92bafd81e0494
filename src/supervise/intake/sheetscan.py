"""A sheet's real extent, its formulas and its error cells, known before any grid is built.

calamine builds a dense grid over the bounding box of a sheet's cells: one cell at WXY200000
(16,000 columns × 200,000 rows) asks it for ~100 GB and aborts the process. So the extent is
read first, from a real parse of what a reader would see:

- xlsx: the sheet XML parsed with expat, every attribute in either quote style, with or
  without a namespace prefix (`<x:c>` as the OpenXML SDK writes), rows and cells without an
  `r` attribute numbered as Excel numbers them (one after the previous), a `<dimension>` that
  claims more than the cells counted too;
- ods: content.xml parsed with defusedxml, honouring repeated rows and columns;
- xls: every BIFF cell record of every sheet substream of the OLE Workbook stream, and each
  sheet's DIMENSIONS record.

The scan stops at the first cell beyond the limits and names it, so a hostile file costs a
few milliseconds, not a grid. Each scan is a pure function of the bytes and the limits.
"""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass, field
from typing import Any
from xml.parsers import expat

from .problems import FileRejected

# Excel's own bounds: a reference beyond them is not a cell at all.
EXCEL_MAX_ROWS = 1_048_576
EXCEL_MAX_COLUMNS = 16_384
_REF = re.compile(r"^\$?([A-Za-z]{1,3})\$?(\d{1,7})$")


@dataclass
class SheetScan:
    """What the scan of one sheet found."""

    rows: int = 0                                           # the last row holding a cell
    columns: int = 0                                        # the last column holding a cell
    formulas: dict[str, str] = field(default_factory=dict)  # ref -> formula text, no cached value
    errors: dict[str, str] = field(default_factory=dict)    # ref -> error value (#DIV/0!)


def col_letter(n: int) -> str:
    s = ""
    while n:
        n, r = divmod(n - 1, 26)
        s = chr(65 + r) + s
    return s


def col_number(letters: str) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n


def _too_large(sheet: str, row: int, col: int, max_rows: int, max_cols: int) -> FileRejected:
    ref = f"{col_letter(col)}{row}"
    if row > max_rows:
        what = f"第{row}行，超过上限{max_rows}行"
    else:
        what = f"第{col}列，超过上限{max_cols}列"
    return FileRejected(
        "file_too_large",
        f"工作表“{sheet}”的单元格 {ref} 位于{what}。请删除表格以外的内容（或复制数据到新下发的模板）后再报送。",
        sheet=sheet, cell=ref,
    )


def _bad_ref(sheet: str, ref: str) -> FileRejected:
    shown = ref[:40]
    return FileRejected("file_unreadable", f"工作表“{sheet}”含有无效的单元格引用“{shown}”，文件已损坏。请用 Excel/WPS 重新保存后再报送。",
                        sheet=sheet)


def _local(name: str) -> str:
    return name.rpartition(":")[2]


class _XlsxScan:
    """expat handlers over one worksheet part (SAX: nothing of the sheet is kept but the scan)."""

    def __init__(self, sheet: str, max_rows: int, max_cols: int) -> None:
        self.sheet, self.max_rows, self.max_cols = sheet, max_rows, max_cols
        self.out = SheetScan()
        self.row = 0            # the current row's number
        self.col = 0            # the last cell's column in the current row
        self.ref = ""           # the current cell
        self.in_cell = False
        self.cell_type = ""
        self.has_formula = False
        self.has_value = False
        self.text: list[str] | None = None   # collecting the text of <f> or <v>
        self.formula = ""
        self.value = ""
        self.in_sheet_data = False
        self.dimension = (0, 0)

    def check(self, row: int, col: int) -> None:
        if row > self.max_rows or col > self.max_cols:
            raise _too_large(self.sheet, row, col, self.max_rows, self.max_cols)

    def start(self, name: str, attrs: dict[str, str]) -> None:
        tag = _local(name)
        if tag == "c" and self.in_sheet_data:
            ref = attrs.get("r")
            if ref is not None:
                m = _REF.match(ref)
                if m is None:
                    raise _bad_ref(self.sheet, ref)
                col, row = col_number(m.group(1)), int(m.group(2))
            else:
                col, row = self.col + 1, max(self.row, 1)
            if row > EXCEL_MAX_ROWS or col > EXCEL_MAX_COLUMNS:
                self.check(row, col)
                raise _bad_ref(self.sheet, ref or f"{col_letter(col)}{row}")
            self.check(row, col)
            self.col = col
            self.ref = f"{col_letter(col)}{row}"
            out = self.out
            if row > out.rows:
                out.rows = row
            if col > out.columns:
                out.columns = col
            self.in_cell = True
            self.cell_type = attrs.get("t", "")
            self.has_formula = self.has_value = False
            self.formula = self.value = ""
        elif tag == "row" and self.in_sheet_data:
            r = attrs.get("r")
            if r is not None:
                if not r.isdigit() or len(r) > 7:
                    raise _bad_ref(self.sheet, r)
                self.row = int(r)
            else:
                self.row += 1
            if self.row > EXCEL_MAX_ROWS:
                self.check(self.row, 1)
            self.col = 0
        elif self.in_cell:
            if tag == "f":
                self.has_formula = True
                self.text = []
            elif tag == "v":
                self.text = []
            elif tag == "is":
                self.has_value = True
        elif tag == "sheetData":
            self.in_sheet_data = True
        elif tag == "dimension":
            # A forged dimension could make a reader reserve a huge grid: it counts as an extent.
            # Checked after the cells, so that a cell beyond the limits is the one named.
            for part in attrs.get("ref", "").split(":"):
                m = _REF.match(part.strip())
                if m is not None:
                    row, col = int(m.group(2)), col_number(m.group(1))
                    self.dimension = (max(self.dimension[0], row), max(self.dimension[1], col))

    def end(self, name: str) -> None:
        if not self.in_cell:
            if _local(name) == "sheetData":
                self.in_sheet_data = False
            return
        tag = _local(name)
        if tag == "f" and self.text is not None:
            self.formula = "".join(self.text)
            self.text = None
        elif tag == "v" and self.text is not None:
            self.value = "".join(self.text)
            if self.value:
                self.has_value = True
            self.text = None
        elif tag == "c":
            self.in_cell = False
            if self.has_formula and not self.has_value:
                self.out.formulas[self.ref] = self.formula
            if self.cell_type == "e" and self.value:
                self.out.errors[self.ref] = self.value

    def chars(self, data: str) -> None:
        if self.text is not None:
            self.text.append(data)


def _refuse_dtd(*_args: Any) -> None:
    raise FileRejected("xml_entities", "文件含有 DTD/实体声明，出于安全原因不予接收。请用 Excel/WPS 重新保存。")


def scan_xlsx_sheet(xml: bytes, sheet: str, max_rows: int, max_columns: int) -> SheetScan:
    """The extent, formulas without a cached value and error cells of one worksheet part."""
    scan = _XlsxScan(sheet, max_rows, max_columns)
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.StartElementHandler = scan.start
    parser.EndElementHandler = scan.end
    parser.CharacterDataHandler = scan.chars
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    try:
        parser.Parse(xml, True)
    except expat.ExpatError as exc:
        raise FileRejected(
            "file_unreadable",
            f"工作表“{sheet}”的内容已损坏（XML 第{exc.lineno}行：{expat.ErrorString(exc.code)}）。请用 Excel/WPS 重新保存后再报送。",
            sheet=sheet,
        ) from None
    scan.check(*scan.dimension)
    return scan.out


# --------------------------------------------------------------------------- ods

_ODS_FORMULA_NS = re.compile(r"^[a-z]+:=")   # of:=SUM(...), oooc:=...
_ODS_TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
_ODS_OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
_ODS_VALUES = tuple(_ODS_OFFICE + k for k in ("value", "string-value", "boolean-value", "date-value", "value-type"))


def _repeat(el: Any, key: str) -> int:
    raw = el.get(_ODS_TABLE + key, "1") or "1"
    if not raw.isdigit() or len(raw) > 9:
        raise FileRejected("file_unreadable", f"ODS 文件内容已损坏（{key}=“{raw[:20]}”）。")
    return max(int(raw), 1)


def scan_ods(content: bytes, max_rows: int, max_columns: int) -> dict[str, SheetScan]:
    """Per table of content.xml: its extent and its formulas without a value, honouring repeats."""
    from defusedxml.ElementTree import iterparse

    out: dict[str, SheetScan] = {}
    table: str | None = None
    scan = SheetScan()
    row = col = 0
    rows_rep = 1
    row_has = False
    t_table, t_row, t_cell, t_cov = (
        _ODS_TABLE + "table", _ODS_TABLE + "table-row", _ODS_TABLE + "table-cell",
        _ODS_TABLE + "covered-table-cell",
    )
    try:
        for event, el in iterparse(io.BytesIO(content), events=("start", "end"), forbid_dtd=True):
            tag = el.tag
            if event == "start":
                if tag == t_table:
                    table = el.get(_ODS_TABLE + "name", "")
                    scan, row = SheetScan(), 0
                elif tag == t_row:
                    rows_rep = _repeat(el, "number-rows-repeated")
                    col = 0
                    row_has = False
                continue
            if tag in (t_cell, t_cov):
                rep = _repeat(el, "number-columns-repeated")
                formula = el.get(_ODS_TABLE + "formula")
                has_value = any(el.get(k) is not None for k in _ODS_VALUES)
                if formula is not None and not has_value:
                    text = formula.split(":", 1)[1] if _ODS_FORMULA_NS.match(formula) else formula
                    scan.formulas[f"{col_letter(col + 1)}{row + 1}"] = text.removeprefix("=")
                if has_value or formula is not None or len(el):
                    last = col + rep
                    if last > max_columns or row + 1 > max_rows:
                        raise _too_large(table or "", row + 1, last, max_rows, max_columns)
                    scan.columns = max(scan.columns, last)
                    row_has = True
                col += rep
                el.clear()
            elif tag == t_row:
                if row_has:
                    last = row + rows_rep
                    if last > max_rows:
                        raise _too_large(table or "", last, scan.columns or 1, max_rows, max_columns)
                    scan.rows = max(scan.rows, last)
                row += rows_rep
                el.clear()
            elif tag == t_table and table is not None:
                out[table] = scan
                el.clear()
    except FileRejected:
        raise
    except Exception as exc:  # defusedxml raises its own classes for DTD/entities
        name = type(exc).__name__
        if "DTD" in name or "Entit" in name:
            raise FileRejected("xml_entities", "文件含有 DTD/实体声明，出于安全原因不予接收。") from None
        raise FileRejected("file_unreadable", f"ODS 文件内容已损坏（{str(exc)[:120] or name}）。") from None
    return out


# --------------------------------------------------------------------------- xls

# BIFF records that hold one cell (row, column first) and the two that hold a run of cells.
_CELL_RECORDS = {0x0006, 0x0203, 0x0204, 0x0205, 0x00FD, 0x027E, 0x0201, 0x00D6, 0x0406, 0x0207}
_MULRK, _MULBLANK, _DIMENSIONS, _BOF, _EOF, _BOUNDSHEET = 0x00BD, 0x00BE, 0x0200, 0x0809, 0x000A, 0x0085
_U16X2 = struct.Struct("<HH")
_RECORD = struct.Struct("<HH")


def scan_xls(data: bytes, max_rows: int, max_columns: int) -> dict[str, SheetScan]:
    """Per sheet of a BIFF8 workbook: its extent, from every cell record and DIMENSIONS."""
    import olefile

    try:
        ole = olefile.OleFileIO(data)
    except Exception as exc:
        raise FileRejected("file_unreadable", f".xls 文件已损坏，无法打开（{str(exc)[:120]}）。请用 Excel/WPS 重新保存后再报送。") from None
    try:
        stream = next((n for n in ("Workbook", "Book") if ole.exists(n)), None)
        if stream is None:
            raise FileRejected("file_unreadable", "文件不是 Excel 工作簿（.xls 中没有工作簿数据）。请使用下发的模板填报。")
        book = ole.openstream(stream).read()
    except FileRejected:
        raise
    except Exception as exc:
        raise FileRejected("file_unreadable", f".xls 文件已损坏（{str(exc)[:120]}）。请用 Excel/WPS 重新保存后再报送。") from None
    finally:
        ole.close()
    return _scan_biff(book, max_rows, max_columns)


def _scan_biff(book: bytes, max_rows: int, max_columns: int) -> dict[str, SheetScan]:
    names: dict[int, str] = {}      # substream offset -> sheet name, from BOUNDSHEET
    out: dict[str, SheetScan] = {}
    pos, end = 0, len(book)
    current: SheetScan | None = None
    sheet = ""
    depth = 0
    while pos + 4 <= end:
        rtype, length = _RECORD.unpack_from(book, pos)
        body = pos + 4
        if rtype == _BOF:
            depth += 1
            if depth == 1 and pos in names:
                sheet = names[pos]
                current = out.setdefault(sheet, SheetScan())
        elif rtype == _EOF:
            depth = max(depth - 1, 0)
            if depth == 0:
                current = None
        elif rtype == _BOUNDSHEET and length >= 8:
            offset = struct.unpack_from("<I", book, body)[0]
            n, flags = book[body + 6], book[body + 7]
            raw = book[body + 8 : body + 8 + (n * 2 if flags & 1 else n)]
            names[offset] = raw.decode("utf-16-le" if flags & 1 else "latin-1", "replace")
        elif current is not None and length >= 4:
            if rtype in _CELL_RECORDS:
                row, col = _U16X2.unpack_from(book, body)
                _note(current, sheet, row + 1, col + 1, max_rows, max_columns)
            elif rtype in (_MULRK, _MULBLANK) and length >= 6:
                row, first = _U16X2.unpack_from(book, body)
                last = struct.unpack_from("<H", book, body + length - 2)[0]
                _note(current, sheet, row + 1, max(first, last) + 1, max_rows, max_columns)
            elif rtype == _DIMENSIONS and length >= 14:
                _r0, r1, _c0, c1 = struct.unpack_from("<IIHH", book, body)
                # rows and columns one past the last used; a lying DIMENSIONS counts as an extent
                if r1 > max_rows or c1 > max_columns:
                    raise _too_large(sheet, min(max(r1, 1), 10**7), max(c1, 1), max_rows, max_columns)
        pos = body + length
    return out


def _note(scan: SheetScan, sheet: str, row: int, col: int, max_rows: int, max_cols: int) -> None:
    if row > max_rows or col > max_cols:
        raise _too_large(sheet, row, col, max_rows, max_cols)
    if row > scan.rows:
        scan.rows = row
    if col > scan.columns:
        scan.columns = col
