"""Who reported a period on time, late, not at all, or had it sent back (SPEC §3).

- on_time: an accepted submission received before the deadline;
- late (迟报): accepted, but received after it; days late = calendar days after the due day;
- missing (漏报): nothing accepted;
- rejected (退回): received but failed validation, or accepted and then sent back by staff,
  and not yet resubmitted successfully.

Timeliness is judged on the first accepted version since the last 退回: a correction sent after
the deadline does not make an on-time county late, but a resubmission after staff sent the data
back is judged by its own receipt time.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime

from .periods import Deadlines, Period, as_period
from .registry import Registry
from .store.submissions import ProblemRow, SubmissionRow, problems_of, submissions_for

STATES = ("on_time", "late", "missing", "rejected")
STATE_LABELS = {"on_time": "按时报送", "late": "迟报", "missing": "漏报", "rejected": "退回"}


@dataclass
class CountyStatus:
    county_code: str
    county_name: str
    state: str                                  # on_time | late | missing | rejected
    received_at: datetime | None                # receipt that decided the state
    days_late: int = 0
    submission_id: int | None = None            # the version in force (accepted), if any
    versions: int = 0                           # accepted versions on record
    rejected_files: int = 0                     # files that failed validation
    warnings: list[ProblemRow] = field(default_factory=list)  # of the version in force
    reason: str = ""                            # why rejected (last validation error or 退回 reason)

    @property
    def label(self) -> str:
        return STATE_LABELS[self.state]

    def to_json(self) -> dict[str, object]:
        return {
            "county_code": self.county_code,
            "county_name": self.county_name,
            "state": self.state,
            "received_at": self.received_at.isoformat() if self.received_at else None,
            "days_late": self.days_late,
            "submission_id": self.submission_id,
            "versions": self.versions,
            "warnings": len(self.warnings),
            "reason": self.reason,
        }


def county_status(
    rows: list[SubmissionRow],
    county_code: str,
    county_name: str,
    period: Period,
    deadlines: Deadlines,
    returned_at: str | None = None,
    warnings: list[ProblemRow] | None = None,
) -> CountyStatus:
    """Pure: decide one county's state from its submissions for the period (oldest first)."""
    accepted = [r for r in rows if r.verdict in ("accepted", "warning")]
    rejected = [r for r in rows if r.verdict == "rejected"]
    current = next((r for r in accepted if r.state == "current"), None)
    if current is None:
        if rejected or any(r.state == "returned" for r in accepted):
            last = max(rows, key=lambda r: (r.received_at, r.id))
            return CountyStatus(
                county_code, county_name, "rejected", datetime.fromisoformat(last.received_at),
                versions=len(accepted), rejected_files=len(rejected),
                reason="已退回，待重新报送" if last.state == "returned" else "数据校验未通过，待重新报送",
            )
        return CountyStatus(county_code, county_name, "missing", None)
    window = [r for r in accepted if returned_at is None or r.ingested_at > returned_at]
    decisive = min(window or [current], key=lambda r: (r.received_at, r.id))
    received = datetime.fromisoformat(decisive.received_at)
    late = deadlines.is_late(period, received)
    return CountyStatus(
        county_code,
        county_name,
        "late" if late else "on_time",
        received,
        days_late=deadlines.days_late(period, received) if late else 0,
        submission_id=current.id,
        versions=len(accepted),
        rejected_files=len(rejected),
        warnings=list(warnings or []),
    )


def reporting_status(
    conn: sqlite3.Connection, registry: Registry, period: Period | str, deadlines: Deadlines
) -> list[CountyStatus]:
    """The state of every assessed county for a period, in registry order."""
    p = as_period(period)
    key = str(p)
    out = []
    from .store.submissions import last_return

    for county in registry.assessed_counties():
        rows = submissions_for(conn, key, county.code)
        current = next((r for r in rows if r.state == "current"), None)
        warnings = [w for w in problems_of(conn, current.id) if w.severity == "warning"] if current else []
        out.append(
            county_status(
                rows, county.code, county.name, p, deadlines,
                returned_at=last_return(conn, county.code, key), warnings=warnings,
            )
        )
    return out


def rates(statuses: list[CountyStatus]) -> dict[str, float]:
    """Completeness (reported and accepted) and timeliness (on time) as percentages."""
    n = len(statuses) or 1
    reported = sum(1 for s in statuses if s.state in ("on_time", "late"))
    on_time = sum(1 for s in statuses if s.state == "on_time")
    return {"completeness": round(100 * reported / n, 1), "timeliness": round(100 * on_time / n, 1)}


def status_report(
    conn: sqlite3.Connection, registry: Registry, period: Period | str, deadlines: Deadlines
) -> dict[str, object]:
    """The `supervise status --json` document (SPEC §10): every county, completeness, timeliness."""
    p = as_period(period)
    statuses = reporting_status(conn, registry, p, deadlines)
    doc: dict[str, object] = {
        "period": str(p),
        "due": deadlines.due_day(p).isoformat(),
        "deadline": deadlines.deadline(p).isoformat(),
        "counties": [s.to_json() | {"state_label": s.label} for s in statuses],
    }
    doc.update(rates(statuses))
    doc["counts"] = {state: sum(1 for s in statuses if s.state == state) for state in STATES}
    return doc
