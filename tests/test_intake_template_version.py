"""A 模板版本 cell (填报表!H2) that holds no usable version is a template problem for the county,
told in Chinese, never an internal error. Real workbooks, ingested through the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from supervise.cli import cli
from supervise.periods import Month
from supervise.workspace import Workspace

from .intake_corpus import HUANGHUA, edit, filled

MARCH = Month(2025, 3)
RECEIVED = "2025-04-02T10:00:00+08:00"
FIX = "请使用最新下发的模板重新填报。"


def ingest_with_version(ws: Workspace, tmp_path: Path, version: Any) -> dict[str, Any]:
    """黄骅市's March workbook with `version` typed into H2, ingested with `supervise ingest --json`."""
    path = filled(ws, HUANGHUA, MARCH, tmp_path / "huanghua.xlsx")

    def set_version(sheet: Any) -> None:
        sheet["H2"].value = version

    edit(path, set_version)
    res = CliRunner().invoke(
        cli, ["--home", str(ws.home), "ingest", str(path), "--county", HUANGHUA, "--received-at", RECEIVED, "--json"]
    )
    assert res.exit_code == 0, res.output   # a rejection is a verdict, not a failure
    (f,) = json.loads(res.stdout)["files"]
    return f


@pytest.mark.parametrize(
    "typed, shown",
    [
        ("inf", "inf"),
        ("1e400", "1e400"),                        # beyond the largest float
        ("1e19", "1e19"),                          # a float, but beyond the store's 64-bit INTEGER
        (1e19, "10000000000000000000"),            # the same as a number cell: shown as Excel shows it
        ("-1e19", "-1e19"),
        ("nan", "nan"),
    ],
)
def test_a_version_that_is_no_version_is_a_template_problem(
    ws: Workspace, tmp_path: Path, typed: Any, shown: str
) -> None:
    f = ingest_with_version(ws, tmp_path, typed)
    assert f["verdict"] == "rejected"
    assert [p["code"] for p in f["problems"]] == ["template_too_old"]
    (p,) = f["problems"]
    assert p["where"] == "填报表!H2"
    assert p["message"] == f"模板版本号“{shown}”不是有效的版本号（模板H2），可能改动了模板或使用了自制表格。{FIX}"
    conn = ws.connect()
    try:
        row = conn.execute(
            "SELECT verdict, template_version FROM submissions WHERE id = ?", (f["submission_id"],)
        ).fetchone()
        assert tuple(row) == ("rejected", None)
        codes = [r[0] for r in conn.execute("SELECT code FROM problems WHERE submission_id = ?", (f["submission_id"],))]
        assert codes == ["template_too_old"]
    finally:
        conn.close()


@pytest.mark.parametrize("typed, stored", [(1, 1), ("1", 1), (2.0, 2), (1000000, 1000000)])
def test_an_ordinary_version_is_still_read(ws: Workspace, tmp_path: Path, typed: Any, stored: int) -> None:
    f = ingest_with_version(ws, tmp_path, typed)
    assert f["verdict"] == "accepted", f["problems"]
    conn = ws.connect()
    try:
        row = conn.execute("SELECT template_version FROM submissions WHERE id = ?", (f["submission_id"],)).fetchone()
        assert row[0] == stored
    finally:
        conn.close()


def test_a_version_below_the_minimum_is_still_too_old(ws: Workspace, tmp_path: Path) -> None:
    f = ingest_with_version(ws, tmp_path, -3)
    assert f["verdict"] == "rejected"
    (p,) = f["problems"]
    assert p["code"] == "template_too_old"
    assert p["message"] == f"模板版本为-3，已停止使用（最低版本1）。{FIX}"
