"""Helpers for the intake tests: valid values, filled templates, edits, conversions, DB dumps."""

from __future__ import annotations

import csv
import io
import os
import shutil
import sqlite3
import subprocess
import zipfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

from supervise.intake.templates import fill_template, write_templates
from supervise.periods import TZ, Month, Period, Quarter
from supervise.registry import Registry
from supervise.workspace import Workspace

HUANGHUA = "130983"       # 黄骅市: CZ01 化工, CZ02 模具, CZ03 汽车及零部件, CZ04 五金
RENQIU = "130982"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def monthly_values(reg: Registry, county: str, scale: float = 1.0) -> dict[str, dict[str, Any]]:
    """Plausible, valid monthly values for every cluster of a county."""
    out = {}
    for i, cl in enumerate(reg.clusters_of(county), start=1):
        out[cl.code] = {
            "ent_total": 100 + i,
            "ent_above": 30 + i,
            "ent_above_new_ytd": 2,
            "ent_above_upgraded_ytd": 1,
            "ent_in_park": 60 + i,
            "ent_in_park_new_ytd": 3,
            "revenue_ytd": round(5000.5 * i * scale, 2),
            "revenue_ytd_ly": 4500 * i,
            "profit_ytd": -120.25 if i == 2 else 300 * i,
            "tax_ytd": 200 * i * scale,
            "export_ytd": 0,
            "employees": 1000 + i,
            "tech_invest_ytd": 150 * scale,
            "rd_ytd": 80.5 * scale,
            "land_disposed_ytd": 12.5,
        }
    return out


def quarterly_values(reg: Registry, county: str) -> dict[str, dict[str, Any]]:
    out = {}
    for i, cl in enumerate(reg.clusters_of(county), start=1):
        out[cl.code] = {
            "hitech_ent": 10 + i, "srdi_ent": 5, "little_giant": 1, "platforms": 3,
            "invention_patents": 40 + i, "digital_rate": 62.5, "listed_ent": 0, "ipo_pipeline": 2,
            "standards_ytd": 1, "green_factories": 1,
            "progress": f"完成技改项目{i}个", "problems": "融资难", "next_steps": "推进入园",
        }
    return out


def template_path(ws: Workspace, county: str, period: Period) -> Path:
    folder = ws.outbox_dir / "templates" / str(period)
    found = sorted(folder.glob(f"{county}-*.xlsx")) if folder.exists() else []
    if found:
        return found[0]
    return Path(write_templates(ws, period, county)[0]["path"])


def filled(ws: Workspace, county: str, period: Period, out: Path,
           values: dict[str, dict[str, Any]] | None = None, **changes: Any) -> Path:
    """A filled template; `changes` like CZ01__revenue_ytd='约三千' override single cells."""
    reg = ws.registry
    if values is None:
        values = monthly_values(reg, county) if isinstance(period, Month) else quarterly_values(reg, county)
    values = {k: dict(v) for k, v in values.items()}
    for key, v in changes.items():
        cluster, code = key.split("__")
        values[cluster][code] = v
    out.parent.mkdir(parents=True, exist_ok=True)
    return fill_template(template_path(ws, county, period), values, out)


def edit(path: Path, fn: Callable[[Any], None], out: Path | None = None) -> Path:
    """Open a workbook with openpyxl, let `fn` change the data sheet, save."""
    wb = load_workbook(path)
    fn(wb["填报表"])
    target = out or path
    wb.save(target)
    return target


def rewrite_part(path: Path, part: str, fn: Callable[[bytes], bytes], out: Path) -> Path:
    """Copy a zip container, changing one part's bytes."""
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == part:
                data = fn(data)
            dst.writestr(info, data)
    return out


def long_csv(rows: list[tuple[Any, ...]], out: Path, encoding: str = "utf-8") -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["county_code", "period", "cluster_code", "indicator", "value"])
    w.writerows(rows)
    out.write_bytes(buf.getvalue().encode(encoding))
    return out


def csv_rows(county: str, period: str, values: dict[str, dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(county, period, cl, code, v) for cl, row in values.items() for code, v in row.items()]


def dump(ws: Workspace) -> dict[str, Any]:
    """What a rejected file must not change: states of all versions and every stored value."""
    conn = sqlite3.connect(ws.db_path)
    try:
        states = conn.execute(
            "SELECT id, county_code, period, verdict, state FROM submissions WHERE verdict != 'rejected' "
            "ORDER BY id").fetchall()
        values = conn.execute(
            "SELECT submission_id, cluster_code, indicator, value, text FROM submission_values "
            "ORDER BY 1, 2, 3").fetchall()
    finally:
        conn.close()
    return {"states": states, "values": values}


def soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def convert(files: list[Path], formats: list[str], root: Path) -> dict[str, list[Path]]:
    """Convert with LibreOffice headless, one process per format, all files at once.

    The profile (-env:UserInstallation) is our own, so parallel test runs don't collide.
    """
    exe = soffice()
    assert exe
    profile = root / "profile"
    for fmt in formats:
        outdir = root / fmt
        outdir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            # CSV: comma, double quotes, UTF-8 (76), as "CSV UTF-8" in Excel
            [exe, f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to",
             "csv:Text - txt - csv (StarCalc):44,34,76,1" if fmt == "csv" else fmt,
             "--outdir", str(outdir), *map(str, files)],
            check=True, capture_output=True, timeout=120, env={**os.environ, "HOME": str(profile)},
        )
    out = {fmt: [root / fmt / (f.stem + "." + fmt) for f in files] for fmt in formats}
    for paths in out.values():
        for f in paths:
            assert f.exists(), f"LibreOffice did not write {f}"
    return out


__all__ = ["Month", "Quarter"]
