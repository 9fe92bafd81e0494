"""The workspace (home folder): settings, paths, the registry and the database.

    <home>/supervise.toml   settings
    <home>/supervise.db     SQLite database
    <home>/reference/       counties.csv, clusters.csv, targets.csv, indicators.csv
    <home>/rules/           rulebooks (*.toml)
    <home>/inbox/           files waiting to be collected; inbox/<county_code>/ names the sender
    <home>/archive/         every file received, unchanged (content-addressed by SHA-256)
    <home>/reports/<period>/ bulletins and results JSON
    <home>/outbox/          blank templates, mail that could not be sent
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import tempfile
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from .assets import shipped
from .errors import SuperviseError
from .periods import Deadlines
from .registry import Registry, default_data_dir, load_registry
from .tomlcheck import TomlChecker

SETTINGS_FILE = "supervise.toml"
DB_FILE = "supervise.db"
FOLDERS = ("reference", "rules", "jobs", "inbox", "archive", "reports", "outbox")
SCHEDULE_FILE = "schedule.toml"
REFERENCE_FILES = ("counties.csv", "clusters.csv", "targets.csv", "indicators.csv", "goals.csv")
# A bare address: a dot-atom local part (RFC 5321) @ a domain of letters, digits and hyphens with
# at least one dot. No display name, no <>, no spaces, no line breaks (they would forge headers).
ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
)


class WorkspaceError(SuperviseError, RuntimeError):
    """The workspace is missing or its settings are wrong."""


def _defaults() -> dict[str, dict[str, Any]]:
    with open(default_data_dir() / SETTINGS_FILE, "rb") as f:
        return tomllib.load(f)


@dataclass(frozen=True)
class Bureau:
    """[bureau]: who issues the bulletins, and the city in their titles."""

    issuer: str
    city: str


ATTACHMENTS = ("xlsx", "html", "docx", "pdf")


@dataclass(frozen=True)
class BulletinSettings:
    """[bulletin]: the 通报 as an official document (版头, 文号, 主送, 版记) and what the mail attaches."""

    issuer: str                   # 发文机关标志 and signature; "" = [bureau] issuer
    number: str                   # 文号 pattern: {year}, {seq}; "" = none
    addressee: str                # 主送机关
    printed_by: str               # 印发机关; "" = the issuer
    cc: str                       # 抄送; "" = none
    attach: tuple[str, ...]       # of ATTACHMENTS


@dataclass(frozen=True)
class SmtpSettings:
    """[smtp]: the mail server."""

    host: str
    port: int
    username: str = ""
    password: str = ""
    starttls: bool = False
    ssl: bool = False
    sender: str = "supervise@localhost"
    timeout: float = 30.0


@dataclass(frozen=True)
class ImapSettings:
    """[imap]: the 报送 mailbox that `collect` reads (off while host is empty)."""

    host: str
    port: int = 993
    username: str = ""
    password: str = ""
    ssl: bool = True
    starttls: bool = False
    folder: str = "INBOX"
    done_folder: str = "Processed"
    aside_folder: str = "Set-aside"
    timeout: float = 60.0
    max_message_bytes: int = 30_000_000
    max_attachments: int = 20

    @property
    def enabled(self) -> bool:
        return bool(self.host)


@dataclass(frozen=True)
class DeliverySettings:
    """[delivery]: who gets the bulletins and the alerts, and how hard to try."""

    recipients: tuple[str, ...] = ()
    admin: str = ""
    attempts: int = 3
    retry_delay: float = 2.0


@dataclass(frozen=True)
class ReminderDays:
    """[deadlines] remind_days_before / remind_days_after: days around a deadline to remind on."""

    before: tuple[int, ...] = ()
    after: tuple[int, ...] = ()

    @classmethod
    def of(cls, deadlines: dict[str, Any]) -> ReminderDays:
        """From a [deadlines] table (the keys are optional here: a table may omit them)."""
        return cls(
            tuple(int(n) for n in deadlines.get("remind_days_before", ())),
            tuple(int(n) for n in deadlines.get("remind_days_after", ())),
        )


@dataclass(frozen=True)
class AssessmentSettings:
    """[assessment]: how much of what a rulebook needs must be there before a period is ranked."""

    min_coverage: float


@dataclass(frozen=True)
class JobSettings:
    """[jobs]: how long a job waits for a lock; how late a scheduled job may still start."""

    lock_wait: float
    misfire_grace: int


@dataclass(frozen=True)
class ReportSettings:
    """[reports]: the permissions of the bulletin files, whatever the umask."""

    file_mode: int


# "0640", "640": three octal digits (a leading 0 allowed), no setuid/setgid/sticky bits.
FILE_MODE = re.compile(r"0?[0-7]{3}")


@dataclass
class Settings:
    """Settings from supervise.toml, each section a dict, defaults filled in.

    The typed accessors (bureau, bulletin, smtp, delivery, reminder_days, assessment, jobs, reports) read keys that
    `load_settings` always fills from data/supervise.toml: no default is repeated here.
    """

    data: dict[str, dict[str, Any]] = field(default_factory=_defaults)

    def section(self, name: str) -> dict[str, Any]:
        return self.data.get(name, {})

    def get(self, section: str, key: str) -> Any:
        return self.data[section][key]

    @property
    def deadlines(self) -> Deadlines:
        d = self.section("deadlines")
        return Deadlines(monthly_day=int(d["monthly_day"]), quarterly_day=int(d["quarterly_day"]))

    @property
    def limits(self) -> dict[str, Any]:
        return self.section("limits")

    @property
    def validation(self) -> dict[str, Any]:
        return self.section("validation")

    @property
    def bureau(self) -> Bureau:
        b = self.section("bureau")
        return Bureau(issuer=str(b["issuer"]), city=str(b["city"]))

    @property
    def bulletin(self) -> BulletinSettings:
        d = self.section("bulletin")
        return BulletinSettings(
            issuer=str(d["issuer"]) or self.bureau.issuer,
            number=str(d["number"]),
            addressee=str(d["addressee"]),
            printed_by=str(d["printed_by"]),
            cc=str(d["cc"]),
            attach=tuple(str(a) for a in d["attach"]),
        )

    @property
    def smtp(self) -> SmtpSettings:
        s = self.section("smtp")
        return SmtpSettings(
            host=str(s["host"]),
            port=int(s["port"]),
            username=str(s["username"]),
            password=str(s["password"]),
            starttls=bool(s["starttls"]),
            ssl=bool(s["ssl"]),
            sender=str(s["sender"]),
            timeout=float(s["timeout_seconds"]),
        )

    @property
    def imap(self) -> ImapSettings:
        i = self.section("imap")
        return ImapSettings(
            host=str(i["host"]), port=int(i["port"]), username=str(i["username"]), password=str(i["password"]),
            ssl=bool(i["ssl"]), starttls=bool(i["starttls"]), folder=str(i["folder"]),
            done_folder=str(i["done_folder"]), aside_folder=str(i["aside_folder"]),
            timeout=float(i["timeout_seconds"]), max_message_bytes=int(i["max_message_bytes"]),
            max_attachments=int(i["max_attachments"]),
        )

    @property
    def delivery(self) -> DeliverySettings:
        d = self.section("delivery")
        return DeliverySettings(
            recipients=tuple(str(r) for r in d["recipients"]),
            admin=str(d["admin"]),
            attempts=max(1, int(d["attempts"])),
            retry_delay=float(d["retry_delay_seconds"]),
        )

    @property
    def reminder_days(self) -> ReminderDays:
        return ReminderDays.of(self.section("deadlines"))

    @property
    def assessment(self) -> AssessmentSettings:
        return AssessmentSettings(min_coverage=float(self.section("assessment")["min_coverage"]))

    @property
    def jobs(self) -> JobSettings:
        j = self.section("jobs")
        return JobSettings(lock_wait=float(j["lock_wait_seconds"]), misfire_grace=int(j["misfire_grace_seconds"]))

    @property
    def reports(self) -> ReportSettings:
        return ReportSettings(file_mode=int(str(self.section("reports")["file_mode"]), 8))


def load_settings(path: Path) -> Settings:
    """Read supervise.toml over the defaults; unknown sections/keys and wrong types are refused."""
    defaults = _defaults()
    if not path.exists():
        return Settings(defaults)
    try:
        with open(path, "rb") as f:
            user = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise WorkspaceError(f"{path}: not valid TOML: {exc}") from exc
    merged = {k: dict(v) for k, v in defaults.items()}
    keys = {name: tuple(sorted(section)) for name, section in defaults.items()}
    check = TomlChecker(str(path), WorkspaceError, {"": tuple(sorted(defaults)), **keys})
    check.known(user, "", "", what="section")
    for section, values in user.items():
        if not isinstance(values, dict):
            raise check.fail(f"[{section}]", f"[{section}] must be a table（须为表）")
        check.known(values, section, f"[{section}]")
        for key in values:
            merged[section][key] = check.typed(values, key, f"[{section}] {key}", defaults[section][key])
    _check_addresses(path, merged["delivery"])
    _check_coverage(path, merged["assessment"])
    _check_file_mode(path, merged["reports"])
    _check_imap(path, merged["imap"])
    _check_bulletin(path, merged["bulletin"])
    return Settings(merged)


def _check_bulletin(path: Path, bulletin: dict[str, Any]) -> None:
    """[bulletin] number and attach, refused here rather than when the period's 通报 is written."""
    try:
        bulletin["number"].format(year=2025, seq="")
    except (KeyError, IndexError, ValueError) as exc:
        raise WorkspaceError(
            f"{path}: [bulletin] number {bulletin['number']!r}: 只能使用 {{year}} 和 {{seq}} / only {{year}} "
            f"and {{seq}} may be used ({exc})"
        ) from exc
    for item in bulletin["attach"]:
        if item not in ATTACHMENTS:
            raise WorkspaceError(
                f"{path}: [bulletin] attach: {item!r} 不是可附带的文件 / is not an attachment; "
                f"known: {', '.join(ATTACHMENTS)}"
            )


def _check_imap(path: Path, imap: dict[str, Any]) -> None:
    """[imap] folders, refused here: a mailbox read with nowhere distinct to put what was read
    would be read again at every collect."""
    if not imap["host"]:
        return
    names = [imap["folder"], imap["done_folder"], imap["aside_folder"]]
    if not all(n.strip() for n in names) or len(set(names)) != 3:
        raise WorkspaceError(
            f"{path}: [imap] folder, done_folder and aside_folder must be three different, non-empty "
            f"folder names, not {names!r}"
        )


def _check_file_mode(path: Path, reports: dict[str, Any]) -> None:
    """[reports] file_mode, refused here: a typo would otherwise publish files nobody may read."""
    text = reports["file_mode"]
    why = ""
    if not FILE_MODE.fullmatch(text):
        why = "须为八进制权限字符串，如 \"0640\" / must be an octal mode string such as \"0640\""
    else:
        mode = int(text, 8)
        if mode & 0o600 != 0o600:
            why = "文件所有者须可读写（6xx）/ the owner must keep read and write (06xx)"
        elif mode & 0o022:
            why = "只有所有者可写（组和其他用户不可写）/ only the owner may write (no group or other write)"
    if why:
        raise WorkspaceError(f"{path}: [reports] file_mode {text!r}: {why}")


def _check_coverage(path: Path, assessment: dict[str, Any]) -> None:
    """[assessment] min_coverage is a share: refused here, not in the middle of a run."""
    share = assessment["min_coverage"]
    if not 0 <= share <= 1:
        raise WorkspaceError(
            f"{path}: [assessment] min_coverage must be a share from 0 to 1 (0.5 = half of the "
            f"counties), not {share!r}"
        )


def _check_addresses(path: Path, delivery: dict[str, Any]) -> None:
    """[delivery] recipients and admin, refused here, naming the entry.

    Otherwise a bad one would only fail when its mail is built, and take the run with it.
    """
    entries: list[tuple[str, object]] = [("recipients", r) for r in delivery["recipients"]]
    if delivery["admin"]:
        entries.append(("admin", delivery["admin"]))
    for key, entry in entries:
        if not (isinstance(entry, str) and ADDRESS.fullmatch(entry)):
            raise WorkspaceError(
                f"{path}: [delivery] {key}: {entry!r} 不是邮件地址 / is not an e-mail address; "
                "write the bare address, e.g. chief@bureau.example (no name, no <>, no spaces or line breaks)"
            )


@dataclass
class Workspace:
    """A supervise home folder. Cheap to create; opens things lazily."""

    home: Path

    def __post_init__(self) -> None:
        self.home = Path(self.home).resolve()

    # ---- paths
    @property
    def settings_path(self) -> Path:
        return self.home / SETTINGS_FILE

    @property
    def db_path(self) -> Path:
        return self.home / DB_FILE

    @property
    def reference_dir(self) -> Path:
        return self.home / "reference"

    @property
    def rules_dir(self) -> Path:
        return self.home / "rules"

    @property
    def schedule_path(self) -> Path:
        """jobs/schedule.toml: the schedule that runs (copied from the shipped one by init)."""
        return self.home / "jobs" / SCHEDULE_FILE

    @property
    def templates_dir(self) -> Path:
        """reports/templates/: the bureau's own versions of shipped templates, if any."""
        return self.home / "reports" / "templates"

    @property
    def inbox_dir(self) -> Path:
        return self.home / "inbox"

    @property
    def archive_dir(self) -> Path:
        return self.home / "archive"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"

    def report_dir(self, period: object) -> Path:
        return self.reports_dir / str(period)

    def exists(self) -> bool:
        return self.settings_path.exists() and self.db_path.exists()

    def require(self) -> Workspace:
        if not self.exists():
            raise WorkspaceError(
                f"{self.home} is not a supervise workspace; run `supervise --home {self.home} init`"
            )
        return self

    # ---- loaded things
    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.settings_path)

    @cached_property
    def registry(self) -> Registry:
        return load_registry(self.reference_dir)

    def connect(self) -> sqlite3.Connection:
        """Open the database, migrated to the current schema."""
        from .store import connect

        return connect(self.db_path)


def atomic_write(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write `data` to `path` via a temporary file in the same folder, fsync'd, then renamed.

    A crash leaves the old file or the new one, never half of one. The file is 0600 (the
    temporary file's mode) unless `mode` says otherwise; a chmod, so the umask has no say.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def home_from(option: str | os.PathLike[str] | None) -> Path:
    """--home, else $SUPERVISE_HOME, else the current folder."""
    if option:
        return Path(option)
    env = os.environ.get("SUPERVISE_HOME")
    return Path(env) if env else Path.cwd()


def init_workspace(home: Path, *, force: bool = False, start_empty: bool = False) -> Workspace:
    """Create the folders, a commented supervise.toml, the database, reference/ and rules/.

    Existing files are kept (a bureau's edits are never overwritten) unless `force`. A missing
    database beside a non-empty archive/ is refused unless `start_empty`: the database was lost,
    and an empty one made silently would hide that until the next bulletin came out blank.
    """
    ws = Workspace(home)
    if not start_empty and not ws.db_path.exists() and ws.archive_dir.is_dir():
        archived = sum(1 for p in ws.archive_dir.rglob("*") if p.is_file())
        if archived:
            raise WorkspaceError(
                f"数据库 {DB_FILE} 不存在，但 archive/ 中有 {archived} 个已归档文件：请从备份恢复 "
                f"{ws.db_path}；确需从空数据库重新开始（archive/ 保持不变），运行 "
                f"`supervise --home {ws.home} init --start-empty` / the database is missing while "
                f"{archived} archived file(s) exist: restore {DB_FILE} from a backup, or start an "
                "empty database on purpose with `init --start-empty` (the archive stays as it is)"
            )
    ws.home.mkdir(parents=True, exist_ok=True)
    for name in FOLDERS:
        (ws.home / name).mkdir(exist_ok=True)
    data = default_data_dir()
    if force or not ws.settings_path.exists():
        shutil.copyfile(data / SETTINGS_FILE, ws.settings_path)
    for name in REFERENCE_FILES:
        target = ws.reference_dir / name
        if force or not target.exists():
            shutil.copyfile(data / name, target)
    for rule in sorted((data / "rules").glob("*.toml")):
        target = ws.rules_dir / rule.name
        if force or not target.exists():
            shutil.copyfile(rule, target)
    if force or not ws.schedule_path.exists():
        shutil.copyfile(shipped("jobs") / SCHEDULE_FILE, ws.schedule_path)
    ws.connect().close()
    # Validate what we created (also catches a broken existing file).
    _ = ws.settings
    _ = ws.registry
    return ws
