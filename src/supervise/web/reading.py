"""What the pages show, read through the same library functions as the CLI: the status document
of `supervise status --json`, the versions of `supervise history`, the store's reads of values
and problems. Plain data out; no Flask here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..periods import TZ, Deadlines, Month, Period, PeriodError, Quarter, parse_period
from ..records import ProblemRow, Value
from ..workspace import Workspace

VERDICT_LABELS = {"accepted": "已受理", "warning": "有提示", "rejected": "退回"}
UNCHANGED_LABEL = "未变化"
VERSION_STATE_LABELS = {"current": "有效", "superseded": "已被替代", "rejected": "校验未通过", "returned": "已退回"}


def parse_report_period(text: str | None, *, kinds: tuple[str, ...] = ("month", "quarter")) -> Period | None:
    """A period from a query string (2025-03, 2025Q1, 2025), or None if it is not one of `kinds`."""
    if not text:
        return None
    try:
        p = parse_period(text.strip())
    except (PeriodError, ValueError):
        return None
    return p if p.kind in kinds else None


def status_document(ws: Workspace, period: Period, now: datetime) -> dict[str, Any]:
    """The `supervise status --json` document of a period, as it stands at `now`."""
    from ..jobs.reporting import status_report

    conn = ws.connect()
    try:
        return dict(status_report(conn, ws.registry, period, ws.settings.deadlines, now))
    finally:
        conn.close()


def county_row(doc: dict[str, Any], county_code: str) -> dict[str, Any] | None:
    return next((c for c in doc["counties"] if c["county_code"] == county_code), None)


@dataclass(frozen=True)
class OpenPeriod:
    """A period a county may report now, with its deadline and how many days are left."""

    period: Month | Quarter
    deadline_text: str
    days_left: int          # negative: days past the deadline
    ended: bool             # whether the period itself is over (a file for it can be sent)

    @property
    def key(self) -> str:
        return str(self.period)

    @property
    def when_text(self) -> str:
        if not self.ended:
            return "报告期尚未结束"
        if self.days_left > 0:
            return f"剩余 {self.days_left} 天"
        if self.days_left == 0:
            return "今天截止"
        return f"已过截止 {-self.days_left} 天"


def open_periods(deadlines: Deadlines, now: datetime) -> list[OpenPeriod]:
    """The month and quarter being reported now, and the two months and the quarter before
    (late data and corrections are still taken), newest first."""
    month = deadlines.open_period("month", now)
    quarter = deadlines.open_period("quarter", now)
    assert isinstance(month, Month) and isinstance(quarter, Quarter)
    periods: list[Month | Quarter] = [month, month.previous(), month.previous().previous(), quarter, quarter.previous()]
    today = now.astimezone(TZ).date()
    return [OpenPeriod(p, deadlines.deadline_text(p), (deadlines.due_day(p) - today).days, today > p.last_day())
            for p in periods]


def period_choices(now: datetime, years: int = 2) -> list[tuple[str, str]]:
    """Months and quarters of this year and the ones before, newest first: (key, label)."""
    out: list[tuple[str, str]] = []
    for year in range(now.year, now.year - years - 1, -1):
        for m in range(12, 0, -1):
            out.append((str(Month(year, m)), Month(year, m).label))
        for q in range(4, 0, -1):
            out.append((str(Quarter(year, q)), Quarter(year, q).label))
    return out


def history_document(ws: Workspace, county_code: str, period: Period) -> dict[str, Any]:
    """The `supervise history --json` document."""
    from ..intake import history

    return history(ws, county_code, period)


def returns_in(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The 退回s (with their reasons) in a history document, oldest first."""
    return [a for a in doc["audit"] if a["action"] == "reject"]


@dataclass(frozen=True)
class ValueRow:
    cluster_code: str
    cluster_name: str
    indicator: str
    label: str
    unit: str
    value: Value
    previous: Value
    changed: bool


@dataclass
class SubmissionView:
    """One version of a county's submission: its record, values, problems and what changed
    against the accepted version before it."""

    version: dict[str, Any]
    previous: dict[str, Any] | None
    values: list[ValueRow]
    errors: list[ProblemRow]
    warnings: list[ProblemRow]
    returns: list[dict[str, Any]]

    @property
    def changed(self) -> int:
        return sum(1 for v in self.values if v.changed)


def submission_view(ws: Workspace, county_code: str, period: Period, submission_id: int) -> SubmissionView | None:
    """The version `submission_id` of this county and period, or None if it is not one of them."""
    from ..store import submissions as subs

    doc = history_document(ws, county_code, period)
    versions = doc["versions"]
    index = next((i for i, v in enumerate(versions) if v["submission_id"] == submission_id), None)
    if index is None:
        return None
    version = versions[index]
    previous = next((v for v in reversed(versions[:index]) if v["verdict"] != "rejected"), None)
    conn = ws.connect()
    try:
        values = subs.values_of(conn, submission_id)
        old = subs.values_of(conn, previous["submission_id"]) if previous is not None else {}
        problems = subs.problems_of(conn, submission_id)
    finally:
        conn.close()
    reg = ws.registry
    order = {ind.code: i for i, ind in enumerate(reg.indicators_of(period.dataset))} if isinstance(
        period, (Month, Quarter)) else {}
    rows = []
    for cluster in sorted(set(values) | set(old)):
        new_row, old_row = values.get(cluster, {}), old.get(cluster, {})
        for code in sorted(set(new_row) | set(old_row), key=lambda c: (order.get(c, len(order)), c)):
            ind = reg.indicators.get(code)
            cl = reg.clusters.get(cluster)
            new, was = new_row.get(code), old_row.get(code)
            rows.append(ValueRow(cluster, cl.name if cl else "", code, ind.label if ind else code,
                                 ind.unit if ind else "", new, was, previous is not None and new != was))
    returns = [a for a in returns_in(doc) if a["submission_id"] == submission_id]
    return SubmissionView(version, previous, rows, [p for p in problems if p.severity == "error"],
                          [p for p in problems if p.severity != "error"], returns)


def value_text(value: Value) -> str:
    """A stored value as a person reads it: 1,234.5; text as it is; — for none."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.4f}".rstrip("0").rstrip(".")


def problem_where(p: ProblemRow) -> str:
    """Sheet!cell / cluster / indicator, as the ingest JSON writes `where`."""
    place = f"{p.sheet}!{p.cell}" if p.sheet and p.cell else (p.cell or p.sheet or "文件")
    return " / ".join(x for x in (place, p.cluster_code, p.indicator) if x)


# ------------------------------------------------------------------ bulletins

BULLETIN_SUFFIXES = (".html", ".xlsx", ".docx", ".pdf", ".json")
_PERIOD_DIR = re.compile(r"^\d{4}(-\d{2}|Q[1-4])?$")


@dataclass(frozen=True)
class BulletinFile:
    name: str
    size: int
    modified: datetime

    @property
    def kind(self) -> str:
        return {".html": "网页", ".xlsx": "Excel", ".docx": "Word", ".pdf": "PDF", ".json": "结果数据"}.get(
            Path(self.name).suffix, "文件")


def bulletin_periods(ws: Workspace) -> dict[str, list[BulletinFile]]:
    """reports/<period>/ folders and their files, newest period first (the templates folder and
    anything not a plain file of a known kind left out)."""
    out: dict[str, list[BulletinFile]] = {}
    root = ws.reports_dir
    if not root.is_dir():
        return out
    for folder in sorted(root.iterdir(), key=lambda p: p.name, reverse=True):
        if not _PERIOD_DIR.match(folder.name) or folder.is_symlink() or not folder.is_dir():
            continue
        files = []
        for f in sorted(folder.iterdir(), key=lambda p: p.name):
            if f.name.startswith(".") or f.is_symlink() or not f.is_file() or f.suffix not in BULLETIN_SUFFIXES:
                continue
            st = f.stat()
            files.append(BulletinFile(f.name, st.st_size, datetime.fromtimestamp(st.st_mtime, TZ)))
        if files:
            out[folder.name] = files
    return out


def bulletin_file(ws: Workspace, period: str, name: str) -> Path | None:
    """The file `name` of reports/<period>/, only if the listing holds it (no path is built from
    what the request says before it is found there)."""
    files = bulletin_periods(ws).get(period)
    if not files or name not in {f.name for f in files}:
        return None
    path = ws.reports_dir / period / name
    try:
        if path.resolve().parent != (ws.reports_dir / period).resolve() or path.is_symlink():
            return None
    except OSError:
        return None
    return path


def period_label(key: str) -> str:
    try:
        return parse_period(key).label
    except (PeriodError, ValueError):
        return key

