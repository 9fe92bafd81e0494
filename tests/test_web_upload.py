"""Uploads through the portal: the same verdicts and located problems as `supervise ingest`, for
good files and for every bad kind; a rejected or refused upload changes nothing stored."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from supervise.intake import ingest_files
from supervise.web.uploads import safe_filename
from supervise.workspace import Workspace

from .intake_corpus import dump, filled
from .web_support import HUANGHUA, MARCH, NOW, RENQIU, Browser, add_users, login, make_app


@pytest.fixture
def app(ws: Workspace) -> Flask:
    add_users(ws)
    return make_app(ws)


def _upload(b: Browser, data: bytes, name: str, *, json: bool = True) -> Any:
    headers = {"Accept": "application/json"} if json else {}
    return b.post("/county/upload", data={"csrf_token": b.csrf, "file": (io.BytesIO(data), name)},
                  headers=headers, content_type="multipart/form-data")


def _cli_verdict(ws: Workspace, path: Path, county: str) -> tuple[str, list[tuple[str, str]]]:
    """What `supervise ingest FILE --county CODE --dry-run` says of the same bytes."""
    fresh = Workspace(ws.home)       # the settings as they are on disk now
    f = ingest_files(fresh, [path], county=county, dry_run=True, now=NOW).to_json()["files"][0]
    return f["verdict"], [(p["code"], p["where"]) for p in f["problems"]]


def _archived(ws: Workspace) -> int:
    return sum(1 for p in ws.archive_dir.rglob("*") if p.is_file())


def _staged(ws: Workspace) -> list[Path]:
    root = ws.home / ".web" / "uploads"
    return [p for p in root.rglob("*")] if root.exists() else []


def test_a_good_file_is_accepted_as_the_cli_would_and_the_json_is_files_0(ws: Workspace, app: Flask,
                                                                          tmp_path: Path) -> None:
    path = filled(ws, HUANGHUA, MARCH, tmp_path / "黄骅市3月.xlsx")
    b = login(app, "county-a")
    r = _upload(b, path.read_bytes(), path.name)
    assert r.status_code == 200
    f = r.json
    assert set(f) >= {"file", "county_code", "period", "verdict", "problems"}
    assert (f["file"], f["county_code"], f["period"], f["verdict"], f["problems"]) == (
        "黄骅市3月.xlsx", HUANGHUA, "2025-03", "accepted", [])
    assert f["received_at"].startswith("2025-04-03T10:00:00")
    assert f["values"] == 4 * 15        # 黄骅's four clusters × the 15 monthly indicators
    conn = sqlite3.connect(ws.db_path)
    row = conn.execute("SELECT county_code, sender_code, period, file_name, state, source FROM submissions "
                       "WHERE id = ?", (f["submission_id"],)).fetchone()
    conn.close()
    assert row == (HUANGHUA, HUANGHUA, "2025-03", "黄骅市3月.xlsx", "current", "web")
    assert _staged(ws) == [] and _archived(ws) == 1
    again = _upload(b, path.read_bytes(), "again.xlsx").json
    assert again["unchanged"] is True and again["submission_id"] == f["submission_id"]
    page = b.get("/county?period=2025-03").text
    assert "按时报送" in page and "黄骅市3月.xlsx" in page


def _bad_files(ws: Workspace, tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, the problem code that must come back)."""
    not_a_sheet = tmp / "报表.xlsx"
    not_a_sheet.write_bytes(b"%PDF-1.4 this is not a spreadsheet\n" * 20)
    other = filled(ws, RENQIU, MARCH, tmp / "任丘市.xlsx")
    text = filled(ws, HUANGHUA, MARCH, tmp / "text.xlsx", CZ01__revenue_ytd="约三千万")
    return {"non-spreadsheet": (not_a_sheet, "file_unreadable"), "another county's file": (other, "county_mismatch"),
            "text in a number cell": (text, "not_a_number")}


@pytest.mark.parametrize("kind", ["non-spreadsheet", "another county's file", "text in a number cell"])
def test_a_bad_file_gets_the_cli_verdict_and_changes_nothing_stored(ws: Workspace, app: Flask, tmp_path: Path,
                                                                    kind: str) -> None:
    good = filled(ws, HUANGHUA, MARCH, tmp_path / "good.xlsx")
    ingest_files(ws, [good], county=HUANGHUA, now=NOW)
    path, code = _bad_files(ws, tmp_path)[kind]
    expected = _cli_verdict(ws, path, HUANGHUA)
    before, archived = dump(ws), _archived(ws)
    b = login(app, "county-a")
    f = _upload(b, path.read_bytes(), path.name).json
    assert (f["verdict"], [(p["code"], p["where"]) for p in f["problems"]]) == expected
    assert f["verdict"] == "rejected" and code in {p["code"] for p in f["problems"]}
    assert dump(ws) == before                      # the version in force and its values are untouched
    assert _archived(ws) == archived + 1           # yet the file itself is kept, unchanged
    assert _staged(ws) == []


def test_the_page_lists_every_located_problem(ws: Workspace, app: Flask, tmp_path: Path) -> None:
    path = filled(ws, HUANGHUA, MARCH, tmp_path / "text.xlsx", CZ01__revenue_ytd="约三千万", CZ02__ent_total=-3)
    r = _upload(login(app, "county-a"), path.read_bytes(), path.name, json=False)
    assert r.status_code == 200 and r.mimetype == "text/html"
    html = r.text
    assert "退回" in html and "已保存的数据没有改变" in html
    assert "填报表!I6 / CZ01 / revenue_ytd" in html and "not_a_number" in html
    assert "/ CZ02 / ent_total" in html and "negative_count" in html
    assert "约三千万" in html


@pytest.mark.parametrize("name", ["../../../etc/passwd.xlsx", "..\\..\\evil.xlsx", "a\x00b\x1b[31m.xlsx",
                                  "\u202egpj.xlsx", "....", "/", ".hidden.xlsx"])
def test_a_filename_with_folders_or_control_characters_does_not_matter(ws: Workspace, app: Flask, tmp_path: Path,
                                                                       name: str) -> None:
    path = filled(ws, HUANGHUA, MARCH, tmp_path / "good.xlsx")
    expected = _cli_verdict(ws, path, HUANGHUA)
    outside = sorted(p.name for p in ws.home.parent.iterdir())
    f = _upload(login(app, "county-a"), path.read_bytes(), name).json
    assert (f["verdict"], [(p["code"], p["where"]) for p in f["problems"]]) == expected == ("accepted", [])
    stored = f["file"]
    assert stored == safe_filename(name)
    assert "/" not in stored and "\\" not in stored and not stored.startswith(".")
    assert all(ord(c) >= 32 and c != "\u202e" for c in stored)
    assert sorted(p.name for p in ws.home.parent.iterdir()) == outside
    assert not (ws.home.parent / "etc").exists() and _staged(ws) == []


def test_safe_filename_keeps_a_chinese_name_and_its_extension() -> None:
    assert safe_filename("C:\\Users\\张三\\黄骅市2025年3月.xlsx") == "黄骅市2025年3月.xlsx"
    assert safe_filename("x" * 400 + ".xlsx").endswith(".xlsx")
    assert len(safe_filename("县" * 400 + ".xlsx").encode()) <= 180
    assert safe_filename("") == safe_filename(None) == "上传文件"


def _small_limit(ws: Workspace, limit: int) -> None:
    text = ws.settings_path.read_text(encoding="utf-8")
    ws.settings_path.write_text(text.replace("max_file_bytes = 20_000_000", f"max_file_bytes = {limit}"),
                                encoding="utf-8")


def test_an_oversized_body_is_refused_before_it_is_read_and_nothing_is_kept(ws: Workspace, app: Flask,
                                                                            tmp_path: Path) -> None:
    _small_limit(ws, 30_000)
    b = login(app, "county-a")
    before, archived = dump(ws), _archived(ws)
    read: list[int] = []

    class Body(io.BytesIO):
        def read(self, n: int | None = -1) -> bytes:  # type: ignore[override]
            read.append(n or 0)
            return super().read(n)

    body = Body(b"x" * 500_000)
    r = b.post("/county/upload", input_stream=body, content_type="multipart/form-data; boundary=x",
               headers={"Accept": "application/json", "Content-Length": "500000", "X-CSRF-Token": b.csrf})
    assert r.status_code == 413
    assert r.json["verdict"] == "rejected" and [p["code"] for p in r.json["problems"]] == ["file_too_large"]
    assert read == []                                   # not a byte of the body was read
    assert dump(ws) == before and _archived(ws) == archived and _staged(ws) == []
    page = b.post("/county/upload", input_stream=io.BytesIO(b"x" * 500_000),
                  content_type="multipart/form-data; boundary=x",
                  headers={"Content-Length": "500000", "X-CSRF-Token": b.csrf})
    assert page.status_code == 413 and "文件超过上限30000字节" in page.text


def test_a_file_just_over_the_limit_inside_the_allowance_is_the_cli_s_file_too_large(ws: Workspace, app: Flask,
                                                                                       tmp_path: Path) -> None:
    _small_limit(ws, 30_000)
    big = tmp_path / "big.csv"
    big.write_bytes(b"county_code,period,cluster_code,indicator,value\n" + b"1" * 40_000)
    expected = _cli_verdict(ws, big, HUANGHUA)
    f = _upload(login(app, "county-a"), big.read_bytes(), "big.csv").json
    assert (f["verdict"], [(p["code"], p["where"]) for p in f["problems"]]) == expected
    assert expected[1][0][0] == "file_too_large"


def test_every_upload_is_in_the_audit_log(ws: Workspace, app: Flask, tmp_path: Path) -> None:
    path = filled(ws, HUANGHUA, MARCH, tmp_path / "a.xlsx")
    _upload(login(app, "county-a"), path.read_bytes(), "a.xlsx")
    conn = sqlite3.connect(ws.db_path)
    rows = conn.execute("SELECT username, address, action, outcome, county_code, period FROM web_audit "
                        "WHERE action = 'upload'").fetchall()
    conn.close()
    assert rows == [("county-a", "127.0.0.1", "upload", "accepted", HUANGHUA, "2025-03")]


def test_an_upload_without_a_file_says_so(app: Flask) -> None:
    b = login(app, "county-a")
    r = b.post("/county/upload", data={"csrf_token": b.csrf})
    assert r.status_code == 400 and "请选择要上传的报送文件" in r.text


def test_a_file_name_with_markup_is_shown_as_text(ws: Workspace, app: Flask, tmp_path: Path) -> None:
    path = filled(ws, HUANGHUA, MARCH, tmp_path / "a.xlsx")
    r = _upload(login(app, "county-a"), path.read_bytes(), "<img src=x onerror=alert(1)>.xlsx", json=False)
    assert "<img src=x" not in r.text and "&lt;img src=x onerror=alert(1)&gt;.xlsx" in r.text
