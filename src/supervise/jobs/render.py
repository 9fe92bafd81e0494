"""Render a period's bulletins into the workspace: reports/<period>/ (xlsx, html, the 通报 as Word
and PDF, e-mail html, JSON).

Everything is produced in memory first, then each file is written to a temporary name in the
same folder, fsync'd and renamed over the old one: a crash leaves the previous file or the new
one, never half a bulletin. The output depends only on the inputs (the date printed is the
first result's `issued_at`, else `now`), so a re-run gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ..assess.model import AssessmentResult
from ..bulletin.build import Values, build_bulletin, with_edition
from ..bulletin.docx import write_docx
from ..bulletin.edition import draft_hash
from ..bulletin.excel import write_workbook
from ..bulletin.html import render_email, render_email_text, render_page
from ..bulletin.model import Bulletin, Edition
from ..bulletin.official import DocumentHead
from ..bulletin.pdf import write_pdf
from ..periods import TZ, Month, Period, Quarter, data_period, parse_period
from ..workspace import BulletinSettings, Workspace, atomic_write
from .reads import PeriodReads
from .results import previous_result

__all__ = ["BulletinOutputs", "EditionOf", "atomic_write", "content_hash", "render_bulletins"]

# Which version a bulletin is, given what it says (its draft hash): the caller's (jobs.tasks) to
# decide, since the versions published are the store's.
EditionOf = Callable[[str], Edition]

GOAL_LOOKBACK_QUARTERS = 8
# A preview's files sit beside the bulletin's, never over them: bulletin-2026-12-provisional.html.
PREVIEW_SUFFIX = "-provisional"


@dataclass(frozen=True)
class BulletinOutputs:
    xlsx: Path
    html: Path
    email_html: Path
    json: Path
    title: str                 # 关于2025年3月全市县域特色产业集群发展情况的通报
    xlsx_name: str             # the attachment names, in Chinese
    html_name: str
    content_hash: str          # SHA-256 of every file written: same hash = the same bulletin
    subject: str = ""          # the mail's subject ("" = the title): 【更正】…（第2版）for a correction
    version: int = 0           # the published version (第1版 = 1); 0 for a preview
    draft_hash: str = ""       # what it says, without the edition marks (the versions' key)
    correction: tuple[str, ...] = field(default=())  # what a correction changed; () for the first
    email_text: str = ""       # the mail's plain-text part, from the same model as email_html
    docx: Path | None = None   # the 通报 as an official document: Word to edit and sign …
    pdf: Path | None = None    # … and PDF to circulate
    attach: tuple[str, ...] = ("xlsx", "html")   # what the mail attaches ([bulletin] attach), in order

    @property
    def attachment_names(self) -> dict[str, str]:
        """Each file's name in the mail, in Chinese: the workbook's, with its own suffix."""
        stem = self.xlsx_name.removesuffix(".xlsx")
        return {"xlsx": self.xlsx_name, "html": self.html_name, "docx": f"{stem}.docx", "pdf": f"{stem}.pdf"}

    @property
    def files(self) -> dict[str, Path]:
        """The bulletin's files by kind (xlsx, html, docx, pdf; those written)."""
        out = {"xlsx": self.xlsx, "html": self.html}
        for kind, path in (("docx", self.docx), ("pdf", self.pdf)):
            if path is not None:
                out[kind] = path
        return out

    @property
    def attachments(self) -> list[tuple[Path, str]]:
        """(file, name to attach it as) for the mailer, as `[bulletin] attach` lists them."""
        files, names = self.files, self.attachment_names
        return [(files[kind], names[kind]) for kind in self.attach if kind in files]


# --------------------------------------------------------------------------- files


def content_hash(files: dict[str, bytes]) -> str:
    """What a bulletin says, as the recipient gets it: one SHA-256 over its files' bytes.

    Rendering is deterministic, so the same inputs give the same hash; any change in what is
    printed (results, cluster tables, goals, texts, reporting status) gives another.
    """
    h = hashlib.sha256()
    for name in sorted(files):
        data = files[name]
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


# --------------------------------------------------------------------------- inputs


def _merge(*parts: Values) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for part in parts:
        for county, clusters in part.items():
            for cluster, values in clusters.items():
                out.setdefault(county, {}).setdefault(cluster, {}).update(values)
    return out


def data_periods(period: Period) -> list[Period]:
    """The submissions a period's bulletin reads: a month; a quarter's quarterly update plus its
    last month; a year's Q4 update plus December."""
    if isinstance(period, Month):
        return [period]
    if isinstance(period, Quarter):
        return [period.last_month(), period]
    return [period.december(), period.q4()]


def judged_period(period: Period, results: list[AssessmentResult]) -> Period:
    """Whose reporting the bulletin judges: the submissions its first rulebook read (without
    results, the period's own: a month, a quarter's update, a year's Q4 update)."""
    if results and results[0].data_period:
        return parse_period(results[0].data_period)
    dataset = results[0].data if results else ("monthly" if isinstance(period, Month) else "quarterly")
    return data_period(period, dataset)


def latest_quarterly(conn: sqlite3.Connection, period: Period, reads: PeriodReads) -> tuple[str, Values]:
    """The most recent quarterly update on record, at or before the period's quarter."""
    q = period.quarter() if isinstance(period, Month) else period if isinstance(period, Quarter) else period.q4()
    for _ in range(GOAL_LOOKBACK_QUARTERS):
        values = reads.values(conn, q)
        if values:
            return q.label, values
        q = q.previous()
    return "", {}


def document_head(b: Bulletin, settings: BulletinSettings) -> DocumentHead:
    """What `[bulletin]` prints on the Word and PDF 通报: 版头 and 文号 (its 发文顺序号 left blank
    for the office to fill in before signing), 主送, 版记."""
    return DocumentHead.of(b, issuer=settings.issuer, number=settings.number, addressee=settings.addressee,
                           printed_by=settings.printed_by, cc=settings.cc)


def issued_date(results: list[AssessmentResult], now: datetime) -> date:
    for r in results[:1]:
        if r.issued_at:
            dt = datetime.fromisoformat(r.issued_at)
            return (dt.astimezone(TZ) if dt.tzinfo else dt).date()
    return (now.astimezone(TZ) if now.tzinfo else now).date()


# --------------------------------------------------------------------------- render


def render_bulletins(
    ws: Workspace,
    period: Period,
    results: list[AssessmentResult],
    *,
    now: datetime,
    preview: str = "",
    edition_of: EditionOf | None = None,
) -> BulletinOutputs:
    """Build the period's bulletin from the workspace and write its files atomically: the
    workbook, the page, the 通报 as Word and PDF, the mail's page and the results JSON.

    Submissions that the assessment of these results already read (`jobs.assessment.Assessed`)
    are not read again. A `preview` (its mark, e.g. 预览（未到报送截止时间）) is printed on every
    page and written beside the bulletin as `bulletin-<period>-provisional.*`, never over it.
    `edition_of` numbers a bulletin for delivery: given what it says (the draft hash), it
    answers which version this is and what it corrects, printed on every file; without it (a
    preview) no version is printed. Files are written with `[reports] file_mode`."""
    p = period
    reads = getattr(results, "reads", None) or PeriodReads(ws.registry, ws.settings.deadlines)
    conn = ws.connect()
    try:
        statuses = reads.statuses(conn, judged_period(p, results))
        values = _merge(*(reads.values(conn, d) for d in data_periods(p)))
        goal_period, goal_values = latest_quarterly(conn, p, reads)
        previous = {r.rulebook: previous_result(conn, r.rulebook, p) for r in results}
    finally:
        conn.close()

    bulletin = build_bulletin(
        registry=ws.registry,
        issuer=ws.settings.bureau.issuer,
        city=ws.settings.bureau.city,
        period=p,
        results=results,
        previous=previous,
        statuses=statuses,
        values=values,
        goal_values=goal_values,
        goal_period=goal_period,
        issued=issued_date(results, now),
        preview=preview,
    )
    folder = Path(ws.report_dir(p))
    key = str(p)
    suffix = PREVIEW_SUFFIX if preview else ""
    paths = {
        "xlsx": folder / f"bulletin-{key}{suffix}.xlsx",
        "html": folder / f"bulletin-{key}{suffix}.html",
        "docx": folder / f"bulletin-{key}{suffix}.docx",
        "pdf": folder / f"bulletin-{key}{suffix}.pdf",
        "email": folder / f"email-{key}{suffix}.html",
        "json": folder / f"results-{key}{suffix}.json",
    }
    doc: dict[str, Any] = {
        "period": key,
        "title": bulletin.title,
        "provisional": bool(preview),
        **({"preview": preview} if preview else {}),
        "assessments": [r.to_json() for r in results],
        "outputs": {kind: str(paths[kind]) for kind in ("xlsx", "html", "docx", "pdf", "json", "email")},
    }
    draft = ""
    if edition_of is not None and not preview:
        draft = draft_hash(bulletin, doc)
        bulletin = with_edition(bulletin, edition_of(draft))
        doc["bulletin_version"] = bulletin.version
        doc["correction"] = list(bulletin.correction)
    xlsx = write_workbook(bulletin)
    page = render_page(bulletin, ws.templates_dir).encode("utf-8")
    head = document_head(bulletin, ws.settings.bulletin)
    docx = write_docx(bulletin, head=head)
    pdf = write_pdf(bulletin, head=head, templates=ws.templates_dir)
    email = render_email(bulletin, ws.templates_dir).encode("utf-8")
    text = json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
    files = {"xlsx": xlsx, "html": page, "docx": docx, "pdf": pdf, "email": email, "json": text.encode("utf-8")}
    mode = ws.settings.reports.file_mode
    for name, data in files.items():
        atomic_write(paths[name], data, mode=mode)
    return BulletinOutputs(
        xlsx=paths["xlsx"],
        html=paths["html"],
        email_html=paths["email"],
        json=paths["json"],
        title=bulletin.title,
        xlsx_name=bulletin.xlsx_name,
        html_name=bulletin.html_name,
        docx=paths["docx"],
        pdf=paths["pdf"],
        content_hash=content_hash(files),
        subject=bulletin.subject,
        version=bulletin.version,
        draft_hash=draft,
        correction=tuple(bulletin.correction),
        email_text=render_email_text(bulletin, ws.templates_dir),
        attach=ws.settings.bulletin.attach,
    )
