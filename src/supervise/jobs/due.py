"""Whether a period may be assessed now, and what a provisional preview is.

漏报 is "nothing accepted when the period is assessed", so a period is assessed only
once everything its run reads is due (`Deadlines.last_due`: a quarter also reads its last month,
a year December and Q4). Before that, `run` and `explain` refuse it with one line naming the
deadline, unless asked for a provisional preview (`--provisional`): computed with the states as
they stand (未到截止, not 漏报), stored nowhere, never mailed, and marked 预览 on every page.
The scheduler's own periods (`Deadlines.due_now`) are due by construction; `run_period` checks
again all the same, so no path can publish a period early.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ..errors import SuperviseError
from ..periods import Deadlines, Month, Period, Quarter, dataset_title

PREVIEW = "预览"
NOT_DUE = "未到报送截止时间"
NOT_RANKED = "数据不全，不予排名"
OPTION = "--provisional"


class NotYetDue(SuperviseError):
    """A period asked for before its deadline without --provisional."""


def not_yet_due(deadlines: Deadlines, period: Period, now: datetime, *, what: str = "考核") -> str | None:
    """Why `period` cannot be assessed at `now` (one line, naming the deadline), or None: it can."""
    due = deadlines.last_due(period)
    if deadlines.is_due(due, now):
        return None
    which = "" if due == period else f"（{due.label}{dataset_title(due)}）"
    return (
        f"{period.label}的数据报送截止时间为{deadlines.deadline_text(due)}{which}，尚未到期，现在不能{what}"
        f"（截止前未报送的县（市）还不算漏报）；如需预览，请加 {OPTION}（标注“{PREVIEW}”，不保存、不发送） / "
        f"{period} is due by {deadlines.due_day(due).isoformat()} 24:00 Asia/Shanghai: add {OPTION} for "
        "a preview that is never stored or mailed"
    )


def require_due(
    deadlines: Deadlines, period: Period, now: datetime, *, provisional: bool, what: str = "考核"
) -> bool:
    """Refuse a period not yet due unless `provisional`; True when this is a preview before it."""
    reason = not_yet_due(deadlines, period, now, what=what)
    if reason is not None and not provisional:
        raise NotYetDue(reason)
    return reason is not None


def not_open(deadlines: Deadlines, period: Month | Quarter, now: datetime) -> str | None:
    """Why counties cannot be reminded of `period` yet (its reporting has not begun: a later
    period than the one they are reporting now), or None. Before the deadline is the point."""
    current = deadlines.open_period("month" if isinstance(period, Month) else "quarter", now)
    if str(period) <= str(current):  # the same kind, whose text sorts as the periods do
        return None
    return (
        f"{period.label}的报送尚未开始（各县（市）现在报送的是{current.label}{dataset_title(current)}，"
        f"截止{deadlines.deadline_text(current)}），不能催报 / {period} is not open for reporting yet "
        f"(counties are reporting {current} now, due by {deadlines.due_day(current).isoformat()} 24:00)"
    )


def preview_mark(*, before_deadline: bool, reasons: Sequence[str] = ()) -> str:
    """The words every page of a preview carries: 预览（未到报送截止时间）, 预览（数据不全，不予排名）."""
    why = ([NOT_DUE] if before_deadline else []) + ([NOT_RANKED] if reasons else [])
    return f"{PREVIEW}（{'；'.join(why) or '非正式通报'}）"
