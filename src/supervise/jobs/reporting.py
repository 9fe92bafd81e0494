"""Reporting status read from the store: the glue between `store.submissions` and the rules
of `status` (pure). The CLI's `status`, the web's board, exports and the period runs read here.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from ..periods import Deadlines, Period
from ..registry import Registry
from ..status import STATES, CountyStatus, as_of, county_status, deadline_note, rates, rejections
from ..store.submissions import problems_of, returns_of, submissions_for


def reporting_status(
    conn: sqlite3.Connection, registry: Registry, period: Period, deadlines: Deadlines
) -> list[CountyStatus]:
    """The state of every assessed county for a period, in registry order."""
    p = period
    key = str(p)
    out = []
    for county in registry.assessed_counties():
        rows = submissions_for(conn, key, county.code)
        current = next((r for r in rows if r.state == "current"), None)
        warnings = [w for w in problems_of(conn, current.id) if w.severity == "warning"] if current else []
        returns = returns_of(conn, county.code, key)      # one read of the 退回s, for all three uses
        last = returns[-1] if returns else None
        status = county_status(
            rows, county.code, county.name, p, deadlines,
            returned_at=last.at if last else None, warnings=warnings,
            last_returned=last if current is None else None,
        )
        errors = {r.id: problems_of(conn, r.id) for r in rows if r.verdict == "rejected"}
        status.rejections = rejections(rows, returns, errors)
        out.append(status)
    return out



def status_report(
    conn: sqlite3.Connection, registry: Registry, period: Period, deadlines: Deadlines,
    now: datetime | None = None,
) -> dict[str, object]:
    """The `supervise status --json` document (a contract: period, counties with county_code, county_name, state, received_at): every county, completeness, timeliness.

    With `now`, a period whose deadline is still ahead shows 未到截止 instead of 漏报 (`as_of`)."""
    p = period
    statuses = reporting_status(conn, registry, p, deadlines)
    if now is not None:
        statuses = as_of(statuses, p, deadlines, now)
    doc: dict[str, object] = {
        "period": str(p),
        "due": deadlines.due_day(p).isoformat(),
        "deadline": deadlines.deadline(p).isoformat(),
        "counties": [s.to_json() | {"state_label": s.label} for s in statuses],
    }
    doc.update(rates(statuses))
    doc["counts"] = {state: sum(1 for s in statuses if s.state == state) for state in STATES}
    if now is not None:
        doc.update(deadline_note(p, deadlines, now))
    return doc
