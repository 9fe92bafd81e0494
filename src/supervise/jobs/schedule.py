"""The schedule (jobs/schedule.toml): one declaration, read by the scheduler and by `crontab`.

Cron expressions in the file may hold words in braces ({monthly_after}, {remind_monthly}, ...)
that are filled from the settings' deadlines; `load_schedule` returns plain five-field cron
expressions, checked by APScheduler's own parser.
"""

from __future__ import annotations

import logging
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..assets import shipped
from ..errors import SuperviseError
from ..periods import TZ
from ..workspace import SCHEDULE_FILE, ReminderDays

JOB_NAMES = ("collect", "remind", "run_month", "run_quarter", "run_year", "catch_up")
QUARTER_MONTHS = "1,4,7,10"


class ScheduleError(SuperviseError, ValueError):
    """jobs/schedule.toml, or the deadlines it derives from, cannot be used."""


@dataclass(frozen=True)
class Entry:
    name: str                 # a job in JOB_NAMES
    description: str
    command: tuple[str, ...]  # `supervise` arguments
    cron: tuple[str, ...]     # five-field expressions, placeholders filled

    def triggers(self) -> Any:
        """The APScheduler trigger: one CronTrigger, or an OrTrigger of several."""
        from apscheduler.triggers.combining import OrTrigger
        from apscheduler.triggers.cron import CronTrigger

        triggers = [CronTrigger.from_crontab(expr, timezone=TZ) for expr in self.cron]
        return triggers[0] if len(triggers) == 1 else OrTrigger(triggers)


@dataclass(frozen=True)
class Schedule:
    entries: tuple[Entry, ...]

    def entry(self, name: str) -> Entry:
        for e in self.entries:
            if e.name == name:
                return e
        raise KeyError(name)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.entries)


log = logging.getLogger("supervise.jobs")


def schedule_path() -> Path:
    """The shipped schedule (the top-level jobs/ folder); a workspace runs its own copy."""
    return shipped("jobs") / SCHEDULE_FILE


def placeholders(deadlines: dict[str, Any]) -> dict[str, str]:
    """The words schedule.toml may use, from supervise.toml [deadlines]."""
    monthly = int(deadlines["monthly_day"])
    quarterly = int(deadlines["quarterly_day"])
    reminders = ReminderDays.of(deadlines)
    before, after = reminders.before, reminders.after

    def days(what: str, due: int, run_day: int) -> str:
        out = sorted({due - n for n in before} | {due + n for n in after})
        bad = [d for d in out if not 1 <= d <= 28]
        if bad:
            raise ScheduleError(
                f"supervise.toml [deadlines]: a reminder for {what} would fall on day {bad[0]}; "
                "reminder days (deadline day minus remind_days_before, plus remind_days_after) "
                "must lie between 1 and 28"
            )
        late = [d for d in out if d >= run_day]
        if late:  # the run publishes 漏报 in the morning: a 催报 after it contradicts the bulletin
            log.warning(
                "supervise.toml [deadlines]: %s的催报日 %s 日不早于通报运行日 %d 日，通报公布漏报后不再催报，已略去；"
                "截止当天催报请用 remind_days_before 中的 0 / reminder day(s) %s for %s come after the run "
                "on day %d publishes 漏报 and are left out", what, "、".join(map(str, late)), run_day,
                late, what, run_day)
            out = [d for d in out if d < run_day]
        return ",".join(str(d) for d in out) if out else ""

    for what, day in (("monthly_day", monthly), ("quarterly_day", quarterly)):
        if not 1 <= day + 1 <= 28:
            raise ScheduleError(
                f"supervise.toml [deadlines] {what} = {day}: the run the day after must fall on "
                "day 1..28; choose a day between 1 and 27"
            )
    # a quarter's run also reads its last month: it waits for both deadlines
    quarterly_after = max(quarterly, monthly) + 1
    return {
        "monthly_day": str(monthly),
        "quarterly_day": str(quarterly),
        "monthly_after": str(monthly + 1),
        "quarterly_after": str(quarterly_after),
        "quarter_months": QUARTER_MONTHS,
        "remind_monthly": days("monthly data", monthly, monthly + 1),
        "remind_quarterly": days("quarterly data", quarterly, quarterly_after),
    }


def load_schedule(deadlines: dict[str, Any], path: Path | None = None) -> Schedule:
    """Read schedule.toml and fill its cron expressions from the deadlines."""
    from apscheduler.triggers.cron import CronTrigger

    path = path or schedule_path()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ScheduleError(f"{path}: {exc}") from exc
    words = placeholders(deadlines)
    entries = []
    for i, item in enumerate(raw.get("jobs", []), start=1):
        where = f"{path}, [[jobs]] #{i}"
        name = item.get("name")
        if name not in JOB_NAMES:
            raise ScheduleError(f"{where}: name {name!r} is not one of {', '.join(JOB_NAMES)}")
        crons = item.get("cron")
        if isinstance(crons, str):
            crons = [crons]
        if not crons or not all(isinstance(c, str) for c in crons):
            raise ScheduleError(f"{where}: cron must be a list of cron expressions")
        filled = []
        for expr in crons:
            try:
                text = expr.format(**words)
            except KeyError as exc:
                raise ScheduleError(
                    f"{where}: unknown word {{{exc.args[0]}}} in {expr!r}; known: "
                    + ", ".join("{" + w + "}" for w in words)
                ) from None
            if any(f == "" for f in text.split(" ")):
                # e.g. {remind_monthly} with no reminder days configured: no such line.
                continue
            if len(text.split()) != 5:
                raise ScheduleError(f"{where}: {text!r} must have five fields")
            try:
                CronTrigger.from_crontab(text, timezone=TZ)
            except ValueError as exc:
                raise ScheduleError(f"{where}: {text!r}: {exc}") from exc
            filled.append(text)
        command = item.get("command")
        if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
            raise ScheduleError(f"{where}: command must be a list of strings")
        entries.append(Entry(name, str(item.get("description", "")), tuple(command), tuple(filled)))
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise ScheduleError(f"{path}: a job is declared twice")
    return Schedule(tuple(entries))


# ------------------------------------------------------------------ crontab


def crontab_text(schedule: Schedule, *, home: Path, executable: str) -> str:
    """Cron lines for every job, for `crontab -e` (what `supervise crontab` prints)."""
    # `executable` may be a command of several words (`/usr/bin/python3 -m supervise`).
    command = " ".join(shlex.quote(word) for word in shlex.split(executable))
    base = f"{command} --home {shlex.quote(str(home))}"
    lines = [
        "# supervise: the schedule of jobs/schedule.toml (generated by `supervise crontab`).",
        "# Install with `supervise crontab | crontab -` as the user that owns the workspace.",
        "# Each job records itself in job_runs (`supervise runs`) and mails [delivery] admin",
        "# when it fails; its stderr goes to cron, which mails it to MAILTO.",
        "CRON_TZ=Asia/Shanghai",
        "SHELL=/bin/sh",
        "",
    ]
    for entry in schedule:
        lines.append(f"# {entry.name}: {entry.description}")
        for expr in entry.cron:
            lines.append(f"{expr} {base} {' '.join(shlex.quote(a) for a in entry.command)}")
        lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------ systemd timers


def on_calendar(expr: str) -> str:
    """A systemd OnCalendar= value for a cron expression of numbers, lists and `*`."""
    minute, hour, dom, month, dow = expr.split()
    if dow != "*":
        raise ScheduleError(f"{expr!r}: day-of-week is not supported for systemd timers")

    def field(text: str, width: int = 2) -> str:
        if text == "*":
            return "*"
        parts = text.split(",")
        if not all(p.isdigit() for p in parts):
            raise ScheduleError(f"{expr!r}: only numbers, lists and * convert to OnCalendar")
        return ",".join(p.zfill(width) for p in parts)

    return f"*-{field(month)}-{field(dom)} {field(hour)}:{field(minute)}:00 Asia/Shanghai"


def unit_name(entry: Entry) -> str:
    return "supervise-" + entry.name.replace("_", "-")


def systemd_units(schedule: Schedule, *, home: Path, executable: str, user: str = "supervise") -> dict[str, str]:
    """A .service and a .timer per job: the alternative to `supervise scheduler`."""
    units: dict[str, str] = {}
    for entry in schedule:
        name = unit_name(entry)
        args = " ".join(shlex.quote(a) for a in entry.command)
        units[f"{name}.service"] = (
            "[Unit]\n"
            f"Description=supervise {entry.name}: {entry.description}\n"
            "After=network-online.target\n"
            "Wants=network-online.target\n"
            "\n"
            "[Service]\n"
            "Type=oneshot\n"
            f"User={user}\n"
            f"Environment=SUPERVISE_HOME={home}\n"
            f"ExecStart={executable} --home {home} {args}\n"
        )
        calendars = "".join(f"OnCalendar={on_calendar(expr)}\n" for expr in entry.cron)
        units[f"{name}.timer"] = (
            "[Unit]\n"
            f"Description=supervise {entry.name} on schedule (jobs/schedule.toml)\n"
            "\n"
            "[Timer]\n"
            f"{calendars}"
            "# Run at boot what was missed while the server was off.\n"
            "Persistent=true\n"
            "\n"
            "[Install]\n"
            "WantedBy=timers.target\n"
        )
    return units
