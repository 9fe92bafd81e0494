"""Reading a county's file: .xlsx, .xls, .ods (python-calamine) and the long CSV.

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

import csv
import io
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from functools import lru_cache
from typing import Any, Self

import python_calamine as calamine

from .layout import CLUSTER_CODE_HEADER, CLUSTER_NAME_HEADER, DATA_SHEET, HELP_SHEET
from .problems import FileRejected
from .sheetscan import SheetScan, col_letter, scan_ods, scan_xls, scan_xlsx_sheet

ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ODS_MIME = b"application/vnd.oasis.opendocument.spreadsheet"
CSV_COLUMNS = ("county_code", "period", "cluster_code", "indicator", "value")

# Labels of the metadata cells, normalised (no spaces, ASCII brackets), and the key they name.
_META_KEYS = {
    "县(市)代码": "county_code", "县市代码": "county_code", "县代码": "county_code",
    "county_code": "county_code", "行政区划代码": "county_code",
    "县(市)名称": "county_name", "县市名称": "county_name", "county_name": "county_name",
    "报告期": "period", "period": "period", "填报期": "period",
    "模板版本": "template_version", "template_version": "template_version", "版本": "template_version",
}
_CODE_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_CLUSTER_LIKE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_HEADER_SCAN_ROWS = 60
WIDE_CSV_SHEET = "CSV"   # the "sheet" of a template saved as CSV, in places: CSV!I7

_CELL_RE = re.compile(rb"<c\b([^>/]*)>(.*?)</c>", re.DOTALL)
_REF_RE = re.compile(rb'\br="([A-Z]{1,3})(\d+)"')
_HAS_VALUE_RE = re.compile(rb"<v>[^<]|<is>|<v\s[^>/]*>[^<]", re.DOTALL)
_FORMULA_RE = re.compile(rb"<f\b[^>]*?(?:/>|>(.*?)</f>)", re.DOTALL)


@dataclass
class Cell:
    """One value as read, with where it was."""

    value: Any
    ref: str | None = None          # A1-style reference (or CSV column letter + line)
    row: int | None = None          # sheet row or CSV line, 1-based
    formula_missing: bool = False   # a formula with no cached value
    formula: str = ""               # its text, without the leading "=" ("" if unknown)


@dataclass
class RowRead:
    cluster: Cell
    cells: dict[str, Cell] = field(default_factory=dict)   # indicator code -> cell
    name: str = ""                                         # column B, as written


@dataclass
class ReadResult:
    format: str                                  # xlsx | xls | ods | csv
    sheet: str | None = None                     # the data sheet (None for CSV)
    meta: dict[str, Cell] = field(default_factory=dict)
    columns: list[Cell] = field(default_factory=list)   # header code cells, in order
    rows: list[RowRead] = field(default_factory=list)
    duplicates: list[tuple[str, str, Cell]] = field(default_factory=list)  # CSV (cluster, code, cell)
    csv_conflicts: list[tuple[str, Cell]] = field(default_factory=list)    # CSV ("county_code"|"period", cell)
    formula_cells: dict[str, str] = field(default_factory=dict)  # ref -> formula text, no cached value
    wide: bool = False                           # a template saved as CSV: places as in a sheet


class FromSettings:
    """A dataclass read from a settings section: the keys it knows, the rest ignored."""

    @classmethod
    def from_settings(cls, section: dict[str, Any]) -> Self:
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in section.items() if k in known})


@dataclass(frozen=True)
class Limits(FromSettings):
    max_file_bytes: int = 20_000_000
    max_uncompressed_bytes: int = 100_000_000
    max_compression_ratio: float = 200
    max_zip_entries: int = 500
    max_rows: int = 10_000
    max_columns: int = 500
    max_sheets: int = 30
    max_text_chars: int = 5_000
    reader_memory_mb: int = 1024
    reader_seconds: float = 60.0


# --------------------------------------------------------------------------- sniffing


def sniff(data: bytes) -> str:
    """xlsx | ods | xls | ole_encrypted | ole | zip | csv | unknown, from the content."""
    if data.startswith(ZIP_MAGIC):
        return "zip"  # refined after the zip checks (xlsx / ods)
    if data.startswith(OLE_MAGIC):
        if "EncryptionInfo".encode("utf-16-le") in data or "EncryptedPackage".encode("utf-16-le") in data:
            return "ole_encrypted"
        if "Workbook".encode("utf-16-le") in data or "Book".encode("utf-16-le") in data:
            # BIFF8 puts FILEPASS right after the workbook's BOF when the file has a password.
            bof = data.find(b"\x09\x08\x10\x00\x00\x06\x05\x00")
            if bof >= 0 and data[bof + 20 : bof + 22] == b"\x2f\x00":
                return "ole_encrypted"
            return "xls"
        return "ole"
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "unknown"
    # The header line is ASCII in every encoding we read; the rest is judged by `decode_csv`.
    first = data[:4096].removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0].decode("ascii", "replace")
    cols = {c.strip().strip('"').lower() for c in first.split(",")}
    if {"county_code", "cluster_code", "indicator", "value"} <= cols:
        return "csv"
    # A filled template saved as CSV by Excel or WPS (另存为 CSV): its code row names cluster_code.
    if re.search(rb"(^|\n)\"?cluster_code\"?,", data[:16384]):
        return "csv"
    return "unknown"


# --------------------------------------------------------------------------- zip containers


def check_zip(data: bytes, limits: Limits) -> tuple[str, dict[str, bytes]]:
    """Refuse zip/XML bombs and encrypted entries; return the format and the parts we scan.

    Every XML part is read (bounded by the declared sizes already checked) and searched for
    DTD/ENTITY declarations. Returns ("xlsx"|"ods", {part name: bytes}) for the parts readers
    need again (workbook, rels, sheets, content.xml).
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise FileRejected("file_unreadable", f"文件已损坏，无法打开（{_short(exc)}）。请重新保存后再报送。") from None
    if len(infos) > limits.max_zip_entries:
        raise FileRejected("zip_bomb", f"文件内部包含{len(infos)}个部件，超过上限{limits.max_zip_entries}，不予接收。")
    total = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos)
    if total > limits.max_uncompressed_bytes:
        raise FileRejected(
            "zip_bomb", f"文件解压后大小为{total}字节，超过上限{limits.max_uncompressed_bytes}字节，不予接收。"
        )
    if total > 256 * 1024 and total > limits.max_compression_ratio * max(packed, 1):
        raise FileRejected(
            "zip_bomb", f"文件压缩比异常（{total / max(packed, 1):.0f}倍，上限{limits.max_compression_ratio:g}倍），疑似压缩炸弹，不予接收。"
        )
    if any(i.flag_bits & 0x1 for i in infos):
        raise FileRejected("file_encrypted", "文件已加密，请取消密码后重新保存再报送。")
    names = {i.filename for i in infos}
    if "mimetype" in names and zf.read("mimetype").strip().startswith(ODS_MIME):
        fmt = "ods"
    elif "xl/workbook.xml" in names or "xl/workbook.bin" in names:
        if "xl/workbook.bin" in names and "xl/workbook.xml" not in names:
            raise FileRejected("file_unreadable", "不支持 .xlsb 格式，请另存为 .xlsx 后再报送。")
        fmt = "xlsx"
    else:
        raise FileRejected("file_unreadable", "文件不是 Excel（.xlsx）或 ODS 电子表格，请使用下发的模板填报。")
    keep: dict[str, bytes] = {}
    for info in infos:
        name = info.filename
        if info.is_dir() or not name.lower().endswith((".xml", ".rels", ".vml")):
            continue
        full = (fmt == "xlsx" and (name.startswith("xl/worksheets/") or name in _XLSX_KEEP)) or (
            fmt == "ods" and name == "content.xml")
        try:
            if full:
                part = _entry_bytes(zf, info)
                bad = _has_dtd(part)
                keep[name] = part
            else:
                bad = _entry_prolog_has_dtd(zf, info)
        except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, EOFError, zlib.error) as exc:
            raise FileRejected("file_unreadable", f"文件已损坏，无法读取其中的“{name}”（{_short(exc)}）。") from None
        if bad:
            raise FileRejected("xml_entities", f"文件的“{name}”部分含有 DTD/实体声明，出于安全原因不予接收。请用 Excel/WPS 重新保存。")
    return fmt, keep


_XLSX_KEEP = ("xl/workbook.xml", "xl/_rels/workbook.xml.rels")
_ROOT_START = re.compile(rb"<[A-Za-z_]")


def _entry_bytes(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """One entry, decompressed by zipfile (which checks the CRC at its end and refuses
    overlapping entries), never more than its declared size, which must be its real size."""
    with zf.open(info) as f:
        out = f.read(info.file_size + 1)
    if len(out) != info.file_size:
        raise zipfile.BadZipFile(f"{info.filename}: {len(out)} bytes, declared {info.file_size}")
    return out


def _entry_prolog_has_dtd(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    """A DTD can only come before the root element: decompress until the root starts, and look there."""
    with zf.open(info) as stream:
        return _prolog_has_dtd(stream)


def _prolog_has_dtd(stream: Any) -> bool:
    """A DTD can only come before the root element: read until the root starts, and look there."""
    head = b""
    while True:
        chunk = stream.read(4096)
        if not chunk:
            return _has_dtd(head)
        head += chunk
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            return _has_dtd(head + stream.read())
        m = _ROOT_START.search(head)
        if m is not None:
            return _has_dtd(head[: m.start()])


def _has_dtd(part: bytes) -> bool:
    if part.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = part.decode("utf-16")
        except UnicodeDecodeError:
            return True
        return "<!DOCTYPE" in text or "<!ENTITY" in text
    if b"<!" not in part:   # every declaration starts so: one search over the part, not three
        return False
    return b"<!DOCTYPE" in part or b"<!ENTITY" in part or b"<!doctype" in part


def _xlsx_sheet_parts(parts: dict[str, bytes]) -> dict[str, str]:
    """Sheet name -> part name, from workbook.xml and its relationships."""
    return dict(_sheet_parts_of(parts.get("xl/workbook.xml", b""), parts.get("xl/_rels/workbook.xml.rels", b"")))


@lru_cache(maxsize=64)
def _sheet_parts_of(workbook: bytes, workbook_rels: bytes) -> tuple[tuple[str, str], ...]:
    """(sheet name, part name) pairs, from a real XML parse of both parts (comments, CDATA and
    either quote style read as calamine reads them); memoised: files made from one template
    share these two parts."""
    rels: dict[str, str] = {}
    for attrs in _elements(workbook_rels, "Relationship"):
        rid, target = attrs.get("Id"), attrs.get("Target")
        if rid and target:
            rels[rid] = target.lstrip("/") if target.startswith("/") else "xl/" + target
    out: dict[str, str] = {}
    for attrs in _elements(workbook, "sheet"):
        name = attrs.get("name")
        rid = next((v for k, v in attrs.items() if k == "id" or k.endswith(":id")), None)
        if name is not None and rid is not None and rid in rels:
            out[name] = rels[rid]
    return tuple(out.items())


def _elements(xml: bytes, local: str) -> list[dict[str, str]]:
    """The attributes of every element named `local` (any prefix) in an XML part."""
    from xml.parsers import expat

    found: list[dict[str, str]] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        if name.rpartition(":")[2] == local:
            found.append(attrs)

    parser = expat.ParserCreate()
    parser.StartElementHandler = start
    try:
        parser.Parse(xml, True)
    except expat.ExpatError:
        raise FileRejected("file_unreadable", "文件的工作簿结构（workbook.xml）已损坏。请用 Excel/WPS 重新保存后再报送。") from None
    return found


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
        raise FileRejected("file_unreadable", f"文件无法打开（{_short(exc)}）。请用 Excel/WPS 重新保存后再报送。") from None
    try:
        names = list(wb.sheet_names)
        if len(names) > limits.max_sheets:
            raise FileRejected("file_too_large", f"文件有{len(names)}个工作表，超过上限{limits.max_sheets}个。")
        if not names:
            raise FileRejected("file_unreadable", "文件中没有工作表。")

        sheet_parts = _xlsx_sheet_parts(parts) if fmt == "xlsx" else {}

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
                    first_error = FileRejected("file_unreadable", f"工作表“{name}”无法读取（{_short(exc)}）。", sheet=name)
                continue
            _check_dims(name, sheet.total_height, sheet.total_width, limits)
            grid = sheet.to_python(skip_empty_area=False)
            result = _locate(grid, fmt, name, known_codes)
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


def _text(v: Any) -> str:
    """A cell as text: 1.0 -> '1', '' stays ''."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    return str(v).strip() if v is not None else ""


def _norm_label(v: Any) -> str:
    s = _text(v)
    for a, b in (("（", "("), ("）", ")"), ("：", ""), (":", ""), (" ", ""), ("\u3000", "")):
        s = s.replace(a, b)
    return s


@lru_cache(maxsize=4096)
def _meta_key(label: str) -> str | None:
    """The metadata key a label names (the same few labels in every file: memoised)."""
    return _META_KEYS.get(_norm_label(label))


def _locate(grid: list[list[Any]], fmt: str, sheet: str, known_codes: set[str]) -> ReadResult | None:
    """Find the code row, the data rows and the metadata in one sheet's grid (None: no codes here)."""
    header = None
    for r, row in enumerate(grid[:_HEADER_SCAN_ROWS]):
        if any(isinstance(v, str) and v.strip() in known_codes for v in row):
            header = r
            break
    if header is None:
        return None
    res = ReadResult(format=fmt, sheet=sheet)

    # Metadata: a known label, then the first non-empty cell to its right (rows above the codes).
    for r in range(header):
        row = grid[r]
        for c, v in enumerate(row):
            if not v or not isinstance(v, str):
                continue
            key = _meta_key(v)
            if key is None or key in res.meta:
                continue
            for c2 in range(c + 1, len(row)):
                if _text(row[c2]) != "":
                    res.meta[key] = Cell(row[c2], f"{col_letter(c2 + 1)}{r + 1}", r + 1)
                    break

    code_row = grid[header]
    cols: list[tuple[int, str]] = []
    for c, v in enumerate(code_row):
        if c == 0:
            continue
        s = v.strip() if isinstance(v, str) else ""
        if s and _CODE_LIKE.match(s) and s not in (CLUSTER_CODE_HEADER, CLUSTER_NAME_HEADER):
            cols.append((c, s))
            res.columns.append(Cell(s, f"{col_letter(c + 1)}{header + 1}", header + 1))

    letters = [(c, code, col_letter(c + 1)) for c, code in cols]
    for r in range(header + 1, len(grid)):
        row = grid[r]
        n = len(row)
        first = _text(row[0]) if row else ""
        values = [row[c] if c < n else "" for c, _code, _l in letters]
        any_value = any(v != "" and not (isinstance(v, str) and not v.strip()) for v in values)
        if not any_value and (first == "" or not _CLUSTER_LIKE.match(first)):
            continue  # blank line, or a note such as 填表人/联系电话 below the table
        line = r + 1
        rr = RowRead(Cell(first, f"A{line}", line), name=_text(row[1]) if n > 1 else "")
        cells = rr.cells
        for (_c, code, letter), v in zip(letters, values):
            cells[code] = Cell(v, f"{letter}{line}", line)
        res.rows.append(rr)
    return res


def mark_errors(res: ReadResult, errors: dict[str, str]) -> None:
    """Show an error cell as its error text (#DIV/0!), so the clerk is told what is in it."""
    if not errors:
        return
    for row in res.rows:
        for cell in row.cells.values():
            if cell.ref in errors:
                cell.value = errors[cell.ref]


def mark_formulas(res: ReadResult) -> None:
    """Flag the cells whose formula has no cached value."""
    if not res.formula_cells:
        return
    refs = res.formula_cells
    for row in res.rows:
        for cell in row.cells.values():
            if cell.ref in refs:
                cell.formula_missing = True
                cell.formula = refs[cell.ref]
    for cell in res.meta.values():
        if cell.ref in refs:
            cell.formula_missing = True
            cell.formula = refs[cell.ref]


# --------------------------------------------------------------------------- CSV


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
        raise FileRejected("file_unreadable", f"CSV 文件格式错误（{_short(exc)}）。") from None
    if not lines:
        raise FileRejected("file_unreadable", "CSV 文件是空的。")
    head = [h.strip().lower() for h in lines[0]]
    if not set(CSV_COLUMNS) <= set(head) and known_codes:
        width = max(len(r) for r in lines)
        if width > limits.max_columns:
            raise FileRejected("file_too_large", f"CSV 文件有{width}列，超过上限{limits.max_columns}列。")
        wide = _locate(lines, "csv", WIDE_CSV_SHEET, known_codes)
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


def _short(exc: BaseException) -> str:
    s = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return s[:120]


def archive_extension(head: bytes) -> str:
    """The extension a file is archived under, from its first bytes (never from its name)."""
    kind = sniff(head)
    if kind == "zip":
        return "ods" if head[30:38] == b"mimetype" and ODS_MIME in head[:200] else "xlsx"
    if kind in ("xls", "ole_encrypted", "ole"):
        return "xls" if kind == "xls" else "ole"
    return "csv" if kind == "csv" else "bin"

