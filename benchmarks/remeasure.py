"""Re-measure ingest and run on files built once by bench_scale.py, without rebuilding them.

bench_scale.py keeps the filled files of each N in <root>/n<N>-files/ (named
<county_code>-<file name>). This script makes one pristine workspace per N (init + the same
registry), then for each repetition copies it afresh, drops the files into inbox/<code>/ and
times, as whole processes, `supervise ingest --json` and `supervise run --month 2025-03
--no-deliver --json`, plus the bare calamine parse. It prints the medians.

    python benchmarks/remeasure.py --root /tmp/bench-work --counties 200 2844 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import HERE, LAST_CPU, MONTH, run_timed, write_registry  # noqa: E402

SETTLE_SECONDS = 6   # longer than the inbox's settle time (5 s): ingest takes the files at once


def pristine(root: Path, n: int, supervise: str) -> Path:
    base = root / f"re-n{n}-base"
    if not base.exists():
        tmp = root / f"re-n{n}-base.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run([supervise, "--home", str(tmp), "init"], check=True, capture_output=True)
        write_registry(tmp, n)
        tmp.rename(base)
    return base


def fresh(root: Path, n: int, base: Path) -> Path:
    home = root / f"re-n{n}"
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(base, home)
    for f in sorted((root / f"n{n}-files").glob("*.xlsx")):
        code, name = f.name.split("-", 1)
        box = home / "inbox" / code
        box.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, box / name)
    # Let the copies (and the removal of the previous workspace) reach the disk first: on a
    # small virtual disk their write-back otherwise slows down every file the ingest creates.
    os.sync()
    time.sleep(SETTLE_SECONDS)
    return home


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path("/tmp/bench-work"))
    ap.add_argument("--counties", type=int, nargs="+", default=[200, 2844])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-run", action="store_true", help="time ingest only")
    ap.add_argument("--out", type=Path, default=None, help="write the medians and raw figures as JSON")
    args = ap.parse_args()
    supervise = shutil.which("supervise") or str(Path(sys.executable).with_name("supervise"))
    root = args.root.resolve()
    rows = []
    for n in args.counties:
        base = pristine(root, n, supervise)
        raw: dict[str, list[float]] = {k: [] for k in ("bare_s", "bare_rss", "ingest_s", "ingest_rss",
                                                       "ingest_cpu_s", "run_s", "run_rss")}
        for _ in range(args.repeat):
            home = fresh(root, n, base)
            env = dict(os.environ, SUPERVISE_HOME=str(home))
            t, r, _out = run_timed([sys.executable, str(HERE / "parse_floor.py"), "calamine",
                                    str(root / f"n{n}-files")])
            raw["bare_s"].append(t)
            raw["bare_rss"].append(r)
            t, r, out = run_timed([supervise, "ingest", "--json"], env)
            files = json.loads(out)["files"]
            assert len(files) == n and not any(f["verdict"] == "rejected" for f in files), "rejections"
            raw["ingest_s"].append(t)
            raw["ingest_rss"].append(r)
            raw["ingest_cpu_s"].append(LAST_CPU[0])   # user + system, main process and workers
            if not args.skip_run:
                t, r, out = run_timed([supervise, "run", "--month", MONTH, "--no-deliver", "--json"], env)
                assert len(json.loads(out)["assessments"][0]["ranking"]) == n
                raw["run_s"].append(t)
                raw["run_rss"].append(r)
        med = {k: round(statistics.median(v), 2) for k, v in raw.items() if v}
        row = {"counties": n, "repeat": args.repeat, **med, "raw": {k: [round(x, 3) for x in v]
                                                                     for k, v in raw.items() if v}}
        if med.get("bare_s"):
            row["ingest_over_bare"] = round(med["ingest_s"] / med["bare_s"], 2)
        if med.get("run_s"):
            row["run_over_ingest"] = round(med["run_s"] / med["ingest_s"], 2)
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "raw"}), flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
