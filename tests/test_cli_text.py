"""Text a county controls (cells, file names, names in the reference files, messages quoting them)
reaches the operator's terminal escaped: no ESC sequence, C0/C1 control or bidi override raw."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result

from supervise.cli import cli
from supervise.periods import Quarter
from supervise.workspace import Workspace

from .conftest import at
from .intake_corpus import HUANGHUA, csv_rows, long_csv, monthly_values, quarterly_values

# Clear the screen, turn red, an OSC 8 hyperlink, an 8-bit CSI, a bidi override, BS and DEL.
HOSTILE = "\x1b[2J\x1b[31m红\x1b]8;;http://x\x07链接\x1b]8;;\x07\x9b1m\u202etxt.exe\x08\x7f"
NAME = HOSTILE.replace("/", "_")   # the same, as a file name
RAW = ("\x1b", "\x07", "\x9b", "\u202e", "\x08", "\x7f")
ROOT = Path(__file__).resolve().parents[1]
WIDE = {"COLUMNS": "400"}   # rich keeps each escaped text on one line


def assert_nothing_raw(result: Result) -> None:
    for stream in (result.stdout, result.stderr):
        found = [repr(c) for c in RAW if c in stream]
        assert not found, (found, stream)


def run(ws: Workspace, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--home", str(ws.home), *args], env=WIDE)


def test_ingest_and_history_show_county_text_escaped(ws: Workspace, tmp_path: Path) -> None:
    values = quarterly_values(ws.registry, HUANGHUA)
    values["CZ01"]["progress"] = "完成" + HOSTILE
    first = long_csv(csv_rows(HUANGHUA, "2025Q1", values), tmp_path / f"q1{NAME}.csv")
    values["CZ01"]["progress"] = "二版" + HOSTILE
    second = long_csv(csv_rows(HUANGHUA, "2025Q1", values), tmp_path / "q1-v2.csv")
    march = monthly_values(ws.registry, HUANGHUA)
    march["CZ01"]["rd_ytd"] = HOSTILE               # quoted by the not_a_number problem
    bad = long_csv(csv_rows(HUANGHUA, "2025-03", march), tmp_path / "m3.csv")

    r = run(ws, "ingest", str(first), str(bad), "--county", HUANGHUA)
    assert r.exit_code == 0, r.output
    assert_nothing_raw(r)
    assert r"q1\x1b[2J\x1b[31m红\x1b]8;;http:" in r.stdout       # the file name, visible
    assert "[not_a_number]" in r.stdout and r"\x9b1m\u202etxt.exe\x08\x7f" in r.stdout

    r = run(ws, "ingest", str(second), "--county", HUANGHUA)
    assert r.exit_code == 0, r.output
    r = run(ws, "history", "--county", HUANGHUA, "--quarter", "2025Q1")
    assert r.exit_code == 0, r.output
    assert_nothing_raw(r)
    escaped = r"\x1b[2J\x1b[31m红\x1b]8;;http://x\x07链接\x1b]8;;\x07\x9b1m\u202etxt.exe\x08\x7f"
    assert f"CZ01 progress: 完成{escaped} → 二版{escaped}" in r.stdout

    # --json: valid, the exact text back, and still nothing raw on the terminal.
    r = run(ws, "history", "--county", HUANGHUA, "--quarter", "2025Q1", "--json")
    assert r.exit_code == 0, r.output
    assert_nothing_raw(r)
    doc = json.loads(r.stdout)
    assert doc["versions"][0]["file_name"] == f"q1{NAME}.csv"
    assert doc["changes"][0]["changes"][0]["new"] == "二版" + HOSTILE
    assert "二版" in r.stdout                        # Chinese stays readable


def test_inbox_file_names_and_cluster_names_are_escaped(ws: Workspace, tmp_path: Path) -> None:
    clusters = ws.reference_dir / "clusters.csv"
    clusters.write_text(clusters.read_text(encoding="utf-8").replace(",化工", ",化工\u202e\x1b[5m", 1),
                        encoding="utf-8")
    march = monthly_values(ws.registry, HUANGHUA)
    march["CZ01"]["ent_total"] = -1                  # the problem names the cluster
    inbox = ws.inbox_dir / HUANGHUA
    inbox.mkdir(parents=True, exist_ok=True)
    long_csv(csv_rows(HUANGHUA, "2025-03", march), inbox / f"{NAME}.csv")

    r = run(ws, "ingest")
    assert r.exit_code == 0, r.output
    assert_nothing_raw(r)
    assert "退回" in r.stdout and r"化工\u202e\x1b[5m" in r.stdout
    doc = json.loads(run(ws, "ingest", "--dry-run", "--json").stdout)
    assert doc["files"] == []                        # the inbox file was collected


def test_error_lines_and_explain_are_escaped(filled: Workspace) -> None:
    broken = filled.rules_dir / f"bad{NAME}.toml"
    broken.write_text("[rulebook\n", encoding="utf-8")
    r = run(filled, "rules")
    assert r.exit_code == 1
    assert_nothing_raw(r)
    assert r"错误 / error: " in r.stderr and r"bad\x1b[2J\x1b[31m红" in r.stderr
    broken.unlink()

    counties = filled.reference_dir / "counties.csv"
    counties.write_text(counties.read_text(encoding="utf-8").replace("黄骅市", "黄骅市\x1b]8;;http://x\x07"),
                        encoding="utf-8")
    from supervise.jobs.assessment import run_assessments

    run_assessments(filled, Quarter(2025, 1), now=at("2025-04-20 09:00"))
    r = run(filled, "explain", "--county", HUANGHUA, "--quarter", "2025Q1")
    assert r.exit_code == 0, r.output
    assert_nothing_raw(r)
    assert r"黄骅市\x1b]8;;http://x\x07（130983）" in r.stdout


def test_a_file_name_that_is_not_utf8_is_shown(ws: Workspace, tmp_path: Path) -> None:
    """A name with bytes that are not UTF-8 (a lone surrogate in Python) neither crashes the report
    nor reaches the terminal raw. Run as a process: the output is checked as the bytes it wrote."""
    values = monthly_values(ws.registry, HUANGHUA)
    src = long_csv(csv_rows(HUANGHUA, "2025-03", values), tmp_path / "a.csv")
    odd = os.fsencode(tmp_path) + b"/\xff\x1b.csv"
    shutil.move(src, odd)
    env = {**os.environ, **WIDE, "PYTHONPATH": str(ROOT / "src"), "PYTHONIOENCODING": "utf-8"}
    done = subprocess.run([sys.executable, "-m", "supervise", "--home", str(ws.home), "ingest", odd,
                           "--county", HUANGHUA], cwd=ROOT, env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out, err = done.stdout.decode("utf-8"), done.stderr.decode("utf-8")   # strict: nothing undecodable
    assert not [c for c in RAW if c in out + err]
    # the name is stored as text (the byte that is neither UTF-8 nor GB18030 as U+FFFD) and shown escaped
    assert "\ufffd" + r"\x1b.csv" in out and "已受理 1，有提示 0，退回 0，未变化 0，存储数值 60" in out
