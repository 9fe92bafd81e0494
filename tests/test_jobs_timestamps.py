"""One stored time format (periods.stamp) for the run log, deliveries and assessment results."""

from __future__ import annotations

from datetime import UTC, datetime

from supervise.assess.model import AssessmentResult
from supervise.jobs.results import load_result, save_result
from supervise.periods import TZ, Month, stamp
from supervise.store import runs
from supervise.workspace import Workspace


def test_stamp_is_shanghai_with_offset_to_the_second() -> None:
    assert stamp(datetime(2025, 4, 6, 0, 0, 0, 123456, tzinfo=UTC)) == "2025-04-06T08:00:00+08:00"
    assert stamp(datetime(2025, 4, 6, 8, 0)) == "2025-04-06T08:00:00+08:00"  # no zone: Shanghai
    assert runs.stamp is stamp


def _result(inputs_hash: str) -> AssessmentResult:
    return AssessmentResult(
        rulebook="cz-monthly", title="月度考核", version="2025.1", period="2025-03", period_kind="month",
        data="monthly", indicators=[], units=[], settlement=None, inputs_hash=inputs_hash,
        data_period="2025-03",
    )


def test_the_latest_result_is_the_latest_instant_whatever_zone_now_was_given_in(ws: Workspace) -> None:
    conn = ws.connect()
    try:
        save_result(conn, _result("a" * 64), now=datetime(2025, 4, 6, 8, 30, tzinfo=TZ))
        # 01:00 UTC is 09:00 in Shanghai: later, though its text sorts first unconverted.
        later = save_result(conn, _result("b" * 64), now=datetime(2025, 4, 6, 1, 0, tzinfo=UTC))
        assert later.issued_at == "2025-04-06T09:00:00+08:00"
        latest = load_result(conn, "cz-monthly", Month(2025, 3))
        assert latest is not None and latest.inputs_hash == "b" * 64
    finally:
        conn.close()


def test_the_run_log_and_deliveries_store_the_same_format(ws: Workspace) -> None:
    conn = ws.connect()
    try:
        run_id = runs.start_run(conn, "collect", None, datetime(2025, 4, 6, 0, 5, tzinfo=UTC))
        runs.finish_run(conn, run_id, "success", datetime(2025, 4, 6, 8, 6, tzinfo=TZ))
        record = runs.get_run(conn, run_id)
        assert record is not None
        assert (record.started_at, record.ended_at) == ("2025-04-06T08:05:00+08:00", "2025-04-06T08:06:00+08:00")
        d = runs.add_delivery(conn, kind="alert", period=None, recipient="a@b.example", subject="s",
                              content_hash="h", now=datetime(2025, 4, 6, 0, 7, tzinfo=UTC))
        got = runs.get_delivery(conn, d)
        assert got is not None and got.created_at == "2025-04-06T08:07:00+08:00"
    finally:
        conn.close()
