"""Reminder windows and the 催报 message. Pure: dates in, dates and text out.

For a period due on day D, the reminder days are D - n (n in remind_days_before; 0 is the
deadline day itself) and D + n (n in remind_days_after). Each reminder day opens a window that lasts until the next
reminder day (a "before" window ends with the due day; the last one lasts one day). A county
that still has not reported is mailed once per window, so a catch-up on the day after a
missed reminder day still reminds, and a second run on the same day sends nothing new.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ..periods import TZ, Deadlines, Period, Quarter, dataset_title
from ..periods import chinese_date as _date_label
from ..store.submissions import ReturnRow
from .notices import one_line, time_label


@dataclass(frozen=True)
class Window:
    period: Period
    key: str          # before2 | before0 (the deadline day) | after1 | manual-2025-04-04
    start: date
    end: date         # exclusive
    due_day: date

    @property
    def after_deadline(self) -> bool:
        return self.start > self.due_day


def windows_for(period: Period, deadlines: Deadlines, before: Sequence[int], after: Sequence[int]) -> list[Window]:
    due = deadlines.due_day(period)
    days = sorted(
        {(due - timedelta(days=n), f"before{n}") for n in before if n >= 0}
        | {(due + timedelta(days=n), f"after{n}") for n in after if n > 0}
    )
    out = []
    for i, (day, key) in enumerate(days):
        end = days[i + 1][0] if i + 1 < len(days) else day + timedelta(days=1)
        if day <= due:
            end = min(end, due + timedelta(days=1))
        out.append(Window(period, key, day, end, due))
    return out


def windows_at(now: datetime, deadlines: Deadlines, before: Sequence[int], after: Sequence[int]) -> list[Window]:
    """The reminder windows open at `now`, for monthly and quarterly data."""
    today = now.astimezone(TZ).date()
    found: list[Window] = []
    for kind in ("month", "quarter"):
        due = deadlines.due_now(kind, now)
        for period in (due, deadlines.open_period(kind, now)):
            for w in windows_for(period, deadlines, before, after):
                if w.start <= today < w.end and w not in found:
                    found.append(w)
    return found


def window_now(period: Period, now: datetime, deadlines: Deadlines, before: Sequence[int], after: Sequence[int]) -> Window:
    """The window for a reminder asked for by hand: the scheduled one open now, else today's."""
    today = now.astimezone(TZ).date()
    for w in windows_for(period, deadlines, before, after):
        if w.start <= today < w.end:
            return w
    return Window(period, f"manual-{today.isoformat()}", today, today + timedelta(days=1), deadlines.due_day(period))


def reminder_text(
    *,
    county_name: str,
    period: Period,
    state: str,
    reason: str,
    clusters: Sequence[str],
    due_day: date,
    today: date,
    issuer: str,
    city: str,
    returned: ReturnRow | None = None,
) -> tuple[str, str]:
    """The polite 催报 mail: (subject, body). Data staff sent back (`returned`) are named, with the reason."""
    what = dataset_title(period)
    due = f"{_date_label(due_day)}24时"
    subject = f"【催报】请报送{period.label}县域特色产业{what}数据（截止{due}）"
    if isinstance(period, Quarter):
        rule = "每季度结束后次月的规定日期前更新各集群季度情况"
    else:
        rule = "每月规定日期前报送上月集群发展数据"
    lines = [f"{county_name}：", ""]
    lines.append(
        f"根据《{city}县域特色产业集群转型升级工作方案》关于细化督导考核的要求，"
        f"各县（市、区）须{rule}。"
    )
    if state == "rejected" and returned is not None:
        lines.append(
            f"贵单位报送的{period.label}{what}数据（文件：{one_line(returned.file_name)}，"
            f"收到时间：{time_label(returned.received_at)}）已于{time_label(returned.at)}退回，"
            f"退回原因：{one_line(returned.reason) or reason or '未说明'}。"
            "目前尚无有效报送，请按退回原因修改后重新报送。"
        )
    elif state == "rejected":
        lines.append(
            f"贵单位报送的{period.label}{what}数据未能通过审核（{reason or '已退回'}），"
            "目前尚无有效报送，请修改后重新报送。"
        )
    else:
        lines.append(f"截至{_date_label(today)}，我们尚未收到贵单位{period.label}{what}数据。")
    late = (today - due_day).days
    if late > 0:
        lines.append(f"报送截止时间为{due}，现已逾期{late}天，请尽快报送；逾期将按迟报、漏报计入考核。")
    else:
        lines.append(f"报送截止时间为{due}，请按时报送，逾期将按迟报计入考核。")
    lines += [
        "",
        "报送要求：",
        f"1. 使用下发的{period.label}{what}报送模板（Excel，每个集群一行，首列为集群代码，勿改动表头和代码）；",
        "2. 数值填写本年累计或期末数，金额单位为万元，没有发生的请填 0，不要留空；",
        "3. 以 .xlsx 文件报送（.xls、.ods 亦可），已报送被退回的请按退回原因修改后重新报送。",
    ]
    if clusters:
        lines += ["", "需报送的集群：" + "、".join(clusters) + "。"]
    lines += [
        "",
        "如已报送，请忽略本邮件；如有疑问，请直接回复本邮件联系。感谢支持与配合！",
        "",
        issuer,
        _date_label(today),
        "",
        "（本邮件由督导考核系统自动发送）",
    ]
    return subject, "\n".join(lines) + "\n"
