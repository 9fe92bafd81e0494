"""The zip/XML safety scans: zipfile reads the entries, and what it does not check (declared
sizes against real ones, ratios, DTDs) is checked here; malformed packages are refused."""

from __future__ import annotations

import io
import zipfile

import pytest

from supervise.intake.problems import FileRejected
from supervise.intake.readers import Limits, check_zip
from supervise.intake.sheetscan import scan_xlsx_sheet

DTD = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'


def make(parts: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, body in parts.items():
            z.writestr(name, body)
    return buf.getvalue()


BASE = {
    "[Content_Types].xml": b"<Types/>",
    "xl/workbook.xml": b"<workbook/>",
    "xl/_rels/workbook.xml.rels": b"<Relationships/>",
    "xl/styles.xml": b"<styleSheet/>",
    "xl/worksheets/sheet1.xml": b"<worksheet><sheetData/></worksheet>",
}


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_a_clean_package_is_kept(method: int) -> None:
    fmt, keep = check_zip(make(BASE, method), Limits())
    assert fmt == "xlsx"
    assert keep["xl/worksheets/sheet1.xml"] == BASE["xl/worksheets/sheet1.xml"]
    assert set(keep) == {"xl/workbook.xml", "xl/_rels/workbook.xml.rels", "xl/worksheets/sheet1.xml"}


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
@pytest.mark.parametrize("part", ["xl/styles.xml", "xl/worksheets/sheet1.xml", "[Content_Types].xml"])
def test_a_dtd_in_any_part_is_refused(method: int, part: str) -> None:
    parts = dict(BASE)
    parts[part] = DTD + b" " * 9000 + parts[part]      # past the first chunk read
    with pytest.raises(FileRejected) as e:
        check_zip(make(parts, method), Limits())
    assert e.value.problem.code == "xml_entities"


def test_a_utf16_part_with_a_dtd_is_refused() -> None:
    parts = dict(BASE)
    parts["xl/styles.xml"] = ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x>' "<styleSheet/>").encode("utf-16")
    with pytest.raises(FileRejected) as e:
        check_zip(make(parts), Limits())
    assert e.value.problem.code == "xml_entities"


def test_a_damaged_entry_is_unreadable() -> None:
    body = BASE["xl/worksheets/sheet1.xml"]
    data = bytearray(make(BASE, zipfile.ZIP_STORED))
    i = data.find(body)
    data[i + 3] ^= 0x20                                  # CRC no longer matches
    with pytest.raises(FileRejected) as e:
        check_zip(bytes(data), Limits())
    assert e.value.problem.code == "file_unreadable"


def test_a_bomb_by_ratio_is_refused_before_anything_is_decompressed() -> None:
    parts = dict(BASE)
    parts["xl/worksheets/sheet2.xml"] = b"<a>" + b" " * 2_000_000 + b"</a>"
    with pytest.raises(FileRejected) as e:
        check_zip(make(parts), Limits())
    assert e.value.problem.code == "zip_bomb"


def test_data_validations_are_not_formulas_and_real_formulas_still_are() -> None:
    dv = (b'<dataValidations count="1"><dataValidation type="whole" sqref="C6:C9">'
          b"<formula1>0</formula1><formula2>9</formula2></dataValidation></dataValidations>")
    plain = b'<worksheet><sheetData><row r="6"><c r="C6"><v>1</v></c></row></sheetData>' + dv + b"</worksheet>"
    scan = scan_xlsx_sheet(plain, "填报表", 100, 100)
    assert (scan.rows, scan.columns, scan.formulas) == (6, 3, {})
    formula = (b'<worksheet><sheetData><row r="6"><c r="C6"><f>SUM(D6:E6)</f></c></row></sheetData>'
               + dv + b"</worksheet>")
    scan = scan_xlsx_sheet(formula, "填报表", 100, 100)
    assert (scan.rows, scan.columns, scan.formulas) == (6, 3, {"C6": "SUM(D6:E6)"})


def _patch_central_size(data: bytes, name: bytes, size: int) -> bytes:
    """Rewrite the uncompressed size an entry's central directory record declares."""
    i = data.index(b"PK\x01\x02")
    while True:
        n_name = int.from_bytes(data[i + 28 : i + 30], "little")
        if data[i + 46 : i + 46 + n_name] == name:
            return data[: i + 24] + size.to_bytes(4, "little") + data[i + 28 :]
        n_extra = int.from_bytes(data[i + 30 : i + 32], "little")
        n_comment = int.from_bytes(data[i + 32 : i + 34], "little")
        i = data.index(b"PK\x01\x02", i + 46 + n_name + n_extra + n_comment)


@pytest.mark.parametrize("declared", [10, 10_000])
def test_an_entry_whose_declared_size_lies_is_refused(declared: int) -> None:
    data = make(BASE)
    lying = _patch_central_size(data, b"xl/worksheets/sheet1.xml", declared)
    with pytest.raises(FileRejected) as e:
        check_zip(lying, Limits())
    assert e.value.problem.code == "file_unreadable"
    assert "sheet1.xml" in e.value.problem.message


def test_overlapping_entries_are_refused() -> None:
    """Two central records pointing at one local entry (the 'better zip bomb' shape)."""
    parts = dict(BASE)
    parts["xl/worksheets/sheet1.xml"] = b"<worksheet><sheetData/></worksheet>" + b" " * 5000
    data = bytearray(make(parts, zipfile.ZIP_STORED))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        target = z.getinfo("xl/worksheets/sheet1.xml").header_offset
        styles = z.getinfo("xl/styles.xml")
    # point styles.xml's central record at sheet1's local header
    i = data.index(b"PK\x01\x02")
    while True:
        n_name = int.from_bytes(data[i + 28 : i + 30], "little")
        if data[i + 46 : i + 46 + n_name] == styles.filename.encode():
            data[i + 42 : i + 46] = target.to_bytes(4, "little")
            break
        i = data.index(b"PK\x01\x02", i + 46)
    with pytest.raises(FileRejected) as e:
        check_zip(bytes(data), Limits())
    assert e.value.problem.code == "file_unreadable"


class _Unseekable(io.RawIOBase):
    """A stream zipfile cannot seek in: it writes data descriptors after each entry."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.buf += b
        return len(b)


def test_packages_with_data_descriptors_or_zip64_records_are_read() -> None:
    out = _Unseekable()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in BASE.items():
            with z.open(name, "w") as f:
                f.write(body)
    streamed = bytes(out.buf)
    assert zipfile.ZipFile(io.BytesIO(streamed)).infolist()[0].flag_bits & 0x08   # a data descriptor
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in BASE.items():
            with z.open(name, "w", force_zip64=True) as f:
                f.write(body)
    for data in (streamed, buf.getvalue()):
        fmt, keep = check_zip(data, Limits())
        assert fmt == "xlsx" and keep["xl/worksheets/sheet1.xml"] == BASE["xl/worksheets/sheet1.xml"]


def test_a_truncated_package_is_refused() -> None:
    data = make(BASE)
    with pytest.raises(FileRejected) as e:
        check_zip(data[: len(data) // 2], Limits())
    assert e.value.problem.code == "file_unreadable"
