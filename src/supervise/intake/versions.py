"""A county's versions of a period: the history staff and the county read, and 退回 (sending the
version in force back, with a reason, mailed to the county)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..periods import Period
from ..registry import unknown_county_message
from ..store import submissions as store
from ..workspace import Workspace
from .problems import ERROR
from .results import IntakeError, iso


def reject_submission(
    ws: Workspace, county_code: str, period: Period, reason: str, *, actor: str, now: datetime
) -> dict[str, Any]:
    """退回: send the version in force back to the county, with a reason; recorded in the audit,
    and the county's contacts mailed the reason (a mail not delivered waits in the outbox).

    Done under the workspace lock, so that no collect sends the queued notice beside us.
    """
    from ..jobs.locks import WORKSPACE_LOCK, hold
    from ..jobs.notices import send_return_notice

    if county_code not in ws.registry.counties:
        raise IntakeError(unknown_county_message(county_code))
    if not reason or not reason.strip():
        raise IntakeError("a reason is required (退回须说明原因)")
    key = str(period)
    with hold(ws.home, WORKSPACE_LOCK, wait=ws.settings.jobs.lock_wait, now=now):
        conn = ws.connect()
        try:
            row = store.return_current(conn, county_code, key, reason.strip(), actor=actor, at=iso(now))
            if row is None:
                raise IntakeError(
                    f"{county_code} has no accepted submission for {key} to send back (没有可退回的报送)")
            notice = send_return_notice(ws, conn, row, reason.strip(), now=now)
        finally:
            conn.close()
    return {"county_code": county_code, "period": key, "submission_id": row.id, "state": "returned",
            "reason": reason.strip(), "at": iso(now), "actor": actor, "file_name": row.file_name,
            "received_at": row.received_at, "notice": notice.to_json()}


def history(ws: Workspace, county_code: str, period: Period) -> dict[str, Any]:
    """Every version on record (who, when, file, hash, verdict, state) and what changed between accepted ones."""
    key = str(period)
    conn = ws.connect()
    try:
        rows = store.all_versions(conn, county_code, key)
        versions = []
        for r in rows:
            problems = store.problems_of(conn, r.id)
            versions.append({
                "submission_id": r.id,
                "sender_code": r.sender_code,
                "source": r.source,
                "received_at": r.received_at,
                "ingested_at": r.ingested_at,
                "file_name": r.file_name,
                "sha256": r.file_sha256,
                "format": r.format,
                "verdict": r.verdict,
                "state": r.state,
                "supersedes": r.supersedes,
                "values": r.n_values,
                "errors": sum(1 for p in problems if p.severity == ERROR),
                "warnings": sum(1 for p in problems if p.severity != ERROR),
            })
        accepted = [r for r in rows if r.verdict != "rejected"]
        changes = []
        for old, new in zip(accepted, accepted[1:]):
            a, b = store.values_of(conn, old.id), store.values_of(conn, new.id)
            diff = []
            for cluster in sorted(set(a) | set(b)):
                for ind in sorted(set(a.get(cluster, {})) | set(b.get(cluster, {}))):
                    va, vb = a.get(cluster, {}).get(ind), b.get(cluster, {}).get(ind)
                    if va != vb:
                        diff.append({"cluster_code": cluster, "indicator": ind, "old": va, "new": vb})
            changes.append({"from": old.id, "to": new.id, "received_at": new.received_at, "changes": diff})
        audit = store.audit_of(conn, county_code, key)
    finally:
        conn.close()
    return {"county_code": county_code, "period": key, "versions": versions, "changes": changes,
            "audit": audit}
