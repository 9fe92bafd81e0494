"""A demo workspace: realistic synthetic submissions for every county, ingested and assessed.

The numbers are invented but shaped like the real thing: each cluster has an annual revenue
(a few above 100亿, one or two near 500亿), monthly seasonality (a slow February around the
Spring Festival), year-on-year growth around 8 %, enterprise counts that grow through the
year, and quarterly innovation figures that add up to roughly the plan's 2025 goals.
Some counties are late, one misses a month, one sends a file that is rejected and then
resubmits, one slips 元 for 万元 (a data-quality warning): the bulletins have something to say.
Years assessed before the shipped targets (2024) get demo targets (`add_targets`).
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import SuperviseError
from .periods import TZ, Deadlines, Month, Quarter, Year
from .registry import TARGET_NAMES, Cluster, Registry

if TYPE_CHECKING:
    from .workspace import Workspace

# Share of a year's revenue earned in each month (Spring Festival dip in February).
SEASON = [0.075, 0.055, 0.085, 0.085, 0.087, 0.088, 0.082, 0.083, 0.088, 0.087, 0.09, 0.095]

PROGRESS = [
    "推进龙头企业智能化改造，新上自动化生产线{n}条，订单同比增长。",
    "组织企业参加产销对接会{n}场，新签合作协议，集群配套率提升。",
    "新增入园企业{n}家，园区基础设施持续完善。",
]
PROBLEMS = [
    "部分中小企业融资难，技改投入意愿不足。",
    "高端人才引进难，研发能力偏弱。",
    "原材料价格波动较大，企业利润空间收窄。",
]
NEXT_STEPS = [
    "加大规上企业培育力度，推动{n}家企业小升规。",
    "持续开展工业巡诊，帮助企业解决实际困难。",
    "推进低效用地处置，盘活闲置厂房。",
]


@dataclass
class ClusterProfile:
    """The invented but stable facts of one cluster."""

    annual_revenue: float  # 万元, this year
    growth: float  # year-on-year, e.g. 0.08
    ent_total: int
    above_share: float
    park_share: float
    employees_per_ent: int
    margin: float
    tax_rate: float
    export_share: float
    tech_share: float
    rd_share: float


def profiles(registry: Registry, seed: int = 2025) -> dict[str, ClusterProfile]:
    rng = random.Random(seed)
    out = {}
    for i, cluster in enumerate(sorted(registry.clusters.values(), key=lambda c: c.code)):
        # Lognormal around 60亿, a handful above 100亿; two giants (石油化工, 管道装备).
        revenue = rng.lognormvariate(13.3, 0.75)
        if cluster.name in ("石油化工", "管道装备"):
            revenue = rng.uniform(5.2e6, 6.0e6)
        out[cluster.code] = ClusterProfile(
            annual_revenue=round(revenue, -1),
            growth=rng.gauss(0.08, 0.07),
            ent_total=rng.randint(60, 900),
            above_share=rng.uniform(0.12, 0.32),
            park_share=rng.uniform(0.35, 0.8),
            employees_per_ent=rng.randint(25, 90),
            margin=rng.uniform(0.03, 0.09),
            tax_rate=rng.uniform(0.02, 0.045),
            export_share=rng.uniform(0.0, 0.25),
            tech_share=rng.uniform(0.03, 0.09),
            rd_share=rng.uniform(0.01, 0.035),
        )
        del i
    return out


def monthly_values(cluster: Cluster, p: ClusterProfile, month: Month) -> dict[str, float]:
    """One cluster's monthly row: year-to-date flows and end-of-month stocks."""
    m = month.month
    share = sum(SEASON[:m])
    rng = random.Random(f"{cluster.code}-{month.year}")
    revenue = p.annual_revenue * share
    above = round(p.ent_total * p.above_share)
    new_ytd = sum(1 for k in range(m) if random.Random(f"{cluster.code}-n{k}").random() < 0.18)
    up_ytd = sum(1 for k in range(m) if random.Random(f"{cluster.code}-u{k}").random() < 0.3)
    park_new = sum(random.Random(f"{cluster.code}-p{k}").randint(0, 2) for k in range(m))
    total = p.ent_total + park_new + new_ytd
    park = min(total, round(p.ent_total * p.park_share) + park_new)
    del rng
    return {
        "ent_total": total,
        "ent_above": min(total, above + new_ytd + up_ytd),
        "ent_above_new_ytd": new_ytd,
        "ent_above_upgraded_ytd": up_ytd,
        "ent_in_park": park,
        "ent_in_park_new_ytd": park_new,
        "revenue_ytd": round(revenue, 1),
        "revenue_ytd_ly": round(revenue / (1 + p.growth), 1),
        "profit_ytd": round(revenue * p.margin, 1),
        "tax_ytd": round(revenue * p.tax_rate, 1),
        "export_ytd": round(revenue * p.export_share, 1),
        "employees": total * p.employees_per_ent,
        "tech_invest_ytd": round(revenue * p.tech_share, 1),
        "rd_ytd": round(revenue * p.rd_share, 1),
        "land_disposed_ytd": round(m * p.ent_total / 120, 1),
    }


def quarterly_values(cluster: Cluster, p: ClusterProfile, quarter: Quarter) -> dict[str, float | str]:
    rng = random.Random(f"{cluster.code}-{quarter}")
    scale = p.annual_revenue / 1.0e6  # in 100亿
    q = quarter.quarter
    n = rng.randint(1, 5)
    return {
        "hitech_ent": round(12 + 18 * scale + q),
        "srdi_ent": round(6 + 7 * scale + q // 2),
        "little_giant": round(scale * 0.8),
        "platforms": round(1 + 2 * scale),
        "invention_patents": round(40 + 120 * scale + 6 * q),
        "digital_rate": round(min(95.0, 38 + 8 * scale + 2.5 * q + rng.uniform(-5, 5)), 1),
        "listed_ent": round(0.4 + 0.6 * scale),
        "ipo_pipeline": rng.randint(0, 4),
        "standards_ytd": min(q, rng.randint(0, 2) * q // 2),
        "green_factories": rng.randint(0, 3),
        "progress": rng.choice(PROGRESS).format(n=n),
        "problems": rng.choice(PROBLEMS),
        "next_steps": rng.choice(NEXT_STEPS).format(n=n),
    }


def receipt_time(county_code: str, period: Month | Quarter, deadlines: Deadlines) -> datetime | None:
    """When a county's file arrived: most on time, some late, one county missing a month."""
    rng = random.Random(f"{county_code}-{period}")
    due = datetime.combine(deadlines.due_day(period), datetime.min.time(), tzinfo=TZ)
    if county_code == "130924" and str(period) == "2025-02":  # 海兴县 missed February
        return None
    if rng.random() < 0.18:  # late by 1-4 days
        return due + timedelta(days=rng.randint(1, 4), hours=rng.randint(8, 17))
    return due - timedelta(days=rng.randint(0, 4)) + timedelta(hours=rng.randint(8, 17))


def _monthly_row(prof: dict[str, ClusterProfile], month: Month, cluster: Cluster) -> dict[str, float | str]:
    return dict(monthly_values(cluster, prof[cluster.code], month))


def _quarterly_row(prof: dict[str, ClusterProfile], quarter: Quarter, cluster: Cluster) -> dict[str, float | str]:
    return quarterly_values(cluster, prof[cluster.code], quarter)


def add_targets(ws: Workspace, years: list[int]) -> list[int]:
    """Give each assessed year without annual targets some (reference/targets.csv): 90 % of the
    nearest later year's, rounded, as a bureau that raises its targets each year would have set.
    A real workspace's targets come from the bureau; the demo's years before the shipped ones
    would otherwise be refused as not assessable. Returns the years added."""
    import csv

    path = ws.reference_dir / "targets.csv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    have = sorted({int(r["year"]) for r in rows})
    added = []
    for year in sorted(set(years) - set(have)):
        later = [y for y in have if y > year]
        if not later:
            continue
        base = [r for r in rows if int(r["year"]) == later[0]]
        rows += [{**r, "year": str(year), **{k: str(round(0.9 * float(r[k]))) for k in TARGET_NAMES if r[k]}}
                 for r in base]
        added.append(year)
    if added:
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return added


# What a demo (or any workspace) holds at the top of its home: all that `--force` removes, and
# nothing else. supervise.toml, reference/ and rules/ are rewritten from the defaults instead.
DEMO_CONTENT = ("supervise.db", "supervise.db-wal", "supervise.db-shm", "supervise.db-journal",
                "inbox", "archive", "reports", "outbox", "demo-files")


class DemoRefused(SuperviseError):
    """The demo would be built over a workspace that already holds data."""


def _files_in(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file()) if folder.is_dir() and not folder.is_symlink() else 0


def existing_data(home: Path) -> list[str]:
    """What in `home` the demo would mix its data with: files in inbox/ or archive/, job runs in
    the database (every stored submission's file is in archive/, archived before it is read)."""
    from .store.runs import first_run_at
    from .workspace import Workspace

    found = [f"{name}/ 中有 {n} 个文件" for name in ("inbox", "archive") if (n := _files_in(home / name))]
    ws = Workspace(home)
    if ws.exists():
        conn = ws.connect()
        try:
            if first_run_at(conn) is not None:
                found.append("数据库中有任务运行记录")
        finally:
            conn.close()
    return found


def clear_demo(home: Path) -> list[Path]:
    """Remove what a workspace made at the top of `home` (DEMO_CONTENT), never anything outside it:
    a symbolic link is removed, not followed. Returns what was removed."""
    import shutil

    root = home.resolve()
    removed = []
    for name in DEMO_CONTENT:
        path = root / name
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            if path.resolve().parent != root:  # not inside home: leave it
                continue
            shutil.rmtree(path)
        else:
            continue
        removed.append(path)
    return removed


def prepare_home(home: Path, *, force: bool) -> None:
    """Refuse to build over a workspace with data unless `force`, which starts clean (only inside `home`)."""
    from .workspace import SETTINGS_FILE

    found = existing_data(home)
    if not found:
        return
    if not force:
        raise DemoRefused(
            f"{home} 已有数据（{'，'.join(found)}），演示不会写入已有数据的工作目录；"
            f"换一个空目录，或加 --force 清空后重建（删除该目录中的数据库、inbox/、archive/、reports/、"
            f"outbox/、demo-files/，并恢复默认设置） / {home} already holds data; use an empty folder or --force"
        )
    if not (home / SETTINGS_FILE).is_file():
        raise DemoRefused(
            f"{home} 不是 supervise 工作目录（没有 {SETTINGS_FILE}），--force 也不会删除其中的文件；"
            f"请换一个空目录 / {home} is not a supervise workspace: nothing is removed, use an empty folder"
        )
    clear_demo(home)


def build_demo(
    home: Path,
    *,
    months: list[Month],
    quarters: list[Quarter],
    years: list[Year] = [],  # noqa: B006 - read only
    now: datetime,
    echo: Callable[[str], None] = print,
    force: bool = False,
) -> dict[str, object]:
    """Create a demo workspace at `home`, ingest the submissions and run every period.

    A home that already holds data is refused unless `force`, which removes the old database,
    inbox/, archive/, reports/, outbox/ and demo-files/ first and restores the default settings,
    reference files and rulebooks. Returns the home, the accepted count and every bulletin file.
    """
    from .intake.ingest import ingest_files
    from .intake.templates import fill_template, write_templates
    from .jobs import run_period
    from .workspace import Workspace, init_workspace

    prepare_home(home, force=force)
    ws = init_workspace(home, force=force)
    periods: list[Month | Quarter | Year] = [*months, *quarters, *years]
    if add_targets(ws, sorted({p.year for p in periods})):
        ws = Workspace(ws.home)  # the registry again, with the targets just written
    reg = ws.registry
    deadlines = ws.settings.deadlines
    prof = profiles(reg)
    drop = ws.home / "demo-files"
    drop.mkdir(exist_ok=True)
    ingested = 0
    runs: list[dict[str, object]] = []
    bulletins: list[str] = []

    def send(period: Month | Quarter, make: Callable[[Cluster], dict[str, float | str]]) -> None:
        nonlocal ingested
        for t in write_templates(ws, period):
            code = str(t["county_code"])
            received = receipt_time(code, period, deadlines)
            if received is None:
                continue
            values = {c.code: make(c) for c in reg.clusters_of(code)}
            if code == "130929" and str(period) == "2025-03":
                # 献县 first sends March with a text in a number cell: rejected, then corrected.
                bad = {k: dict(v) for k, v in values.items()}
                first = next(iter(bad))
                bad[first]["revenue_ytd"] = "约三千万"
                path = fill_template(Path(str(t["path"])), bad, drop / f"{code}-{period}-first.xlsx")
                ingest_files(ws, [path], county=code, received_at=received - timedelta(days=1), now=now)
            if code == "130925" and str(period) == "2025-03":
                # 盐山县 slips 元 for 万元 on one cluster's exports: accepted with a warning.
                first = next(iter(values))
                values[first]["export_ytd"] = float(values[first]["export_ytd"]) * 10000
            path = fill_template(Path(str(t["path"])), values, drop / f"{code}-{period}.xlsx")
            report = ingest_files(ws, [path], county=code, received_at=received, now=now)
            ingested += sum(1 for f in report.to_json()["files"] if f["verdict"] != "rejected")

    for month in months:
        send(month, functools.partial(_monthly_row, prof, month))
        echo(f"{month}：报送已收取")
    for quarter in quarters:
        send(quarter, functools.partial(_quarterly_row, prof, quarter))
        echo(f"{quarter}：报送已收取")

    for period in periods:
        result = run_period(ws, period, now=now, deliver=False)
        written = [str(path) for path in result.outputs.files.values()]
        bulletins += written
        runs.append({"period": str(period), "bulletins": written})
        echo(f"{period}：通报已写入 {ws.report_dir(period)}")
    accounts = demo_accounts(ws, now=now, echo=echo)
    return {"home": str(ws.home), "files_accepted": ingested, "runs": runs, "bulletins": bulletins,
            "accounts": accounts}


DEMO_COUNTY = "130929"   # 献县: its March file was rejected, then corrected


def demo_accounts(ws: Workspace, *, now: datetime, echo: Callable[[str], None] = print) -> list[dict[str, str]]:
    """One county and one staff account for the web, with new passwords, and how to log in."""
    from .web.users import add_user, generate_password

    made = []
    for name, role, county in (("demo-county", "county", DEMO_COUNTY), ("demo-staff", "staff", None)):
        password = generate_password()
        add_user(ws, name, role, county=county, password=password, now=now)
        made.append({"name": name, "role": role, "county_code": county or "", "password": password})
    echo(f"网页演示：supervise --home {ws.home} serve，然后用浏览器打开 http://127.0.0.1:8000/ 登录：")
    echo(f"  县（市）填报员（{ws.registry.county_name(DEMO_COUNTY)}）：demo-county，密码 {made[0]['password']}")
    echo(f"  市工信局工作人员：demo-staff，密码 {made[1]['password']}")
    echo("  报送情况看板：http://127.0.0.1:8000/staff?period=2025-03")
    return made
