"""Intake by mail against intake from the inbox: the same N county files, one message each.

For each N it builds one workspace (`supervise init`, a registry of N counties × 3 clusters
whose `email` column gives each county an address, `supervise templates`, every template filled
with openpyxl as bench_scale.py does), then copies it twice:

- inbox: the files dropped into `inbox/<county_code>/`; timed: `supervise ingest --json`.
- mail: each file appended to a Dovecot mailbox on 127.0.0.1 as one message from its county's
  address (a real MIME message, the file attached in base64, a Chinese file name), with `[imap]`
  pointing at it and `[smtp]` at an aiosmtpd server on 127.0.0.1 that accepts the replies;
  timed: `supervise collect --json` (fetch, archive, ingest each message through `ingest_files`,
  queue and send each county's reply, move every message to done_folder).

Both are whole processes; peak RSS is the largest of the command's processes (the reader
workers included). The run checks that both stored the same verdicts and values, that every
county got one reply and that INBOX is empty.

    python benchmarks/bench_mail.py --counties 200 2844 --root /tmp/bench-mail
    python benchmarks/bench_mail.py --counties 2844 --profile      # where the mail path's time goes
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from bench_scale import MONTH, fill, run_timed, write_registry  # noqa: E402

from tests.imap_server import PASSWORD, Dovecot, dovecot_executable  # noqa: E402
from tests.smtp_server import SmtpServer  # noqa: E402

XLSX = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
TZ8 = timezone(timedelta(hours=8))


def address(code: str) -> str:
    return f"tongji{code}@county{code[-2:]}.example"


def with_emails(home: Path) -> None:
    path = home / "reference" / "counties.csv"
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    for r in rows:
        r["email"] = address(r["county_code"])
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def build(n: int, root: Path, supervise: str) -> tuple[Path, list[tuple[str, Path]]]:
    """A workspace of N counties and each county's filled file (kept outside the workspace)."""
    base = root / f"n{n}-base"
    files_dir = root / f"n{n}-files"
    if base.exists() and files_dir.exists():
        files = sorted((p.name.split("-", 1)[0], p) for p in files_dir.iterdir())
        return base, files
    shutil.rmtree(base, ignore_errors=True)
    shutil.rmtree(files_dir, ignore_errors=True)
    env = dict(os.environ, SUPERVISE_HOME=str(base))
    subprocess.run([supervise, "init"], env=env, check=True, capture_output=True)
    write_registry(base, n)
    with_emails(base)
    _, _, out = run_timed([supervise, "templates", "--month", MONTH, "--json"], env)
    files_dir.mkdir(parents=True)
    rng = random.Random(n)
    files = []
    for t in json.loads(out)["templates"]:
        dest = files_dir / f"{t['county_code']}-{Path(t['path']).name}"
        fill(Path(t["path"]), dest, rng)
        files.append((t["county_code"], dest))
    shutil.rmtree(base / "outbox" / "templates", ignore_errors=True)
    return base, sorted(files)


def message(code: str, path: Path, i: int) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = f"县统计局 <{address(code)}>"
    msg["To"] = "baosong@bureau.example"
    msg["Subject"] = f"{MONTH} 月报"
    msg["Message-ID"] = f"<bench-{code}-{i}@county.example>"
    msg.set_content("请查收本月报表。")
    msg.add_attachment(path.read_bytes(), maintype=XLSX[0], subtype=XLSX[1], filename=f"{code}县{MONTH}月报.xlsx")
    return msg.as_bytes()


def fill_mailbox(dovecot: Dovecot, user: str, files: list[tuple[str, Path]]) -> float:
    """Append one message per file, arrival times a minute apart on 3 April (on time)."""
    start = datetime(2025, 4, 3, 8, 0, tzinfo=TZ8)
    t0 = time.perf_counter()
    client = dovecot.client(user)
    try:
        for i, (code, path) in enumerate(files):
            client.append("INBOX", message(code, path, i), msg_time=start + timedelta(seconds=20 * i))
    finally:
        client.logout()
    return time.perf_counter() - t0


def settings(dovecot: Dovecot, user: str, smtp: SmtpServer) -> str:
    return (
        f'[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsender = "bulletin@bureau.example"\ntimeout_seconds = 30\n\n'
        f'[delivery]\nadmin = "admin@bureau.example"\nattempts = 1\nretry_delay_seconds = 0\n\n'
        f'[imap]\nhost = "127.0.0.1"\nport = {dovecot.port}\nusername = "{user}"\npassword = "{PASSWORD}"\n'
        f"ssl = false\ntimeout_seconds = 120\n"
    )


def stored(home: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(home / "supervise.db")
    try:
        return conn.execute(
            "SELECT s.county_code, s.verdict, s.n_values, SUM(v.value) FROM submissions s "
            "LEFT JOIN submission_values v ON v.submission_id = s.id GROUP BY s.id ORDER BY s.county_code").fetchall()
    finally:
        conn.close()


def bench(n: int, root: Path, supervise: str, dovecot: Dovecot, profile: bool) -> dict[str, object]:
    base, files = build(n, root, supervise)
    assert len(files) == n

    inbox_home = root / f"n{n}-inbox"
    shutil.rmtree(inbox_home, ignore_errors=True)
    shutil.copytree(base, inbox_home)
    for code, path in files:
        box = inbox_home / "inbox" / code
        box.mkdir(parents=True, exist_ok=True)
        dest = box / f"{code}县{MONTH}月报.xlsx"
        shutil.copyfile(path, dest)
        os.utime(dest, (time.time() - 60, time.time() - 60))
    t_inbox, rss_inbox, out = run_timed([supervise, "--home", str(inbox_home), "ingest", "--json"])
    inbox_doc = json.loads(out)
    assert inbox_doc["summary"]["accepted"] == n, inbox_doc["summary"]

    smtp = SmtpServer()
    smtp.start()
    try:
        mail_home = root / f"n{n}-mail"
        shutil.rmtree(mail_home, ignore_errors=True)
        shutil.copytree(base, mail_home)
        user = dovecot.add_user()
        t_append = fill_mailbox(dovecot, user, files)
        (mail_home / "supervise.toml").write_text(settings(dovecot, user, smtp), encoding="utf-8")
        if profile:
            return profile_collect(mail_home)
        t_mail, rss_mail, out = run_timed([supervise, "--home", str(mail_home), "collect", "--json"])
        doc = json.loads(out)
        messages = doc["mail"]
        assert len(messages) == n and all(m["state"] == "ingested" for m in messages)
        assert sum(1 for m in messages for f in m["files"] if f["verdict"] == "accepted") == n
        assert stored(mail_home) == stored(inbox_home), "mail and inbox stored different data"
        replies = sum(1 for d in doc["deliveries"] if d["kind"] == "mail_reply" and d["state"] == "sent")
        assert replies == n and len(smtp.received) == n, (replies, len(smtp.received))
        assert dovecot.messages(user) == {}
    finally:
        smtp.stop()
    return {
        "counties": n,
        "messages": n,
        "append_s": round(t_append, 2),
        "inbox_ingest_s": round(t_inbox, 2),
        "inbox_ingest_rss_mb": round(rss_inbox),
        "mail_collect_s": round(t_mail, 2),
        "mail_collect_rss_mb": round(rss_mail),
        "mail_over_inbox": round(t_mail / t_inbox, 2),
        "mail_ms_per_message": round(t_mail / n * 1000, 1),
        "inbox_ms_per_file": round(t_inbox / n * 1000, 1),
    }


def profile_collect(home: Path) -> dict[str, object]:
    """Run the collect in this process under cProfile; print where the time went."""
    import cProfile
    import pstats

    from supervise.jobs import collect
    from supervise.periods import TZ
    from supervise.workspace import Workspace

    ws = Workspace(home)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    collect(ws, datetime.now(TZ))
    prof.disable()
    wall = time.perf_counter() - t0
    stats = pstats.Stats(prof)
    stats.sort_stats("cumulative").print_stats(
        r"(mailbox|ingest|delivery|store/mail|imapclient/imapclient|sandbox|validate|workspace)\.py", 40)
    return {"profiled_collect_s": round(wall, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counties", type=int, nargs="+", default=[200, 2844])
    ap.add_argument("--root", type=Path, default=Path("bench-mail"))
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    ap.add_argument("--profile", action="store_true", help="profile the mail collect in-process instead")
    args = ap.parse_args()
    exe = dovecot_executable()
    if exe is None:
        raise SystemExit("Dovecot is needed (apt-get install dovecot-imapd)")
    supervise = shutil.which("supervise") or str(Path(sys.executable).with_name("supervise"))
    args.root.mkdir(parents=True, exist_ok=True)
    dovecot = Dovecot(exe)
    dovecot.start()
    rows = []
    try:
        for n in args.counties:
            row = bench(n, args.root.resolve(), supervise, dovecot, args.profile)
            rows.append(row)
            print(json.dumps(row, ensure_ascii=False), flush=True)
    finally:
        dovecot.stop()
    if args.out:
        args.out.write_text(json.dumps(rows, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
