"""The zip/XML safety scans decompress entries themselves: the same refusals as zipfile gives."""

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
