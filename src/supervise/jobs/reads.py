"""What a run reads of the store, once per data period: reporting status and current values.

Several rulebooks of a period may read the same submissions, and the bulletin reads them again
for its status and cluster tables; at national size each read is a scan of every county's
submissions. A `PeriodReads` made for one run keeps each data period's reads, so everything in
that run sees the same data, read once. It holds no connection: the caller passes its own.

With `as_of` (the run's `now`), each period's states are those at that time: before a period's
deadline a county that has sent nothing is not_due (未到截止), not missing (漏报).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime

from ..periods import Deadlines, Period
from ..registry import Registry
from ..status import CountyStatus, as_of
from ..store.submissions import Value, current_values
from .reporting import reporting_status

Rows = dict[str, dict[str, dict[str, Value]]]


@dataclass
class PeriodReads:
    registry: Registry
    deadlines: Deadlines
    as_of: datetime | None = None
    _statuses: dict[str, list[CountyStatus]] = field(default_factory=dict, repr=False)
    _values: dict[str, Rows] = field(default_factory=dict, repr=False)

    def statuses(self, conn: sqlite3.Connection, period: Period) -> list[CountyStatus]:
        """Every assessed county's reporting state for `period`, in registry order."""
        key = str(period)
        if key not in self._statuses:
            found = reporting_status(conn, self.registry, period, self.deadlines)
            if self.as_of is not None:
                found = as_of(found, period, self.deadlines, self.as_of)
            self._statuses[key] = found
        return self._statuses[key]

    def values(self, conn: sqlite3.Connection, period: Period) -> Rows:
        """county → cluster → indicator → value of each county's current version (read only)."""
        key = str(period)
        if key not in self._values:
            self._values[key] = current_values(conn, key)
        return self._values[key]
