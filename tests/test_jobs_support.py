"""Small stand-ins for intake, assessment and bulletins, passed to the jobs as `Steps`.

Their "inputs" are a JSON file in the workspace (`fake_scores.json`, county code -> score), so
a test (or a subprocess) changes the data by writing that file. Also runnable as
`python -m tests.test_jobs_support run HOME PERIOD` for crash and race tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from supervise.bulletin.build import bulletin_subject
from supervise.intake.results import FileResult, IngestReport
from supervise.jobs import Steps
from supervise.jobs.render import BulletinOutputs, EditionOf, content_hash
from supervise.periods import TZ, Period, parse_period
from supervise.status import CountyStatus
from supervise.workspace import Workspace

NOW = datetime(2025, 4, 6, 8, 0, tzinfo=TZ)
SCORES = {"130983": 91.5, "130982": 88.0, "130981": 75.25}
NAMES = {"130983": "黄骅市", "130982": "任丘市", "130981": "泊头市"}


@dataclass
class FakeResult:
    """What the jobs read of an AssessmentResult: rulebook, version, period, inputs_hash, to_json."""

    rulebook: str
    version: str
    period: str
    scores: dict[str, float]
    data: str = "monthly"
    data_period: str = ""
    assessable: bool = True      # there was enough to rank on (assess.coverage)
    reasons: tuple[str, ...] = ()

    @property
    def inputs_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.scores, sort_keys=True).encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        ranked = sorted(self.scores.items(), key=lambda kv: (-kv[1], kv[0]))
        return {
            "rulebook": self.rulebook,
            "version": self.version,
            "period": self.period,
            "ranking": [
                {"county_code": c, "county_name": NAMES.get(c, c), "score": s, "rank": i,
                 "points": {"revenue_growth": s}, "deductions": 0}
                for i, (c, s) in enumerate(ranked, start=1)
            ],
            "ledger": [],
            "net": {},
            "inputs_hash": self.inputs_hash,
        }


def write_scores(ws: Workspace, scores: dict[str, float]) -> None:
    (ws.home / "fake_scores.json").write_text(json.dumps(scores), encoding="utf-8")


def write_clusters(ws: Workspace, rows: dict[str, float]) -> None:
    """The bulletin's cluster table (cluster name -> 营业收入): printed, but read by no rulebook."""
    (ws.home / "fake_clusters.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")


def fake_collect(ws: Workspace, *, now: datetime) -> IngestReport:
    files = []
    for f in sorted(ws.inbox_dir.rglob("*")):
        if f.is_file():
            files.append(FileResult(f.name, verdict="accepted"))
            f.unlink()
    return IngestReport(files)


def fake_assess(ws: Workspace, period: Period, *, now: datetime) -> list[FakeResult]:
    path = ws.home / "fake_scores.json"
    scores = json.loads(path.read_text(encoding="utf-8")) if path.exists() else dict(SCORES)
    return [FakeResult("cz-monthly", "2025.1", str(period), scores)]


def _atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def fake_render(ws: Workspace, period: Period, results: list[FakeResult], *, now: datetime,
                edition_of: EditionOf | None = None) -> BulletinOutputs:
    """Like render_bulletins: deterministic files, and a content hash over their bytes; with
    `edition_of`, its version and correction printed at the top of the page, 【更正】 in the subject."""
    from openpyxl import Workbook

    from supervise.bulletin.excel import workbook_bytes

    folder = ws.report_dir(period)
    folder.mkdir(parents=True, exist_ok=True)
    title = f"关于{period.label}全市县域特色产业集群发展情况的通报"
    doc = {"period": str(period), "assessments": [r.to_json() for r in results]}
    clusters_path = ws.home / "fake_clusters.json"
    clusters = json.loads(clusters_path.read_text(encoding="utf-8")) if clusters_path.exists() else {}
    wb = Workbook()
    sheet = wb.active
    sheet.title = "排名"
    sheet.append(["县（市、区）", "得分", "名次"])
    for row in doc["assessments"][0]["ranking"]:
        sheet.append([row["county_name"], row["score"], row["rank"]])
    wb.properties.created = wb.properties.modified = datetime(2025, 1, 1)
    rows = "".join(
        f"<tr><td>{r['rank']}</td><td>{r['county_name']}</td><td>{r['score']}</td></tr>"
        for r in doc["assessments"][0]["ranking"]
    )
    table = "".join(f"<tr><td>{name}</td><td>{value}</td></tr>" for name, value in sorted(clusters.items()))
    page = (f"<html><head><title>{title}</title></head><body><h1>{title}</h1><table>{rows}</table>"
            f"<table>{table}</table></body></html>")
    draft = content_hash({"html": page.encode(), "json": json.dumps(doc, sort_keys=True).encode()})
    edition = edition_of(draft) if edition_of is not None else None
    subject = title
    if edition is not None:
        doc["bulletin_version"] = edition.version
        page = page.replace("<body>", f"<body><p>第{edition.version}版</p>"
                            + "".join(f"<p>{line}</p>" for line in edition.changes))
        subject = bulletin_subject(title, edition)
    out = {
        "xlsx": folder / f"bulletin-{period}.xlsx",
        "html": folder / f"bulletin-{period}.html",
        "email": folder / f"bulletin-{period}.email.html",
        "json": folder / f"bulletin-{period}.json",
    }
    doc["outputs"] = {"xlsx": str(out["xlsx"]), "html": str(out["html"]), "json": str(out["json"])}
    files = {"xlsx": workbook_bytes(wb),  # byte-stable, like the real workbook
             "html": page.encode(), "email": page.encode(),
             "json": json.dumps(doc, ensure_ascii=False, sort_keys=True).encode()}
    for name, data in files.items():
        _atomic(out[name], data)
    return BulletinOutputs(
        xlsx=out["xlsx"], html=out["html"], email_html=out["email"], json=out["json"], title=title,
        xlsx_name=f"{title}.xlsx", html_name=f"{title}.html", content_hash=content_hash(files),
        subject=subject, version=edition.version if edition else 0, draft_hash=draft,
        correction=edition.changes if edition else (),
    )


def fake_status_from(states: dict[str, str]) -> Any:
    """reporting_status for every assessed county: the given state, else on_time."""

    def status(conn: Any, registry: Any, period: Period, deadlines: Any) -> list[CountyStatus]:
        return [
            CountyStatus(c.code, c.name, states.get(c.code, "on_time"), received_at=None,
                         reason="数据校验未通过，待重新报送" if states.get(c.code) == "rejected" else "")
            for c in registry.assessed_counties()
        ]

    return status


FAKE_STEPS = Steps(collect_inbox=fake_collect, run_assessments=fake_assess, render_bulletins=fake_render)


def main(argv: list[str]) -> int:
    """`run HOME PERIOD [--no-deliver] [--real]`: one period run at NOW, as its own process.

    With --real the run uses the real intake, assessment and bulletins instead of the fakes.
    """
    import logging

    from supervise.jobs import JobFailed, LockBusy, run_period
    from supervise.jobs.tasks import DEFAULT_STEPS

    logging.basicConfig(stream=sys.stderr, level=logging.INFO)
    _cmd, home, period = argv[:3]
    try:
        result = run_period(Workspace(home), parse_period(period), now=NOW, deliver="--no-deliver" not in argv,
                            steps=DEFAULT_STEPS if "--real" in argv else FAKE_STEPS, wait=float(os.environ.get("LOCK_WAIT", "0")))
    except (JobFailed, LockBusy) as exc:
        print(f"错误 / error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result.to_json(), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
