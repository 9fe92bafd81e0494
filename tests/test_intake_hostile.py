"""Small files that ask a reader for a huge grid, and files that kill their reader.

Each is rejected with where it went wrong, is archived, leaves the inbox, and the good files
beside it are stored: one county's file never stops a collect or a run.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from supervise.intake.sandbox import SandboxPool
from supervise.periods import Month
from supervise.workspace import Workspace

from .conftest import require_peer
from .intake_corpus import HUANGHUA, RENQIU, convert, filled, soffice

MARCH = Month(2025, 3)
SHEET = "xl/worksheets/sheet1.xml"     # 填报表, the template's first sheet


def inject(src: Path, dst: Path, rows: bytes) -> Path:
    """The workbook `src` with `rows` added at the end of 填报表's <sheetData>."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == SHEET:
                assert b"</sheetData>" in data
                data = data.replace(b"</sheetData>", rows + b"</sheetData>")
            zout.writestr(info, data)
    return dst


def cli(ws: Workspace, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SUPERVISE_HOME": str(ws.home)}
    return subprocess.run([sys.executable, "-m", "supervise", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, check=False)


def problems(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["code"], p["where"]) for f in doc["files"] for p in f["problems"]]


# Each of these is about 10 KB; before the sheet was measured by a real XML parse, calamine was
# asked for WXY × 200000 cells (~100 GB) and aborted the process.
HOSTILE_XLSX = {
    # single-quoted attributes, which a pattern for r="…" does not see
    "single_quotes": (b"<row r='200000'><c r='WXY200000' t='inlineStr'><is><t>x</t></is></c></row>",
                      "填报表!WXY200000"),
    # 200,000 rows without r: Excel numbers each one after the last; then a cell without r
    "no_r": (b"<row/>" * 200_000 + b"<row><c t='inlineStr'><is><t>x</t></is></c></row>",
             # the template's last row is 13 (4 clusters from row 7, two note lines): 13 + 200,001
             None),
    # a prefixed namespace, as the OpenXML SDK writes
    "prefixed": (b"<x:row xmlns:x='http://schemas.openxmlformats.org/spreadsheetml/2006/main' r='9'>"
                 b"<x:c r='C1048576'><x:v>1</x:v></x:c></x:row>", "填报表!C1048576"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_XLSX))
def test_a_small_xlsx_that_asks_for_a_huge_grid_is_refused_where_it_is(ws: Workspace, tmp_path: Path,
                                                                       kind: str) -> None:
    rows, where = HOSTILE_XLSX[kind]
    good = filled(ws, HUANGHUA, MARCH, tmp_path / "good.xlsx")
    bad = inject(good, tmp_path / f"{kind}.xlsx", rows)
    assert bad.stat().st_size < 40_000
    done = cli(ws, "ingest", "--dry-run", "--json", "--county", HUANGHUA, str(bad))
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    [(code, got)] = problems(doc)
    assert code == "file_too_large"
    if where is None:
        assert got.startswith("填报表!A") and int(got.removeprefix("填报表!A")) > 200_000
    else:
        assert got == where
    assert "超过上限10000行" in doc["files"][0]["problems"][0]["message"]


def test_a_dimension_that_lies_small_does_not_hide_the_cells(ws: Workspace, tmp_path: Path) -> None:
    good = filled(ws, HUANGHUA, MARCH, tmp_path / "good.xlsx")
    bad = tmp_path / "lying.xlsx"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == SHEET:
                start = data.index(b"<dimension")
                end = data.index(b"/>", start) + 2
                data = data[:start] + b'<dimension ref="A1:B2"/>' + data[end:]
                data = data.replace(b"</sheetData>", b'<row r="50000"><c r="B50000"><v>1</v></c></row></sheetData>')
            zout.writestr(info, data)
    done = cli(ws, "ingest", "--dry-run", "--json", "--county", HUANGHUA, str(bad))
    assert problems(json.loads(done.stdout)) == [("file_too_large", "填报表!B50000")]


@pytest.mark.libreoffice
def test_a_small_xls_or_ods_with_a_far_cell_is_refused_before_it_is_opened(ws: Workspace, tmp_path: Path) -> None:
    """A 17 KB .xls with a cell at IV65536 made calamine build a 1 GB grid when it opened the file."""
    require_peer("LibreOffice (soffice)", soffice())
    from openpyxl import load_workbook

    src = filled(ws, HUANGHUA, MARCH, tmp_path / "src.xlsx")
    wb = load_workbook(src)
    wb["填报表"]["IV65536"] = "x"
    far = tmp_path / "far.xlsx"
    wb.save(far)
    files = convert([far], ["xls", "ods"], tmp_path / "lo")
    for fmt in ("xls", "ods"):
        path = files[fmt][0]
        done = cli(ws, "ingest", "--dry-run", "--json", "--county", HUANGHUA, str(path))
        assert done.returncode == 0, done.stderr
        assert problems(json.loads(done.stdout)) == [("file_too_large", "填报表!IV65536")], fmt


def _memory_hungry(ws: Workspace, tmp_path: Path) -> Path:
    """A file within every limit (499 columns, 9,999 rows) whose grid costs hundreds of MB."""
    good = filled(ws, HUANGHUA, MARCH, tmp_path / "good.xlsx")
    return inject(good, tmp_path / "hungry.xlsx",
                  b'<row r="9999"><c r="SE9999" t="inlineStr"><is><t>x</t></is></c></row>')


def test_a_file_that_kills_its_reader_is_rejected_and_the_batch_goes_on(ws: Workspace, tmp_path: Path) -> None:
    settings = ws.settings_path.read_text(encoding="utf-8")
    ws.settings_path.write_text(settings.replace("reader_memory_mb = 1024", "reader_memory_mb = 100"),
                                encoding="utf-8")
    hungry = _memory_hungry(ws, tmp_path)
    box = ws.inbox_dir / HUANGHUA
    box.mkdir(parents=True)
    shutil.copyfile(hungry, box / "a-hungry.xlsx")
    (ws.inbox_dir / RENQIU).mkdir()
    filled(ws, RENQIU, MARCH, ws.inbox_dir / RENQIU / "rq.xlsx")

    done = cli(ws, "ingest", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    verdicts = {Path(f["file"]).name: (f["verdict"], [p["code"] for p in f["problems"]]) for f in doc["files"]}
    assert verdicts == {"a-hungry.xlsx": ("rejected", ["file_unreadable"]), "rq.xlsx": ("accepted", [])}
    hungry_result = next(f for f in doc["files"] if f["file"].endswith("a-hungry.xlsx"))
    assert "内存" in hungry_result["problems"][0]["message"]
    # archived unchanged, recorded as a rejection of 黄骅's, gone from the inbox
    archived = list((ws.home / "archive").rglob(f"{hungry_result['sha256']}.*"))
    assert [p.read_bytes() for p in archived] == [hungry.read_bytes()]
    assert sorted(p.name for p in ws.inbox_dir.rglob("*") if p.is_file()) == []
    conn = ws.connect()
    rows = dict(conn.execute("SELECT county_code, verdict FROM submissions").fetchall())
    conn.close()
    assert rows == {HUANGHUA: "rejected", RENQIU: "accepted"}


def test_with_the_default_limit_the_same_file_is_read(ws: Workspace, tmp_path: Path) -> None:
    """The limit is what rejected it above, not the file: at 1024 MB it is read and judged."""
    hungry = _memory_hungry(ws, tmp_path)
    done = cli(ws, "ingest", "--dry-run", "--json", "--county", HUANGHUA, str(hungry))
    codes = [c for c, _w in problems(json.loads(done.stdout))]
    assert "file_unreadable" not in codes


# ------------------------------------------------------------------ the sandbox itself


def _work(task: str) -> str:
    if task == "abort":
        os.abort()                      # what calamine does when an allocation fails
    if task == "allocate":
        return str(len(bytearray(2_000_000_000)))
    if task == "spin":
        time.sleep(60)
    return task.upper()


def _fallback(task: str, reason: str) -> str:
    return f"rejected {task}: {reason}"


def test_the_sandbox_survives_aborts_allocations_and_spins_in_order() -> None:
    tasks = ["a", "abort", "b", "allocate", "c", "spin", "d", *map(str, range(10))]
    started = time.monotonic()
    with SandboxPool(_work, _fallback, workers=2, memory_bytes=200 * 2**20, seconds=1.5) as pool:
        got = list(pool.run(tasks, ahead=4))
        assert pool.failures == 3
    assert got[0::2][:4] == ["A", "B", "C", "D"]
    assert got[1].startswith("rejected abort: ")
    assert got[3] == "rejected allocate: 读取所需内存超过上限"
    assert got[5] == "rejected spin: 读取超过1.5秒仍未完成"
    assert got[7:] == [str(i) for i in range(10)]
    assert time.monotonic() - started < 30      # the spinning worker was killed, not waited for
    # the parent never held the 2 GB
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 1_500_000


# ------------------------------------------------------------------ prefixed sheet XML


MAIN_NS = b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'


def prefixed(src: Path, dst: Path, edit: Any = None) -> Path:
    """填报表 rewritten with an x: prefix on every element, as the OpenXML SDK writes it."""
    import re

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == SHEET:
                if edit is not None:
                    data = edit(data)
                assert MAIN_NS in data
                data = data.replace(MAIN_NS, MAIN_NS.replace(b"xmlns=", b"xmlns:x="))
                data = re.sub(rb"<(/?)(?![?!])([A-Za-z]+)(?=[\s>/])", rb"<\1x:\2", data)
                assert b"<x:c " in data and b"<c " not in data
            zout.writestr(info, data)
    return dst


def test_a_prefixed_workbook_is_read_and_its_formulas_are_seen(ws: Workspace, tmp_path: Path) -> None:
    import re

    good = filled(ws, HUANGHUA, MARCH, tmp_path / "good.xlsx")
    plain = prefixed(good, tmp_path / "prefixed.xlsx")
    done = cli(ws, "ingest", "--dry-run", "--json", "--county", HUANGHUA, str(plain))
    [f] = json.loads(done.stdout)["files"]
    assert (f["verdict"], f["problems"], f["values"]) == ("accepted", [], 4 * 15)

    def formula(data: bytes) -> bytes:        # I7 (CZ02's revenue_ytd) becomes a formula with no value
        return re.sub(rb'<c r="I7"([^>]*)>.*?</c>', rb'<c r="I7"\1><f>C7*2</f></c>', data, count=1, flags=re.S)

    bad = prefixed(good, tmp_path / "prefixed-formula.xlsx", formula)
    done = cli(ws, "ingest", "--dry-run", "--json", "--county", HUANGHUA, str(bad))
    [f] = json.loads(done.stdout)["files"]
    assert f["verdict"] == "rejected"
    assert [(p["code"], p["where"].split(" / ")[0]) for p in f["problems"]] == [("formula_without_value", "填报表!I7")]


def test_a_sheet_hidden_behind_a_comment_in_workbook_xml_is_still_measured(ws: Workspace, tmp_path: Path) -> None:
    """workbook.xml names 填报表's part; a second <sheet> inside an XML comment must not make the
    scan measure another part than the one calamine reads."""
    good = filled(ws, HUANGHUA, MARCH, tmp_path / "good.xlsx")
    bad = tmp_path / "commented.xlsx"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == SHEET:
                data = data.replace(b"</sheetData>",
                                    b'<row r="1048576"><c r="XFD1048576"><v>1</v></c></row></sheetData>')
            if info.filename == "xl/workbook.xml":
                data = data.replace(b"</sheets>", b'</sheets><!-- <sheet name="\xe5\xa1\xab\xe6\x8a\xa5\xe8\xa1\xa8" '
                                    b'sheetId="9" r:id="rId2"/> -->')
            zout.writestr(info, data)
    done = cli(ws, "ingest", "--dry-run", "--json", "--county", HUANGHUA, str(bad))
    assert done.returncode == 0, done.stderr
    assert problems(json.loads(done.stdout)) == [("file_too_large", "填报表!XFD1048576")]
