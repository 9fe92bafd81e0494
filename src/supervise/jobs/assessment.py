"""The assessment at the edge: read the workspace (rulebooks, submissions, statuses), run the pure
engine (`assess`), store the result. `run_assessments` is what `supervise run` calls; `explain` feeds
`supervise explain`.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from ..assess import AssessError
from ..assess.aggregate import county_values, year_elapsed
from ..assess.coverage import check_targets, target_names
from ..assess.engine import UnitInput, assess, inputs_hash
from ..assess.explain import explain_not_assessable, explain_unit
from ..assess.loading import load_rulebooks
from ..assess.model import AssessmentResult
from ..assess.rulebook import Rulebook
from ..periods import Period, data_period
from ..registry import unknown_county_message
from ..workspace import Workspace
from .reads import PeriodReads
from .results import find_result, save_result


class Assessed(list[AssessmentResult]):
    """The results of one run, with the store reads they were made from: the bulletin of the
    same run (`jobs.render`) reuses them instead of reading the same submissions again."""

    def __init__(self, results: list[AssessmentResult], reads: PeriodReads) -> None:
        super().__init__(results)
        self.reads = reads


def workspace_rulebooks(ws: Workspace) -> list[Rulebook]:
    """Every rulebook in the workspace's rules/ folder, validated, by id."""
    return load_rulebooks(ws.rules_dir, ws.registry.indicators)


def run_reads(ws: Workspace, as_of: datetime | None = None) -> PeriodReads:
    """A fresh cache for one run's reads of the store (see jobs.reads), states as of `as_of`."""
    return PeriodReads(ws.registry, ws.settings.deadlines, as_of=as_of)


def prepare(
    ws: Workspace, conn: sqlite3.Connection, book: Rulebook, period: Period, reads: PeriodReads | None = None
) -> AssessmentResult:
    """Read the inputs of one rulebook for one period and assess them (nothing is stored).

    Rulebooks assessed in the same run share `reads`, so each data period is read once."""
    registry = ws.registry
    reads = reads or run_reads(ws)
    dp = data_period(period, book.data)
    counties = registry.assessed_counties()
    values, raw = county_values(reads.values(conn, dp), dp, [c.code for c in counties], registry.indicators)
    statuses = {s.county_code: s for s in reads.statuses(conn, dp)}
    units = []
    for c in counties:
        st = statuses[c.code]
        has_data = st.state in ("on_time", "late") and values[c.code] is not None
        units.append(
            UnitInput(
                county_code=c.code, county_name=c.name,
                values=values[c.code] if has_data else None,
                targets=registry.targets_for(c.code, period.year).as_dict(),
                state=st.state, days_late=st.days_late, warnings=len(st.warnings),
                rejections=[{"kind": r.kind, "file": r.file, "at": r.at, "reason": r.reason}
                            for r in st.rejections],
            )
        )
    result = assess(book, str(period), str(dp), year_elapsed(dp), units,
                    min_coverage=ws.settings.assessment.min_coverage)
    result.inputs_hash = inputs_hash(book, str(period), units, raw)
    return result


def run_assessments(
    ws: Workspace, period: Period, *, now: datetime, provisional: bool = False
) -> Assessed:
    """Assess every rulebook whose `period` is this period's kind, store and return the results
    (sorted by rulebook id). Same inputs → the same stored result, issued when first assessed.

    Reporting states are those at `now`. A result that is not assessable (too little data or too
    few targets to rank on, see assess.coverage) is returned but never stored: there is nothing
    to publish or to compare the next period with. Nor is anything of a `provisional` preview:
    a stored result would lend its date to the real bulletin.

    The results come with the run's reads (`Assessed`): the bulletin rendered from these
    results reuses them instead of reading the same submissions again."""
    p = period
    books = [b for b in workspace_rulebooks(ws) if b.period == p.kind]
    reads = run_reads(ws, as_of=now)
    out = []
    conn = ws.connect()
    try:
        for book in books:
            result = prepare(ws, conn, book, p, reads)
            if result.assessable and not provisional:
                result = save_result(conn, result, now=now)
            out.append(result)
    finally:
        conn.close()
    return Assessed(out, reads)


def rulebook_checks(
    ws: Workspace, books: list[Rulebook], now: datetime, period: Period | None = None
) -> dict[str, list[dict[str, Any]]]:
    """What `supervise rules` can tell before a run: whether each rulebook has enough to rank on.

    With a period: each rulebook of that period's kind, checked as a run would see it now (data,
    targets, indicators; before the deadline only the targets, the data are still coming in).
    Without: the annual targets every rulebook reads, for the years of the periods due now and
    open now. Each check is {"period", "scope": "all" | "targets", "assessable", "reasons"}."""
    deadlines = ws.settings.deadlines
    min_coverage = ws.settings.assessment.min_coverage
    counties = ws.registry.assessed_counties()
    names = {c.code: c.name for c in counties}
    out: dict[str, list[dict[str, Any]]] = {b.id: [] for b in books}

    def targets_only(book: Rulebook, label: str, year: int) -> dict[str, Any]:
        targets = {c.code: ws.registry.targets_for(c.code, year).as_dict() for c in counties}
        reasons = check_targets(book, targets, names, year, min_coverage)
        return {"period": label, "scope": "targets", "assessable": not reasons, "reasons": reasons}

    if period is None:
        for book in books:
            kind = book.period
            due = deadlines.due_now(kind, now)  # type: ignore[arg-type]  # a rulebook's period is a Kind
            for year in sorted({due.year, due.next().year}):
                if target_names(book):
                    out[book.id].append(targets_only(book, str(year), year))
        return out
    reads = run_reads(ws, as_of=now)
    conn = ws.connect()
    try:
        for book in books:
            if book.period != period.kind:
                continue
            if not deadlines.is_due(deadlines.last_due(period), now):
                out[book.id].append(targets_only(book, str(period), period.year))
                continue
            result = prepare(ws, conn, book, period, reads)
            out[book.id].append({"period": str(period), "scope": "all", "assessable": result.assessable,
                                 "reasons": list(result.reasons)})
    finally:
        conn.close()
    return out


def explain(
    ws: Workspace, county_code: str, period: Period, rulebook_id: str | None = None,
    *, now: datetime | None = None, provisional: bool = False,
) -> dict[str, Any]:
    """How one county's score was reached under each rulebook for the period (read-only).

    Reporting states are those at `now` (when given). A `provisional` preview is computed afresh,
    never taken from the stored results; a rulebook with too little to rank on says why instead."""
    p = period
    county = ws.registry.counties.get(county_code)
    if county is None:
        raise AssessError(unknown_county_message(county_code))
    if not county.assessed:
        raise AssessError(f"县（市）代码 {county_code} 不是参加考核的单位；请用 counties.csv 中的代码")
    books = workspace_rulebooks(ws)
    if rulebook_id is not None:
        chosen = [b for b in books if b.id == rulebook_id]
        if not chosen:
            raise AssessError(
                f"没有考核规则 {rulebook_id!r}；可用：{', '.join(b.id for b in books) or '无'}"
            )
        if chosen[0].period != p.kind:
            raise AssessError(
                f"考核规则 {rulebook_id} 按 {chosen[0].period} 考核，请用 --{chosen[0].period} 指定期间"
            )
        books = chosen
    else:
        books = [b for b in books if b.period == p.kind]
        if not books:
            raise AssessError(f"rules/ 中没有按 {p.kind} 考核的规则")
    reads = run_reads(ws, as_of=now)
    conn = ws.connect()
    try:
        docs = []
        for book in books:
            result = prepare(ws, conn, book, p, reads)
            if not result.assessable:
                states = {x.county_code: x for x in reads.statuses(conn, data_period(p, book.data))}
                docs.append(explain_not_assessable(result, county.code, county.name, states[county.code].state))
                continue
            stored = None if provisional else find_result(conn, book.id, p, result.inputs_hash)
            if stored is not None:
                result = stored
            docs.append(explain_unit(result, county_code))
    finally:
        conn.close()
    return {
        "county_code": county.code, "county_name": county.name, "period": str(p), "provisional": provisional,
        "assessments": docs,
    }
