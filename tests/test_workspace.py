from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from supervise.cli import cli
from supervise.registry import RegistryError, load_registry
from supervise.workspace import WorkspaceError, load_settings

ROOT = Path(__file__).resolve().parents[1]
INDICATOR_HEADER = "code,label,unit,dataset,kind,type,agg,min,max,integer,optional,help\n"


def test_init_creates_the_workspace(tmp_path: Path):
    home = tmp_path / "ws"
    result = CliRunner().invoke(cli, ["--home", str(home), "init"])
    assert result.exit_code == 0, result.output
    for folder in ("reference", "rules", "inbox", "archive", "reports", "outbox"):
        assert (home / folder).is_dir()
    assert (home / "supervise.toml").read_text(encoding="utf-8").startswith("# supervise settings")
    assert (home / "supervise.db").exists()
    reg = load_registry(home / "reference")
    assert len(reg.counties) == 14 and len(reg.clusters) == 45
    assert [c.code for c in reg.clusters_of("130924")] == ["CZ44", "CZ45"]  # 海兴县
    assert reg.counties["130930"].name == "孟村回族自治县"


def test_init_keeps_a_bureaus_edits(tmp_path: Path):
    home = tmp_path / "ws"
    CliRunner().invoke(cli, ["--home", str(home), "init"])
    (home / "supervise.toml").write_text("[deadlines]\nmonthly_day = 8\n", encoding="utf-8")
    CliRunner().invoke(cli, ["--home", str(home), "init"])
    assert "monthly_day = 8" in (home / "supervise.toml").read_text(encoding="utf-8")


def test_home_from_environment(tmp_path: Path):
    result = CliRunner().invoke(cli, ["init"], env={"SUPERVISE_HOME": str(tmp_path / "envhome")})
    assert result.exit_code == 0
    assert (tmp_path / "envhome" / "supervise.db").exists()


def test_settings_refuse_unknown_key_and_wrong_type(tmp_path: Path):
    p = tmp_path / "supervise.toml"
    p.write_text("[deadlines]\nmonthly_dya = 5\n", encoding="utf-8")
    with pytest.raises(WorkspaceError, match="unknown key 'monthly_dya'"):
        load_settings(p)
    p.write_text("[deadlines]\nmonthly_day = \"5\"\n", encoding="utf-8")
    with pytest.raises(WorkspaceError, match="monthly_day must be a int"):
        load_settings(p)


def test_command_outside_a_workspace_fails_in_one_line(tmp_path: Path):
    result = CliRunner().invoke(cli, ["--home", str(tmp_path / "nothing"), "status", "--month", "2025-03"])
    assert result.exit_code != 0


def test_indicator_help_may_span_lines(ws):
    """A quoted cell with line breaks (as Excel saves CSV: CRLF) is one cell of one row."""
    (ws.reference_dir / "indicators.csv").write_text(
        INDICATOR_HEADER
        + 'ent_total,企业数,家,monthly,stock,number,sum,0,,yes,no,"期末企业总数\r\n（含规下，不含个体户）"\r\n'
        + "ent_above,规上工业企业数,家,monthly,stock,number,sum,0,,yes,no,\r\n",
        encoding="utf-8",
    )
    indicators = load_registry(ws.reference_dir).indicators
    assert list(indicators) == ["ent_total", "ent_above"]
    assert indicators["ent_total"].help == "期末企业总数\n（含规下，不含个体户）"


@pytest.mark.parametrize(
    "file, content, message",
    [
        ("counties.csv", "county_code,county_name\n13098,黄骅市\n", "line 2: county_code '13098' is not a 6-digit"),
        ("counties.csv", "county_code,county_name\n130983,黄骅市\n130983,又一个\n", "line 3: county_code 130983 appears twice"),
        ("counties.csv", "code,name\n130983,黄骅市\n", "line 1: missing column(s) county_code, county_name"),
        ("clusters.csv", "cluster_code,county_code,county_name,cluster_name\nCZ01,999999,某县,化工\n",
         "line 2: county_code '999999' is not in counties.csv"),
        ("targets.csv", "county_code,year,above_net_new,park_new,land_disposed\n130983,2025,十,3,4\n",
         "line 2: column above_net_new must be a number"),
        # A second row for one indicator code would silently replace the first.
        ("indicators.csv", INDICATOR_HEADER + "ent_total,企业数,家,monthly,stock,number,sum,0,,yes,no,\n"
         "ent_total,企业总数,家,monthly,stock,number,sum,0,,yes,no,\n", "line 3: code ent_total appears twice"),
        # The line is where the row starts, even after a help text over two lines.
        ("indicators.csv", INDICATOR_HEADER + 'ent_total,企业数,家,monthly,stock,number,sum,0,,yes,no,"第一行\n第二行"\n'
         "ent_above,规上,家,monthly,stock,number,sum,0,,yes,no,\n"
         "ent_total,企业总数,家,monthly,stock,number,sum,0,,yes,no,\n", "line 5: code ent_total appears twice"),
    ],
)
def test_broken_reference_names_file_and_line(ws, file, content, message):
    (ws.reference_dir / file).write_text(content, encoding="utf-8")
    with pytest.raises(RegistryError) as err:
        load_registry(ws.reference_dir)
    assert file in str(err.value) and message in str(err.value)


@pytest.mark.parametrize(
    "args",
    [["run", "--month", "2025-03", "--quarter", "2025Q1"], ["no-such-command"], ["status", "--month", "2025-3"]],
)
def test_failures_are_told_in_one_line(ws, args):
    result = CliRunner().invoke(cli, ["--home", str(ws.home), *args])
    assert result.exit_code in (1, 2)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("错误 / error: "), result.stderr


def test_init_refuses_an_empty_database_beside_a_full_archive(tmp_path: Path):
    """supervise.db deleted or lost, archive/ still full: init says so and how to restore."""
    home = tmp_path / "ws"
    runner = CliRunner()
    assert runner.invoke(cli, ["--home", str(home), "init"]).exit_code == 0
    for name in ("ab/ab01.xlsx", "cd/cd02.csv"):
        (home / "archive" / name).parent.mkdir(parents=True, exist_ok=True)
        (home / "archive" / name).write_bytes(b"x")
    (home / "supervise.db").unlink()

    result = runner.invoke(cli, ["--home", str(home), "init"])
    assert result.exit_code == 1
    assert not (home / "supervise.db").exists()
    [line] = result.stderr.splitlines()
    assert line.startswith("错误 / error: 数据库 supervise.db 不存在，但 archive/ 中有 2 个已归档文件")
    assert "从备份恢复" in line and "init --start-empty" in line and "2 archived file(s)" in line
    # Other commands still refuse the folder (and point to init).
    assert runner.invoke(cli, ["--home", str(home), "status", "--month", "2025-03"]).exit_code == 1

    result = runner.invoke(cli, ["--home", str(home), "init", "--start-empty"])
    assert result.exit_code == 0, result.output
    assert "已新建空数据库" in result.stderr and (home / "supervise.db").exists()
    assert sorted(p.name for p in (home / "archive").rglob("*") if p.is_file()) == ["ab01.xlsx", "cd02.csv"]
    # With the database back, init is the harmless refresh it always was.
    assert runner.invoke(cli, ["--home", str(home), "init"]).exit_code == 0


def test_init_with_an_empty_archive_creates_the_database(tmp_path: Path):
    home = tmp_path / "ws"
    (home / "archive" / "ab").mkdir(parents=True)      # folders, but no file ever archived
    result = CliRunner().invoke(cli, ["--home", str(home), "init"])
    assert result.exit_code == 0, result.output
    assert (home / "supervise.db").exists()


@pytest.mark.parametrize("value, mode", [('"0640"', 0o640), ('"600"', 0o600), ('"0644"', 0o644)])
def test_reports_file_mode_is_an_octal_string(tmp_path: Path, value: str, mode: int):
    p = tmp_path / "supervise.toml"
    p.write_text(f"[reports]\nfile_mode = {value}\n", encoding="utf-8")
    assert load_settings(p).reports.file_mode == mode
    assert load_settings(tmp_path / "absent.toml").reports.file_mode == 0o640  # the default


@pytest.mark.parametrize("value, message", [
    ("640", "file_mode must be a str, not 640"),            # a TOML number, not the string
    ('"rw-r-----"', "must be an octal mode string"),
    ('"0o640"', "must be an octal mode string"),
    ('"0680"', "must be an octal mode string"),
    ('"4750"', "must be an octal mode string"),            # no setuid, setgid or sticky bits
    ('"0440"', "the owner must keep read and write"),
    ('"0660"', "only the owner may write"),
    ('"0646"', "only the owner may write"),
])
def test_reports_file_mode_refused_on_load(tmp_path: Path, value: str, message: str):
    p = tmp_path / "supervise.toml"
    p.write_text(f"[reports]\nfile_mode = {value}\n", encoding="utf-8")
    with pytest.raises(WorkspaceError, match=message):
        load_settings(p)


def test_the_workspace_schedule_is_the_one_that_runs(tmp_path: Path):
    home = tmp_path / "ws"
    CliRunner().invoke(cli, ["--home", str(home), "init"])
    schedule = home / "jobs" / "schedule.toml"
    assert "[[jobs]]" in schedule.read_text(encoding="utf-8")
    before = CliRunner().invoke(cli, ["--home", str(home), "crontab", "--executable", "/usr/bin/supervise"])
    assert " collect" in before.output
    # The bureau collects every 20 minutes instead of hourly: the crontab follows the workspace copy.
    text = schedule.read_text(encoding="utf-8")
    collect = text.index('name = "collect"')
    cron_at = text.index("cron = ", collect)
    line_end = text.index("\n", cron_at)
    schedule.write_text(text[:cron_at] + 'cron = "*/20 * * * *"' + text[line_end:], encoding="utf-8")
    after = CliRunner().invoke(cli, ["--home", str(home), "crontab", "--executable", "/usr/bin/supervise"])
    assert after.exit_code == 0, after.output
    assert any(line.startswith("*/20 * * * * ") and " collect" in line for line in after.output.splitlines())
    CliRunner().invoke(cli, ["--home", str(home), "init"])  # init keeps the edit
    assert 'cron = "*/20 * * * *"' in schedule.read_text(encoding="utf-8")


def test_a_workspace_template_overrides_the_shipped_one(tmp_path: Path):
    from supervise.templating import environment

    home = tmp_path / "ws"
    CliRunner().invoke(cli, ["--home", str(home), "init"])
    override = home / "reports" / "templates"
    override.mkdir(parents=True)
    (override / "_texts.html").write_text("<p>本局自定义的附注</p>\n", encoding="utf-8")
    mine = environment(override)
    assert mine.get_template("_texts.html").render() == "<p>本局自定义的附注</p>\n"
    # The others still come from the shipped folder, and a workspace without overrides is untouched.
    assert "bulletin.html" in mine.list_templates()
    assert Path(mine.get_template("bulletin.html").filename or "").parent == ROOT / "reports" / "templates"
    assert "本局自定义" not in (ROOT / "reports" / "templates" / "_texts.html").read_text(encoding="utf-8")
    assert Path(environment(None).get_template("_texts.html").filename or "").parent == ROOT / "reports" / "templates"
