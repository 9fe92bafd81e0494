"""What a person reads on the terminal: Chinese help, one message per mistake, 未变化 on a re-run,
the demo's files and its refusal to build over data."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from supervise.cli import cli
from supervise.cli_jobs import duration_text
from supervise.periods import Month
from supervise.workspace import Workspace

from .intake_corpus import HUANGHUA, filled

MARCH = Month(2025, 3)

CJK = re.compile(r"[\u4e00-\u9fff]")
UNKNOWN = ("错误 / error: 未知的县（市、区）代码 999999：--county 须为 reference/counties.csv 中的6位代码"
           "（见 --help）\n")


def _commands(group: click.Group, prefix: str) -> list[tuple[str, click.Command]]:
    out: list[tuple[str, click.Command]] = [(prefix, group)]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            out += _commands(command, f"{prefix} {name}")
        else:
            out.append((f"{prefix} {name}", command))
    return out


@pytest.mark.parametrize(("name", "command"), _commands(cli, "supervise"), ids=lambda x: str(x))
def test_every_command_and_option_is_helped_in_chinese(name: str, command: click.Command) -> None:
    assert CJK.search(command.help or ""), name
    for param in command.params:   # the help option is checked by its text below
        if isinstance(param, click.Option):
            assert CJK.search(param.help or ""), (name, param.opts, param.help)


def test_collect_help_is_short_and_chinese() -> None:
    result = CliRunner().invoke(cli, ["collect", "--help"], prog_name="supervise")
    assert result.exit_code == 0
    assert result.output == (
        "Usage: supervise collect [OPTIONS]\n"
        "\n"
        "  收取收件箱和报送邮箱（[imap]）中的文件，并重发 outbox 中待发的邮件（每小时任务）。\n"
        "\n"
        "Options:\n"
        "  --json      在 stdout 输出一个 JSON 文档（日志写入 stderr）。\n"
        "  -h, --help  显示本帮助并退出。\n"
    )


@pytest.mark.parametrize("args", [
    ["ingest", "--county", "999999", "FILE"],
    ["history", "--county", "999999", "--month", "2025-03"],
    ["reject", "--county", "999999", "--month", "2025-03", "--reason", "请核实"],
    ["explain", "--county", "999999", "--month", "2025-03"],
    ["templates", "--county", "999999", "--month", "2025-03"],
    ["templates", "--month", "2025-03", "--county", "999999", "--json"],
    ["users", "add", "clerk", "--role", "county", "--county", "999999", "--password-stdin"],
], ids=lambda a: " ".join(a[:2]) if a[0] == "users" else a[0])
def test_an_unknown_county_is_the_same_line_and_exit_status_in_every_command(
    ws: Workspace, tmp_path: Path, args: list[str]
) -> None:
    path = filled(ws, HUANGHUA, MARCH, tmp_path / "a.xlsx")
    args = [str(path) if a == "FILE" else a for a in args]
    result = CliRunner().invoke(cli, ["--home", str(ws.home), *args])
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", UNKNOWN)


def test_every_command_taking_county_is_covered() -> None:
    takes = sorted(name.split()[-1] for name, command in _commands(cli, "supervise")
                   if any("--county" in getattr(p, "opts", ()) for p in command.params))
    assert takes == ["add", "explain", "history", "ingest", "reject", "templates"]


def test_ingest_speaks_chinese_and_a_rerun_says_unchanged(ws: Workspace, tmp_path: Path) -> None:
    path = filled(ws, HUANGHUA, MARCH, tmp_path / "a.xlsx")
    home = ["--home", str(ws.home)]
    first = CliRunner().invoke(cli, [*home, "ingest", str(path), "--county", HUANGHUA], env={"COLUMNS": "200"})
    assert first.exit_code == 0, first.output
    lines = [line.rstrip() for line in first.stdout.splitlines()]
    assert lines[0].strip() == "报送文件"
    assert [cell.strip() for cell in lines[2].split("┃")[1:-1]] == ["文件", "县（市、区）", "报告期", "结论", "问题"]
    assert [cell.strip() for cell in lines[4].split("│")[1:-1]] == ["a.xlsx", HUANGHUA, "2025-03", "已受理", ""]
    assert lines[-1] == "已受理 1，有提示 0，退回 0，未变化 0，存储数值 60"

    again = CliRunner().invoke(cli, [*home, "ingest", str(path), "--county", HUANGHUA], env={"COLUMNS": "200"})
    assert again.exit_code == 0, again.output
    lines = [line.rstrip() for line in again.stdout.splitlines()]
    assert [cell.strip() for cell in lines[4].split("│")[1:-1]] == [
        "a.xlsx", HUANGHUA, "2025-03", "已受理（未变化）", ""]
    assert lines[-1] == "已受理 0，有提示 0，退回 0，未变化 1，存储数值 0（所有文件与已保存的版本相同，未变化）"

    empty = CliRunner().invoke(cli, [*home, "ingest"])
    assert (empty.exit_code, empty.stdout) == (0, "没有新文件，未变化\n")


def test_status_headers_and_states_are_chinese_only(ws: Workspace, tmp_path: Path) -> None:
    from .test_intake_ingest import send

    send(ws, filled(ws, HUANGHUA, MARCH, tmp_path / "a.xlsx"), "2025-04-03 10:00")
    result = CliRunner().invoke(cli, ["--home", str(ws.home), "status", "--month", "2025-03"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].strip() == "2025年3月 报送情况（截止 2025-04-05）"
    assert [c.strip() for c in lines[2].split("┃")[1:-1]] == ["代码", "县（市、区）", "状态", "收到时间", "迟报天数", "说明"]
    assert [c.strip() for c in lines[4].split("│")[1:-1]] == [HUANGHUA, "黄骅市", "按时报送", "2025-04-03 10:00", "", ""]
    assert "on_time" not in result.stdout and "state" not in result.stdout


@pytest.mark.parametrize(("started", "ended", "text"), [
    ("2025-04-06T08:00:00+08:00", "2025-04-06T08:00:12+08:00", "12秒"),
    ("2025-04-06T08:00:00+08:00", "2025-04-06T08:03:05+08:00", "3分05秒"),
    ("2025-04-06T08:00:00+08:00", "2025-04-06T09:02:00+08:00", "1小时02分"),
    ("2025-04-06T08:00:00+08:00", None, "运行中"),
])
def test_run_durations_read_in_chinese(started: str, ended: str | None, text: str) -> None:
    assert duration_text(started, ended) == text


# ------------------------------------------------------------------ demo


def test_demo_lists_every_bulletin_and_refuses_to_build_over_data(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["--home", str(home), "demo", "--months", "1"])
    assert result.exit_code == 0, result.output
    periods = ["2024-12", "2025-01", "2024Q4", "2024"]
    expected = [f"  {home}/reports/{p}/bulletin-{p}.{ext}" for p in periods for ext in ("xlsx", "html", "docx", "pdf")]
    assert result.stdout.splitlines() == [
        f"演示工作目录：{home}",
        result.stdout.splitlines()[1],
        f"通报文件（{len(expected)} 个）：",
        *expected,
        "用浏览器打开 .html 文件即可查看通报，例如：",
        f"  {(home / 'reports' / '2025-01' / 'bulletin-2025-01.html').as_uri()}",
    ]
    assert re.fullmatch(r"已受理报送：\d+ 份", result.stdout.splitlines()[1])
    assert all(Path(line.strip()).is_file() for line in expected)

    again = CliRunner().invoke(cli, ["--home", str(home), "demo", "--months", "1"])
    assert again.exit_code == 1 and again.stdout == ""
    [line] = again.stderr.splitlines()
    assert line.startswith(f"错误 / error: {home} 已有数据（archive/ 中有 ")
    assert "加 --force 清空后重建" in line


def test_demo_force_starts_clean_and_deletes_nothing_outside_its_home(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["--home", str(home), "demo", "--months", "1"])
    assert result.exit_code == 0, result.output
    stray = home / "inbox" / HUANGHUA / "old.xlsx"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"old")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep", encoding="utf-8")
    (home / "reports").rename(home / "reports-moved")
    (home / "reports").symlink_to(outside, target_is_directory=True)   # a link out of home
    (home / "notes.txt").write_text("mine", encoding="utf-8")           # not made by the demo

    forced = CliRunner().invoke(cli, ["--home", str(home), "demo", "--months", "1", "--force"])
    assert forced.exit_code == 0, forced.output
    assert not stray.exists()
    assert (outside / "keep.txt").read_text(encoding="utf-8") == "keep" and list(outside.iterdir()) == [
        outside / "keep.txt"]
    assert not (home / "reports").is_symlink() and (home / "reports" / "2025-01" / "bulletin-2025-01.html").is_file()
    assert (home / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert (home / "reports-moved").is_dir()


def test_demo_force_never_clears_a_folder_that_is_not_a_workspace(tmp_path: Path) -> None:
    home = tmp_path / "not-a-workspace"
    (home / "archive").mkdir(parents=True)
    (home / "archive" / "precious.pdf").write_bytes(b"%PDF")
    result = CliRunner().invoke(cli, ["--home", str(home), "demo", "--months", "1", "--force"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"错误 / error: {home} 不是 supervise 工作目录（没有 supervise.toml），--force 也不会删除")
    assert (home / "archive" / "precious.pdf").read_bytes() == b"%PDF"
