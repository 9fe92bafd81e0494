"""Who reported a period on time, late, not at all, or had it sent back: the rules, pure.

The states (the reading of the store that feeds them is `jobs.reporting`):

- on_time: an accepted submission received before the deadline;
- late (迟报): accepted, but received after it; days late = calendar days after the due day;
- missing (漏报): nothing accepted;
- rejected (退回): received but failed validation, or accepted and then sent back by staff,
  and not yet resubmitted successfully;
- not_due (未到截止): shown instead of missing while the deadline is still ahead (`as_of`):
  nobody is 漏报 before the period can be assessed.

Timeliness is judged on the first accepted version since the last 退回: a correction sent after
the deadline does not make an on-time county late, but a resubmission after staff sent the data
back is judged by its own receipt time.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from .periods import Deadlines, Period
from .records import ProblemRow, ReturnRow, SubmissionRow

STATES = ("on_time", "late", "missing", "rejected", "not_due")
STATE_LABELS = {"on_time": "按时报送", "late": "迟报", "missing": "漏报", "rejected": "退回", "not_due": "未到截止"}


@dataclass(frozen=True)
class Rejection:
    """One rejection of a county's submissions for a period (what the `rejected` deduction counts): a file that
    failed validation, or a version staff sent back (退回)."""

    kind: str              # invalid | returned
    file: str
    at: str                # when the file was received, or when staff sent it back
    reason: str
    submission_id: int

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "file": self.file, "at": self.at, "reason": self.reason,
                "submission_id": self.submission_id}


# A rejection our own server caused (an internal error, a lost batch) is not the county's.
NOT_THE_COUNTYS = frozenset({"internal_error", "not_stored", "reader_failed"})


def rejections(rows: list[SubmissionRow], returns: list[ReturnRow],
               errors: dict[int, list[ProblemRow]]) -> list[Rejection]:
    """Pure: every rejection of a county's submissions for a period, oldest first. Identical
    bytes rejected again count once; a 退回 counts whether or not the county resubmitted."""
    out: list[Rejection] = []
    seen: set[str] = set()
    for r in sorted(rows, key=lambda r: (r.received_at, r.id)):
        if r.verdict != "rejected" or r.file_sha256 in seen:
            continue
        problems = [p for p in errors.get(r.id, []) if p.severity == "error"]
        if problems and all(p.code in NOT_THE_COUNTYS for p in problems):
            continue
        seen.add(r.file_sha256)
        first = problems[0].message if problems else "数据校验未通过"
        more = f"（共{len(problems)}处问题）" if len(problems) > 1 else ""
        out.append(Rejection("invalid", r.file_name, r.received_at, first + more, r.id))
    for ret in returns:
        out.append(Rejection("returned", ret.file_name, ret.at, ret.reason, ret.submission_id))
    out.sort(key=lambda x: (x.at, x.submission_id))
    return out


@dataclass
class CountyStatus:
    county_code: str
    county_name: str
    state: str                                  # on_time | late | missing | rejected | not_due
    received_at: datetime | None                # receipt that decided the state
    days_late: int = 0
    submission_id: int | None = None            # the version in force (accepted), if any
    versions: int = 0                           # accepted versions on record
    rejected_files: int = 0                     # files that failed validation
    warnings: list[ProblemRow] = field(default_factory=list)  # of the version in force
    reason: str = ""                            # why rejected (last validation error or 退回 reason)
    rejections: list[Rejection] = field(default_factory=list)   # every rejection for the period
    returned: ReturnRow | None = None           # the 退回 this state stands for (reason, file, when)

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
            "returned_at": self.returned.at if self.returned else None,
            "rejections": [r.to_json() for r in self.rejections],
        }


def county_status(
    rows: list[SubmissionRow],
    county_code: str,
    county_name: str,
    period: Period,
    deadlines: Deadlines,
    returned_at: str | None = None,
    warnings: list[ProblemRow] | None = None,
    last_returned: ReturnRow | None = None,
) -> CountyStatus:
    """Pure: decide one county's state from its submissions for the period (oldest first).

    A county whose data staff sent back carries that 退回 (`last_returned`) and its reason.
    """
    accepted = [r for r in rows if r.verdict in ("accepted", "warning")]
    rejected = [r for r in rows if r.verdict == "rejected"]
    current = next((r for r in accepted if r.state == "current"), None)
    if current is None:
        if rejected or any(r.state == "returned" for r in accepted):
            last = max(rows, key=lambda r: (r.received_at, r.id))
            back = last_returned if last.state == "returned" else None
            if last.state == "returned":
                reason = (back.reason if back else "") or "已退回，待重新报送"
            else:
                reason = "数据校验未通过，待重新报送"
            return CountyStatus(
                county_code, county_name, "rejected", datetime.fromisoformat(last.received_at),
                versions=len(accepted), rejected_files=len(rejected), reason=reason, returned=back,
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


def rates(statuses: list[CountyStatus]) -> dict[str, float]:
    """Completeness (reported and accepted) and timeliness (on time) as percentages."""
    n = len(statuses) or 1
    reported = sum(1 for s in statuses if s.state in ("on_time", "late"))
    on_time = sum(1 for s in statuses if s.state == "on_time")
    return {"completeness": round(100 * reported / n, 1), "timeliness": round(100 * on_time / n, 1)}


# ------------------------------------------------------------------ before the deadline


def as_of(
    statuses: list[CountyStatus], period: Period, deadlines: Deadlines, now: datetime
) -> list[CountyStatus]:
    """The states as they stand at `now` (pure): before the deadline a county that has sent
    nothing is not_due (未到截止), not missing (漏报), and incurs no 漏报 deduction in a preview."""
    if deadlines.is_due(period, now):
        return statuses
    return [replace(s, state="not_due") if s.state == "missing" else s for s in statuses]


def deadline_note(period: Period, deadlines: Deadlines, now: datetime) -> dict[str, object]:
    """`deadline_passed`, and while it has not, a note saying why nobody is 漏报 yet (pure)."""
    if deadlines.is_due(period, now):
        return {"deadline_passed": True}
    return {
        "deadline_passed": False,
        "note": (
            f"{period.label}的报送截止时间为{deadlines.deadline_text(period)}，尚未到期："
            "尚未报送的县（市）显示为“未到截止”，不计漏报"
        ),
    }
