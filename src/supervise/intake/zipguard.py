"""Zip containers (xlsx, ods) checked before anything is parsed: entry count, declared and actual
uncompressed sizes, compression ratio, DTD/ENTITY declarations in any XML part, encryption; and
which parts of the workbook are its sheets."""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from functools import lru_cache
from typing import Any

from .cells import Limits
from .problems import FileRejected, short_reason
from .sniff import ODS_MIME


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
        raise FileRejected("file_unreadable", f"文件已损坏，无法打开（{short_reason(exc)}）。请重新保存后再报送。") from None
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
            raise FileRejected("file_unreadable", f"文件已损坏，无法读取其中的“{name}”（{short_reason(exc)}）。") from None
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


def xlsx_sheet_parts(parts: dict[str, bytes]) -> dict[str, str]:
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
