from __future__ import annotations

from datetime import UTC, datetime

import pytest

from supervise.periods import (
    Deadlines,
    Month,
    PeriodError,
    Quarter,
    Year,
    parse_period,
    parse_time,
)
from tests.conftest import at

D = Deadlines()  # monthly: 5th of next month, quarterly: 10th of the month after


@pytest.mark.parametrize(
    "text, expected",
    [("2025-03", Month(2025, 3)), ("2025Q1", Quarter(2025, 1)),
     ("2025q4", Quarter(2025, 4)), ("2025", Year(2025))],
)
def test_parse(text, expected):
    assert parse_period(text) == expected


@pytest.mark.parametrize("text", ["2025-13", "2025-00", "2025-3", "2025Q5", "25-03", "March", ""])
def test_parse_refuses(text):
    with pytest.raises(PeriodError):
        parse_period(text)


@pytest.mark.parametrize(
    "period, due_day",
    [
        (Month(2025, 3), "2025-04-05"),
        (Month(2025, 12), "2026-01-05"),   # December's data are due in January of the next year
        (Quarter(2025, 1), "2025-04-10"),
        (Quarter(2025, 4), "2026-01-10"),
        (Year(2025), "2026-01-10"),        # a year is judged on its Q4 update
    ],
)
def test_due_day(period, due_day):
    assert D.due_day(period).isoformat() == due_day


@pytest.mark.parametrize(
    "received, late, days",
    [
        ("2025-04-01 09:00", False, 0),
        ("2025-04-05 23:59:59", False, 0),   # the last second of the due day is on time
        ("2025-04-06 00:00", True, 1),       # midnight: the deadline (24:00 of the 5th) has passed
        ("2025-04-06 17:00", True, 1),       # received the 6th for a deadline of the 5th: one day late
        ("2025-04-08 08:00", True, 3),
        ("2025-05-01 08:00", True, 26),
    ],
)
def test_lateness_month(received, late, days):
    assert D.is_late(Month(2025, 3), at(received)) is late
    assert D.days_late(Month(2025, 3), at(received)) == days


def test_lateness_uses_shanghai_time():
    # 16:30 UTC on the 5th is 00:30 on the 6th in Shanghai: late by one day.
    utc = datetime(2025, 4, 5, 16, 30, tzinfo=UTC)
    assert D.is_late(Month(2025, 3), utc)
    assert D.days_late(Month(2025, 3), utc) == 1
    assert parse_time("2025-04-05T16:30:00+00:00") == utc
    assert parse_time("2025-04-06T00:30:00").utcoffset().total_seconds() == 8 * 3600


@pytest.mark.parametrize(
    "now, month, quarter",
    [
        ("2025-04-05 12:00", Month(2025, 2), Quarter(2024, 4)),  # March not due until the 5th ends
        ("2025-04-06 00:00", Month(2025, 3), Quarter(2024, 4)),
        ("2025-04-11 00:00", Month(2025, 3), Quarter(2025, 1)),
        ("2025-01-06 08:00", Month(2024, 12), Quarter(2024, 3)),
    ],
)
def test_due_now(now, month, quarter):
    assert D.due_now("month", at(now)) == month
    assert D.due_now("quarter", at(now)) == quarter


def test_configured_day():
    d = Deadlines(monthly_day=10, quarterly_day=15)
    assert d.days_late(Month(2025, 1), at("2025-02-11 01:00")) == 1
    assert not d.is_late(Quarter(2025, 1), at("2025-04-15 23:00"))
    # a day beyond the month's end is clamped to its last day
    assert Deadlines(monthly_day=31).due_day(Month(2025, 1)).isoformat() == "2025-02-28"


def test_navigation():
    assert Month(2025, 1).previous() == Month(2024, 12)
    assert Month(2025, 12).next() == Month(2026, 1)
    assert Month(2025, 5).quarter() == Quarter(2025, 2)
    assert Quarter(2025, 1).previous() == Quarter(2024, 4)
    assert str(Quarter(2025, 2)) == "2025Q2" and Quarter(2025, 2).label == "2025年第二季度"
    assert Month(2025, 3).label == "2025年3月"
