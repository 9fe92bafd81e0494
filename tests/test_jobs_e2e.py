"""The real pipeline (intake, assessment, bulletins) run as a job: CLI JSON, mail, kill -9."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from supervise.cli import cli
from supervise.jobs.render import content_hash
from supervise.periods import Month
from supervise.store import runs
from supervise.workspace import Workspace, init_workspace

from .smtp_server import ADMIN, RECIPIENTS, SmtpServer, configure, running_smtp


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    yield from running_smtp()


ROOT = Path(__file__).resolve().parents[1]
MARCH = Month(2025, 3)
TITLE = "关于2025年3月全市县域特色产业集群发展情况的通报"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace whose inbox holds every county's filled March template."""
    from supervise.demo import monthly_values, profiles
    from supervise.intake.templates import fill_template, write_templates

    ws = init_workspace(tmp_path_factory.mktemp("prepared") / "home")
    prof = profiles(ws.registry)
    for t in write_templates(ws, MARCH):
        code = str(t["county_code"])
        values = {c.code: monthly_values(c, prof[c.code], MARCH) for c in ws.registry.clusters_of(code)}
        (ws.inbox_dir / code).mkdir(exist_ok=True)
        fill_template(Path(str(t["path"])), values, ws.inbox_dir / code / f"{code}-{MARCH}.xlsx")
    return ws.home


@pytest.fixture
def home(prepared: Path, tmp_path: Path, smtp: SmtpServer) -> Path:
    target = tmp_path / "home"
    shutil.copytree(prepared, target)
    configure(Workspace(target), smtp)
    return target


def _digests(folder: Path, home: Path | None = None) -> dict[str, str]:
    """Each file's SHA-256; with `home`, paths inside it are written relative (to compare homes)."""
    out = {}
    for p in sorted(folder.iterdir()):
        data = p.read_bytes()
        if home is not None:
            data = data.replace(str(home).encode(), b"<home>")
        out[p.name] = hashlib.sha256(data).hexdigest()
    return out


def test_supervise_run_json_is_the_spec_document_and_a_rerun_changes_nothing(home: Path, smtp: SmtpServer) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["--home", str(home), "run", "--month", "2025-03", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["period"] == "2025-03"
    [monthly] = doc["assessments"]
    assert {"rulebook", "version", "ranking", "ledger", "net"} <= set(monthly)
    assert len(monthly["ranking"]) == 14
    assert {"county_code", "county_name", "score", "rank", "points", "deductions"} <= set(monthly["ranking"][0])
    assert min(r["rank"] for r in monthly["ranking"]) == 1
    assert set(doc["outputs"]) == {"xlsx", "html", "docx", "pdf", "json"}
    assert all(Path(p).exists() for p in doc["outputs"].values())
    assert doc["ingest"]["accepted"] == 14
    assert sorted((m["recipient"], m["state"]) for m in doc["delivery"]["mails"]) == [
        (RECIPIENTS[0], "sent"), (RECIPIENTS[1], "sent")]

    [mail] = smtp.to(RECIPIENTS[0])
    msg = mail.message
    assert msg["Subject"] == TITLE
    attachments = {p.get_filename(): p.get_content() for p in msg.iter_attachments()}
    assert set(attachments) == {f"{TITLE}.xlsx", f"{TITLE}.html", f"{TITLE}.docx", f"{TITLE}.pdf"}
    book = load_workbook(BytesIO(attachments[f"{TITLE}.xlsx"]))
    assert book.sheetnames
    assert attachments[f"{TITLE}.docx"] == Path(doc["outputs"]["docx"]).read_bytes()
    assert attachments[f"{TITLE}.pdf"] == Path(doc["outputs"]["pdf"]).read_bytes()
    assert TITLE in msg.get_body(("html",)).get_content()
    assert TITLE in msg.get_body(("plain",)).get_content()

    # The delivery key is the bulletin itself: a hash over the bytes of the files written.
    folder = home / "reports" / "2025-03"
    written = {"xlsx": "bulletin-2025-03.xlsx", "html": "bulletin-2025-03.html", "docx": "bulletin-2025-03.docx",
               "pdf": "bulletin-2025-03.pdf", "email": "email-2025-03.html", "json": "results-2025-03.json"}
    assert doc["delivery"]["content_hash"] == content_hash(
        {k: (folder / name).read_bytes() for k, name in written.items()})

    before = _digests(home / "reports" / "2025-03")
    again = runner.invoke(cli, ["--home", str(home), "run", "--month", "2025-03", "--json"])
    assert again.exit_code == 0, again.output
    redo = json.loads(again.stdout)
    assert redo["assessments"] == doc["assessments"]
    assert [m["state"] for m in redo["delivery"]["mails"]] == ["skipped", "skipped"]
    assert redo["delivery"]["content_hash"] == doc["delivery"]["content_hash"]
    assert len(smtp.received) == 2
    assert _digests(home / "reports" / "2025-03") == before
    assert doc["bulletin_version"] == redo["bulletin_version"] == 1 and redo["correction"] == []


def test_a_rerun_that_changes_nothing_says_so(home: Path, smtp: SmtpServer) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["--home", str(home), "run", "--month", "2025-03"])
    assert first.exit_code == 0, first.output
    folder = home / "reports" / "2025-03"
    assert first.stdout.splitlines() == [
        "2025-03：1 项考核",
        "  cz-monthly 2025.1：14 个单位参加排名",
        f"  Excel 通报：{folder / 'bulletin-2025-03.xlsx'}",
        f"  网页通报：{folder / 'bulletin-2025-03.html'}",
        f"  Word 公文：{folder / 'bulletin-2025-03.docx'}",
        f"  PDF 通报：{folder / 'bulletin-2025-03.pdf'}",
        f"  结果数据：{folder / 'results-2025-03.json'}",
        "  邮件：已发送 2",
    ]
    again = runner.invoke(cli, ["--home", str(home), "run", "--month", "2025-03"])
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines()[-2:] == ["  未变化：通报与上次运行时相同", "  邮件：已发送过，未重发 2"]
    collected = runner.invoke(cli, ["--home", str(home), "collect"])
    assert (collected.exit_code, collected.stdout) == (0, "收件箱：没有新文件，未变化\n")


def test_bulletin_settings_head_the_word_and_pdf_and_choose_the_attachments(home: Path, smtp: SmtpServer) -> None:
    """[bulletin]: the 版头, 文号 and 主送 printed on the Word and PDF 通报; the mail attaches what
    `attach` lists, in its order."""
    from docx import Document

    from .test_bulletin_pdf import pages

    extra = ('[bulletin]\nissuer = "沧州市工业和信息化局"\nnumber = "沧工信〔{year}〕{seq}号"\n'
             'addressee = "各县（市）工信局："\nattach = ["pdf", "xlsx"]\n')
    configure(Workspace(home), smtp, extra=extra)
    result = CliRunner().invoke(cli, ["--home", str(home), "run", "--month", "2025-03", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    [mail] = smtp.to(RECIPIENTS[0])
    assert [p.get_filename() for p in mail.message.iter_attachments()] == [f"{TITLE}.pdf", f"{TITLE}.xlsx"]

    # The 文号: the year the 通报 is issued (this run's), its 发文顺序号 left blank (two full-width
    # spaces) for the office to fill in.
    paragraphs = [p.text for p in Document(doc["outputs"]["docx"]).paragraphs]
    [issued] = [p for p in paragraphs if re.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日", p)]   # the 落款's date
    year = issued[:4]
    assert paragraphs[0] == "沧州市工业和信息化局"
    assert f"沧工信〔{year}〕　　号" in paragraphs[:5]
    title = paragraphs.index(TITLE)
    assert paragraphs[title + 2] == "各县（市）工信局："
    first = "".join(pages(Path(doc["outputs"]["pdf"]))[0].split())     # the mark is letter-spaced
    assert all(text in first for text in ("沧州市工业和信息化局", f"沧工信〔{year}〕", TITLE, "各县（市）工信局："))


def _resubmit(home: Path, code: str, factor: float) -> None:
    """The county sends its March data again, its revenue this year `factor` times what it was."""
    from supervise.demo import monthly_values, profiles
    from supervise.intake.templates import fill_template, write_templates

    ws = Workspace(home)
    prof = profiles(ws.registry)
    values = {}
    for c in ws.registry.clusters_of(code):
        row = monthly_values(c, prof[c.code], MARCH)
        values[c.code] = {**row, "revenue_ytd": round(row["revenue_ytd"] * factor, 1)}
    [t] = write_templates(ws, MARCH, code)
    (ws.inbox_dir / code).mkdir(exist_ok=True)
    fill_template(Path(str(t["path"])), values, ws.inbox_dir / code / f"{code}-{MARCH}-更正.xlsx")


def test_a_resubmission_goes_out_as_a_correction_naming_what_changed(home: Path, smtp: SmtpServer) -> None:
    runner = CliRunner()
    first = json.loads(runner.invoke(cli, ["--home", str(home), "run", "--month", "2025-03", "--json"]).stdout)
    assert first["bulletin_version"] == 1
    folder = home / "reports" / "2025-03"
    # [reports] file_mode = "0640" (the default): the service's group may read what is published.
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == {
        "bulletin-2025-03.xlsx": 0o640, "bulletin-2025-03.html": 0o640, "bulletin-2025-03.docx": 0o640,
        "bulletin-2025-03.pdf": 0o640, "email-2025-03.html": 0o640, "results-2025-03.json": 0o640}

    [last] = [r for r in first["assessments"][0]["ranking"] if r["rank"] == 14]
    _resubmit(home, last["county_code"], 1.5)
    result = runner.invoke(cli, ["--home", str(home), "run", "--month", "2025-03", "--json"])
    assert result.exit_code == 0, result.output
    second = json.loads(result.stdout)
    assert second["bulletin_version"] == 2
    assert [m["state"] for m in second["delivery"]["mails"]] == ["sent", "sent"]

    old = {r["county_code"]: r for r in first["assessments"][0]["ranking"]}
    new = second["assessments"][0]["ranking"]
    moved = [r for r in new if (r["score"], r["rank"]) != (old[r["county_code"]]["score"], old[r["county_code"]]["rank"])]
    assert last["county_code"] in {r["county_code"] for r in moved}
    title = second["assessments"][0]["title"]
    scores, ledger = second["correction"]
    assert scores.startswith(f"《{title}》得分、名次有变化的县（市）：")
    for r in new:  # each county that moved is named with its old and new score or rank, no other
        was = old[r["county_code"]]
        assert (r["county_name"] in scores) == (r in moved), r["county_name"]
        if r["score"] != was["score"]:
            assert f"{r['county_name']}得分{was['score']:.2f}→{r['score']:.2f}" in scores
        if r["rank"] != was["rank"]:
            assert f"名次第{was['rank']}名→第{r['rank']}名" in scores
    same_ledger = first["assessments"][0]["ledger"] == second["assessments"][0]["ledger"]
    assert ledger.startswith(f"《{title}》奖惩结算台账{'未变化' if same_ledger else '有变化：'}")

    [_, mail] = smtp.to(RECIPIENTS[0])
    assert mail.message["Subject"] == f"【更正】{TITLE}（第2版）"
    text = [line for line in mail.message.get_body(("plain",)).get_content().splitlines() if line]
    assert text[:4] == ["【更正】第2版", "更正：本通报为第2版，更正此前发出的第1版，请以本版为准。与第1版相比：",
                        f"1. {scores}", f"2. {ledger}"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o640 for p in folder.iterdir())

    again = json.loads(runner.invoke(cli, ["--home", str(home), "run", "--month", "2025-03", "--json"]).stdout)
    assert (again["bulletin_version"], again["correction"]) == (2, second["correction"])
    assert [m["state"] for m in again["delivery"]["mails"]] == ["skipped", "skipped"]
    assert len(smtp.to(RECIPIENTS[0])) == 2


def test_run_without_smtp_fails_loudly_and_keeps_the_mail(home: Path, smtp: SmtpServer) -> None:
    smtp.stop()
    result = CliRunner().invoke(cli, ["--home", str(home), "run", "--month", "2025-03", "--no-deliver"])
    assert result.exit_code == 0, result.output  # nothing to send: fine without a server
    result = CliRunner().invoke(cli, ["--home", str(home), "run", "--month", "2025-03"])
    assert result.exit_code == 1
    assert "not delivered, kept in the outbox" in result.stderr
    # two bulletins and the administrator's alert wait in the outbox
    assert len(list((home / "outbox" / "mail").glob("*.eml"))) == 3
    smtp.start()
    result = CliRunner().invoke(cli, ["--home", str(home), "collect", "--json"])
    assert result.exit_code == 0, result.output
    sent = sorted((m["kind"], m["state"]) for m in json.loads(result.stdout)["deliveries"])
    assert sent == [("alert", "sent"), ("bulletin", "sent"), ("bulletin", "sent")]
    assert [len(smtp.to(r)) for r in RECIPIENTS] == [1, 1]
    [alert] = smtp.to(ADMIN)  # the failure is reported once the server is back, never lost
    assert "任务失败" in alert.message["Subject"]
    assert list((home / "outbox" / "mail").glob("*.eml")) == []


def _spawn(home: Path, pause: str | None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + str(ROOT)}
    if pause:
        env["SUPERVISE_TEST_PAUSE_AT"] = pause
    return subprocess.Popen(
        [sys.executable, "-m", "tests.test_jobs_support", "run", str(home), "2025-03", "--real"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


@pytest.fixture(scope="module")
def clean_run(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict[str, str]]:
    """The March run of an undisturbed copy of the workspace: what every recovery must equal."""
    clean_home = tmp_path_factory.mktemp("clean") / "home"
    shutil.copytree(prepared, clean_home)
    configure(Workspace(clean_home), SmtpServer(), recipients=[])
    clean = _spawn(clean_home, None)
    out, err = clean.communicate(timeout=60)
    assert clean.returncode == 0, err.decode()
    return json.loads(out), _digests(clean_home / "reports" / "2025-03", clean_home)


@pytest.mark.parametrize("point", ["collected", "assessed", "rendered", "queued", "delivered_one"])
def test_killed_run_then_rerun_gives_the_same_results_and_one_mail_each(
    point: str, home: Path, clean_run: tuple[dict, dict[str, str]], smtp: SmtpServer
) -> None:
    proc = _spawn(home, point)
    marker = home / ".locks" / f"paused-{point}"
    deadline = time.monotonic() + 20
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()[1].decode()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL

    rerun = _spawn(home, None)
    out, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err.decode()
    after = json.loads(out)

    clean_doc, clean_files = clean_run
    assert after["assessments"] == clean_doc["assessments"]
    assert _digests(home / "reports" / "2025-03", home) == clean_files

    leftovers = [p for p in home.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    assert [len(smtp.to(r)) for r in RECIPIENTS] == [1, 1]
    assert not list((home / "outbox" / "mail").glob("*.eml"))
    conn = Workspace(home).connect()
    history = [r.state for r in reversed(runs.recent_runs(conn, job="run_month"))]
    conn.close()
    assert history == ["error", "success"]
