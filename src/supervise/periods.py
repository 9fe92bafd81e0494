"""Reporting periods (month, quarter, year), their deadlines and lateness.

Pure code: no clock inside. Every function that needs "now" takes it as an argument.
All times are timezone-aware; the bureau's zone is Asia/Shanghai.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import ClassVar, Literal
from zoneinfo import ZoneInfo

from .errors import SuperviseError

TZ = ZoneInfo("Asia/Shanghai")

Kind = Literal["month", "quarter", "year"]


class PeriodError(SuperviseError, ValueError):
    """A period string that cannot be understood."""


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    kind: ClassVar[Kind] = "month"

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12:
            raise PeriodError(f"month out of range: {self.month}")

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def label(self) -> str:
        return f"{self.year}年{self.month}月"

    @property
    def dataset(self) -> str:
        return "monthly"

    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    def last_day(self) -> date:
        return self.next().first_day() - timedelta(days=1)

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        return Month(self.year - 1, 12) if self.month == 1 else Month(self.year, self.month - 1)

    def quarter(self) -> Quarter:
        return Quarter(self.year, (self.month - 1) // 3 + 1)

    def months(self) -> list[Month]:
        return [self]


@dataclass(frozen=True, order=True)
class Quarter:
    year: int
    quarter: int

    kind: ClassVar[Kind] = "quarter"

    def __post_init__(self) -> None:
        if not 1 <= self.quarter <= 4:
            raise PeriodError(f"quarter out of range: {self.quarter}")

    def __str__(self) -> str:
        return f"{self.year:04d}Q{self.quarter}"

    @property
    def label(self) -> str:
        return f"{self.year}年第{'一二三四'[self.quarter - 1]}季度"

    @property
    def dataset(self) -> str:
        return "quarterly"

    def first_day(self) -> date:
        return date(self.year, 3 * self.quarter - 2, 1)

    def last_day(self) -> date:
        return self.last_month().last_day()

    def last_month(self) -> Month:
        return Month(self.year, 3 * self.quarter)

    def months(self) -> list[Month]:
        return [Month(self.year, 3 * self.quarter - 2 + i) for i in range(3)]

    def next(self) -> Quarter:
        return Quarter(self.year + 1, 1) if self.quarter == 4 else Quarter(self.year, self.quarter + 1)

    def previous(self) -> Quarter:
        return Quarter(self.year - 1, 4) if self.quarter == 1 else Quarter(self.year, self.quarter - 1)


@dataclass(frozen=True, order=True)
class Year:
    year: int

    kind: ClassVar[Kind] = "year"

    def __str__(self) -> str:
        return f"{self.year:04d}"

    @property
    def label(self) -> str:
        return f"{self.year}年"

    def first_day(self) -> date:
        return date(self.year, 1, 1)

    def last_day(self) -> date:
        return date(self.year, 12, 31)

    def december(self) -> Month:
        return Month(self.year, 12)

    def q4(self) -> Quarter:
        return Quarter(self.year, 4)

    def next(self) -> Year:
        return Year(self.year + 1)

    def previous(self) -> Year:
        return Year(self.year - 1)


Period = Month | Quarter | Year

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})[Qq]([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")


def parse_period(text: str) -> Period:
    """Parse '2025-03', '2025Q1' or '2025'."""
    s = str(text).strip()
    if m := _MONTH.match(s):
        month = int(m.group(2))
        if not 1 <= month <= 12:
            raise PeriodError(f"月份无效 / invalid month: {text!r}")
        return Month(int(m.group(1)), month)
    if m := _QUARTER.match(s):
        return Quarter(int(m.group(1)), int(m.group(2)))
    if m := _YEAR.match(s):
        return Year(int(m.group(1)))
    raise PeriodError(
        f"报告期格式无效 / invalid period {text!r}: use 2025-03 (month), 2025Q1 (quarter) or 2025 (year)"
    )


def as_period(period: Period | str) -> Period:
    """A period given as a Period or as its text ('2025-03', '2025Q1', '2025')."""
    return parse_period(period) if isinstance(period, str) else period


def data_period(period: Period, data: str) -> Month | Quarter:
    """The submissions that an assessment of `period` reading `data` (monthly | quarterly) is
    based on: a quarter read with monthly data reads its last month; a year reads December
    (monthly) or Q4 (quarterly)."""
    if isinstance(period, Month):
        if data != "monthly":
            raise ValueError("a monthly assessment reads monthly data")
        return period
    if isinstance(period, Quarter):
        return period if data == "quarterly" else period.last_month()
    if isinstance(period, Year):
        return period.december() if data == "monthly" else period.q4()
    raise TypeError(f"not a period: {period!r}")


# What counties send for a month and for a quarter, as templates, reminders and bulletins name it.
DATASET_TITLES = {"monthly": "集群发展月报", "quarterly": "集群季度更新"}


def dataset_title(period: Period) -> str:
    """集群发展月报 for a month, 集群季度更新 for a quarter (a year is reported with Q4)."""
    return DATASET_TITLES["monthly" if isinstance(period, Month) else "quarterly"]


def chinese_date(d: date) -> str:
    """2025年4月8日: the date as bulletins and letters write it."""
    return f"{d.year}年{d.month}月{d.day}日"


@dataclass(frozen=True)
class Deadlines:
    """When data are due: day of the following month (monthly) / of the month after the quarter."""

    monthly_day: int = 5
    quarterly_day: int = 10

    def due_day(self, period: Period) -> date:
        """The last calendar day on which a submission for `period` is on time."""
        if isinstance(period, Month):
            nxt = period.next()
            return date(nxt.year, nxt.month, min(self.monthly_day, nxt.last_day().day))
        if isinstance(period, Quarter):
            nxt = period.last_month().next()
            return date(nxt.year, nxt.month, min(self.quarterly_day, nxt.last_day().day))
        # A year is assessed on its December / Q4 data: due with the Q4 update.
        return self.due_day(Quarter(period.year, 4))

    def deadline(self, period: Period) -> datetime:
        """The instant the period's data are due: the end (24:00) of the due day, Asia/Shanghai."""
        return datetime.combine(self.due_day(period) + timedelta(days=1), time(0), tzinfo=TZ)

    def deadline_text(self, period: Period) -> str:
        """2025年4月5日24时: the deadline as notices and refusals write it."""
        return f"{chinese_date(self.due_day(period))}24时"

    def is_due(self, period: Period, now: datetime) -> bool:
        """Whether the period's deadline has passed at `now`: before it nobody is 漏报 yet, so
        the period can be previewed but not assessed."""
        return _aware(now) >= self.deadline(period)

    def last_due(self, period: Period) -> Period:
        """Of the submissions a run of `period` reads (a quarter: its update and its last month;
        a year: Q4 and December), the one due last: the run waits for its deadline."""
        if isinstance(period, Month):
            return period
        reads: list[Period] = [period, period.last_month()] if isinstance(period, Quarter) else [
            period.q4(), period.december()]
        return max(reads, key=self.deadline)

    def is_late(self, period: Period, received_at: datetime) -> bool:
        return _aware(received_at) >= self.deadline(period)

    def days_late(self, period: Period, received_at: datetime) -> int:
        """Calendar days after the due day (received on the 6th, due the 5th: 1). 0 when on time."""
        received_day = _aware(received_at).astimezone(TZ).date()
        return max(0, (received_day - self.due_day(period)).days)

    def due_now(self, kind: Kind, now: datetime) -> Period:
        """The most recent period of `kind` whose run is due at `now`: everything it reads is
        past its deadline (`last_due`), never a period counties may still be reporting."""
        local = _aware(now).astimezone(TZ)
        if kind == "month":
            m = Month(local.year, local.month).previous()
            while self.deadline(m) > local:
                m = m.previous()
            return m
        if kind == "quarter":
            q = Month(local.year, local.month).quarter().previous()
            while self.deadline(self.last_due(q)) > local:
                q = q.previous()
            return q
        y = Year(local.year - 1)
        while self.deadline(self.last_due(y)) > local:
            y = y.previous()
        return y

    def open_period(self, kind: Literal["month", "quarter"], now: datetime) -> Period:
        """The period counties are currently reporting: the earliest one whose deadline is still ahead."""
        due = self.due_now(kind, now)
        return due.next()


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=TZ)


def stamp(dt: datetime) -> str:
    """The one stored time format: Asia/Shanghai, ISO 8601 with its offset, whole seconds.

    `2025-04-06T08:00:00+08:00`. Every stored time has this exact shape, so comparing two of
    the strings compares the instants. A time without zone is taken as Asia/Shanghai. Records
    stamped within the same second are told apart by their row id.
    """
    return _aware(dt).astimezone(TZ).isoformat(timespec="seconds")


def parse_time(text: str) -> datetime:
    """Parse an ISO-8601 time; a time without zone is Asia/Shanghai."""
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise PeriodError(f"invalid ISO-8601 time {text!r} (e.g. 2025-04-05T17:30:00+08:00)") from exc
    return _aware(dt)
