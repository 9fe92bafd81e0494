"""Scale benchmark: N counties x 3 clusters through the public contracts only.

For each N it builds a workspace (`supervise init`), writes a registry of N counties into
`reference/`, runs `supervise templates --month`, fills every template with openpyxl (finding the
indicator codes in the header row and the cluster codes in column A, as a county would), drops
them into `inbox/<county_code>/`, then times as whole processes:

- `supervise templates --month M --json`
- `supervise ingest --json`                  (everything in the inbox)
- `supervise run --month M --no-deliver --json` (assess + render)
- the floor: a bare python-calamine parse of the same files (`to_python()` of every sheet)
- what a user would write: `pandas.read_excel(engine="openpyxl")` of every file

and reports wall seconds, peak RSS (of the child process) and the ratios the issue sets as goals.

    python benchmarks/bench_scale.py --counties 14 200 2844 --out docs/bench-results.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

MONTH = "2025-03"
HERE = Path(__file__).resolve().parent


LAST_CPU = [0.0]   # CPU seconds (user + system) of the last run_timed command and its children


def run_timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run a child process; return (wall seconds, peak RSS MB of that child, stdout)."""
    # Each command runs under a fresh `python -c` wrapper so RUSAGE_CHILDREN is its own.
    wrapper = [
        sys.executable, "-c",
        "import resource,subprocess,sys,time,json;"
        "t=time.perf_counter();p=subprocess.run(sys.argv[1:],stdout=subprocess.PIPE);"
        "w=time.perf_counter()-t;"
        "u=resource.getrusage(resource.RUSAGE_CHILDREN);r=u.ru_maxrss/1024;"
        "sys.stderr.write(json.dumps({'wall':w,'rss':r,'cpu':u.ru_utime+u.ru_stime,'rc':p.returncode})+'\\n');"
        "sys.stdout.buffer.write(p.stdout)",
        *cmd,
    ]
    p = subprocess.run(wrapper, capture_output=True, env=env, text=True)
    meta = json.loads(p.stderr.strip().splitlines()[-1])
    LAST_CPU[0] = meta.get("cpu", 0.0)
    if meta["rc"] != 0:
        raise SystemExit(f"command failed ({meta['rc']}): {' '.join(cmd)}\n{p.stderr[-3000:]}")
    return meta["wall"], meta["rss"], p.stdout


def write_registry(home: Path, n: int) -> list[str]:
    """N counties (6-digit codes), 3 clusters each, written over the default registry."""
    ref = home / "reference"
    codes = [f"{100000 + i:06d}" for i in range(n)]
    with open(ref / "counties.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["county_code", "county_name", "kind", "assessed", "email"])
        for i, code in enumerate(codes):
            w.writerow([code, f"测试县{i + 1:04d}", "县", "yes", ""])
    with open(ref / "clusters.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["cluster_code", "county_code", "county_name", "cluster_name"])
        for i, code in enumerate(codes):
            for k in range(3):
                w.writerow([f"X{i:04d}{k}", code, f"测试县{i + 1:04d}", ["化工", "铸造", "食品"][k]])
    with open(ref / "targets.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["county_code", "year", "above_net_new", "park_new", "land_disposed"])
        for code in codes:
            w.writerow([code, 2025, 12, 20, 200])
    return codes


def fill(path: Path, out: Path, rng: random.Random) -> None:
    """Fill a template as a county would: find codes in the header, clusters in column A."""
    from openpyxl import load_workbook

    wb = load_workbook(path)
    ws = wb.worksheets[0]
    header_row, columns = None, {}
    for row in ws.iter_rows(min_row=1, max_row=15):
        found = {c.value: c.column for c in row if isinstance(c.value, str) and c.value.islower()}
        if "revenue_ytd" in found:
            header_row, columns = row[0].row, found
            break
    assert header_row, f"no indicator codes in {path}"
    for r in range(header_row + 1, ws.max_row + 1):
        code = ws.cell(r, 1).value
        if not code:
            continue
        total = rng.randint(80, 600)
        revenue = rng.uniform(2e4, 9e5)
        vals = {
            "ent_total": total, "ent_above": total // 4, "ent_above_new_ytd": rng.randint(0, 3),
            "ent_above_upgraded_ytd": rng.randint(0, 4), "ent_in_park": total // 2,
            "ent_in_park_new_ytd": rng.randint(0, 6), "revenue_ytd": round(revenue, 1),
            "revenue_ytd_ly": round(revenue / rng.uniform(0.9, 1.2), 1),
            "profit_ytd": round(revenue * 0.05, 1), "tax_ytd": round(revenue * 0.03, 1),
            "export_ytd": round(revenue * 0.1, 1), "employees": total * 40,
            "tech_invest_ytd": round(revenue * 0.05, 1), "rd_ytd": round(revenue * 0.02, 1),
            "land_disposed_ytd": round(rng.uniform(0, 80), 1),
        }
        for key, col in columns.items():
            if key in vals:
                ws.cell(r, col).value = vals[key]
    wb.save(out)


def bench(n: int, root: Path, supervise: str, naive_limit: int) -> dict[str, float]:
    home = root / f"n{n}"
    if home.exists():
        shutil.rmtree(home)
    env = dict(os.environ, SUPERVISE_HOME=str(home))
    subprocess.run([supervise, "init"], env=env, check=True, capture_output=True)
    write_registry(home, n)
    t_templates, rss_templates, out = run_timed([supervise, "templates", "--month", MONTH, "--json"], env)
    templates = json.loads(out)["templates"]
    assert len(templates) == n, (len(templates), n)

    rng = random.Random(n)
    files = []
    for t in templates:
        box = home / "inbox" / t["county_code"]
        box.mkdir(parents=True, exist_ok=True)
        dest = box / Path(t["path"]).name
        fill(Path(t["path"]), dest, rng)
        files.append(dest)
    for f in files:   # arrived a minute ago: settled, ingest takes them at once
        os.utime(f, (time.time() - 60, time.time() - 60))
    copy = root / f"n{n}-files"  # the same files, kept for the parse baselines
    if copy.exists():
        shutil.rmtree(copy)
    copy.mkdir()
    for f in files:
        shutil.copy(f, copy / f"{f.parent.name}-{f.name}")

    t_bare, rss_bare, _ = run_timed([sys.executable, str(HERE / "parse_floor.py"), "calamine", str(copy)])
    t_ingest, rss_ingest, out = run_timed([supervise, "ingest", "--json"], env)
    verdicts = [f["verdict"] for f in json.loads(out)["files"]]
    assert verdicts.count("rejected") == 0, f"{verdicts.count('rejected')} files rejected"
    t_run, rss_run, out = run_timed([supervise, "run", "--month", MONTH, "--no-deliver", "--json"], env)
    ranking = json.loads(out)["assessments"][0]["ranking"]
    assert len(ranking) == n
    naive_files = min(n, naive_limit)
    t_naive, rss_naive, _ = run_timed(
        [sys.executable, str(HERE / "parse_floor.py"), "pandas", str(copy), str(naive_files)]
    )
    t_naive_all = t_naive * n / naive_files
    return {
        "counties": n,
        "files": len(files),
        "templates_s": round(t_templates, 2),
        "templates_rss_mb": round(rss_templates),
        "bare_calamine_s": round(t_bare, 2),
        "bare_calamine_rss_mb": round(rss_bare),
        "ingest_s": round(t_ingest, 2),
        "ingest_rss_mb": round(rss_ingest),
        "run_s": round(t_run, 2),
        "run_rss_mb": round(rss_run),
        "naive_pandas_openpyxl_s": round(t_naive_all, 2),
        "naive_measured_files": naive_files,
        "ingest_over_bare": round(t_ingest / t_bare, 2),
        "run_over_ingest": round(t_run / t_ingest, 2),
        "naive_over_ingest": round(t_naive_all / t_ingest, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counties", type=int, nargs="+", default=[14, 200, 2844])
    ap.add_argument("--root", type=Path, default=Path("bench-work"))
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    ap.add_argument("--naive-limit", type=int, default=400,
                    help="files read by the naive pandas loop (time scaled to all files)")
    args = ap.parse_args()
    supervise = shutil.which("supervise") or str(Path(sys.executable).with_name("supervise"))
    args.root.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.counties:
        t0 = time.perf_counter()
        row = bench(n, args.root.resolve(), supervise, args.naive_limit)
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
        print(f"  (N={n} built and measured in {time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    by_n = {r["counties"]: r for r in rows}
    if 200 in by_n and 2844 in by_n:
        for key in ("ingest_s", "run_s", "templates_s"):
            print(f"{key} time(2844)/time(200) = {by_n[2844][key] / by_n[200][key]:.1f}")
    if args.out:
        args.out.write_text(json.dumps(rows, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
