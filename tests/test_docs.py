"""Keep the docs honest: every command has help and a README entry; the deploy docs exist."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from supervise.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
COMMANDS = sorted(cli.commands)


def test_the_spec_commands_exist():
    for name in ("init", "templates", "ingest", "status", "run", "explain", "remind",
                 "scheduler", "crontab", "demo", "history", "reject"):
        assert name in cli.commands, name


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0
    assert "Usage: " in result.output and len(result.output.splitlines()) > 3


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_is_in_the_readme(name):
    assert f"`supervise {name}`" in README, f"add `supervise {name}` to the README's command table"


def test_readme_opens_with_the_two_commands():
    head = README[: README.index("## The workflow")]
    assert "supervise --home demo demo" in head
    assert "python -m pytest" in head


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = next(line for line in README.splitlines() if "python -m pytest" in line)
    test_part = command.split("&& ", 3)[-1].strip()  # pip install -e '.[test]' && python -m pytest ...
    assert test_part in ci, (test_part, ci)
