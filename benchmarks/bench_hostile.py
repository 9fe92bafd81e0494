"""Hostile corpus beside good files: one collect, nothing lost, memory bounded.

Builds a workspace of N counties (the scale benchmark's registry and filled templates, through
the public commands), drops into the inbox beside the N good files a corpus that once stopped
every collect or cost gigabytes:

- xlsx asking calamine for a ~100 GB grid (a cell at WXY200000 with single-quoted attributes;
  200,000 rows without `r`; a lying <dimension>),
- a file within every limit whose grid costs hundreds of MB (499 × 9,999 cells),
- a 2 GB sparse file, a 500,000-row CSV, a CSV in two encodings, a zip bomb,
- with LibreOffice on PATH: .xls and .ods with a cell at IV65536,

then times `supervise ingest --json` as a whole process and reports its wall time, the peak RSS
of the largest process (the main one or a reader), every verdict, and that every good file was
stored and every file left the inbox.

    python benchmarks/bench_hostile.py --counties 300
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from bench_scale import MONTH, fill, run_timed, write_registry


def _inject(src: Path, dst: Path, rows: bytes) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"</sheetData>", rows + b"</sheetData>")
            zout.writestr(info, data)


def hostile(good: Path, box: Path, work: Path) -> list[str]:
    """Write the corpus into `box` (one county's inbox folder); return the file names."""
    box.mkdir(parents=True, exist_ok=True)
    _inject(good, box / "h1-single-quotes.xlsx",
            b"<row r='200000'><c r='WXY200000' t='inlineStr'><is><t>x</t></is></c></row>")
    _inject(good, box / "h2-no-r.xlsx", b"<row/>" * 200_000 + b"<row><c t='inlineStr'><is><t>x</t></is></c></row>")
    _inject(good, box / "h3-hungry.xlsx", b'<row r="9999"><c r="SE9999" t="inlineStr"><is><t>x</t></is></c></row>')
    with open(box / "h4-huge.xlsx", "wb") as f:
        f.write(b"PK\x03\x04")
        f.truncate(2 * 1024**3)
    row = f"{box.name},{MONTH},X00000,ent_total,1\n"
    (box / "h5-rows.csv").write_text("county_code,period,cluster_code,indicator,value\n" + row * 500_000)
    head = "county_code,period,cluster_code,indicator,value\n"
    (box / "h6-mixed.csv").write_bytes(
        (head + f"{box.name},{MONTH},X00000,progress,完成技改\n").encode()
        + f"{box.name},{MONTH},X00001,progress,进展顺利\n".encode("gb18030"))
    with zipfile.ZipFile(box / "h7-bomb.xlsx", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/workbook.xml", b"<workbook/>")
        z.writestr("xl/worksheets/sheet1.xml", b"<worksheet>" + b" " * 150_000_000 + b"</worksheet>")
    exe = shutil.which("soffice")
    if exe:
        from openpyxl import load_workbook

        wb = load_workbook(good)
        wb.worksheets[0]["IV65536"] = "x"
        far = work / "h8-far.xlsx"
        wb.save(far)
        profile = work / "lo-profile"
        for fmt in ("xls", "ods"):
            subprocess.run([exe, f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to", fmt,
                            "--outdir", str(box), str(far)], check=True, capture_output=True, timeout=180,
                           env={**os.environ, "HOME": str(profile)})
    for p in box.iterdir():
        os.utime(p, (p.stat().st_mtime - 60, p.stat().st_mtime - 60))   # settled
    return sorted(p.name for p in box.iterdir())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counties", type=int, default=300)
    ap.add_argument("--root", type=Path, default=Path("bench-work"))
    args = ap.parse_args()
    supervise = shutil.which("supervise") or str(Path(sys.executable).with_name("supervise"))
    home = (args.root / f"hostile-{args.counties}").resolve()
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    env = dict(os.environ, SUPERVISE_HOME=str(home))
    subprocess.run([supervise, "init"], env=env, check=True, capture_output=True)
    codes = write_registry(home, args.counties)
    _t, _r, out = run_timed([supervise, "templates", "--month", MONTH, "--json"], env)
    rng = random.Random(args.counties)
    good = []
    for t in json.loads(out)["templates"]:
        box = home / "inbox" / t["county_code"]
        box.mkdir(parents=True, exist_ok=True)
        dest = box / Path(t["path"]).name
        fill(Path(t["path"]), dest, rng)
        os.utime(dest, (dest.stat().st_mtime - 60, dest.stat().st_mtime - 60))
        good.append(dest)
    names = hostile(good[0], home / "inbox" / codes[1] / "hostile", home)
    # the hostile files sit in a sub-folder of county 2's inbox: they are that county's
    wall, rss, out = run_timed([supervise, "ingest", "--json"], env)
    doc = json.loads(out)
    files = doc["files"]
    verdicts = {Path(f["file"]).name: (f["verdict"], [p["code"] for p in f["problems"]][:1]) for f in files
                if "/hostile/" in f["file"]}
    good_ok = sum(1 for f in files if "/hostile/" not in f["file"] and f["verdict"] == "accepted")
    left = [p for p in (home / "inbox").rglob("*") if p.is_file()]
    archive = sum(p.stat().st_size for p in (home / "archive").rglob("*") if p.is_file())
    print(json.dumps({
        "good_files": len(good), "good_accepted": good_ok, "hostile_files": len(names),
        "hostile_verdicts": verdicts, "left_in_inbox": [str(p) for p in left],
        "ingest_s": round(wall, 2), "peak_rss_mb_largest_process": round(rss),
        "archive_mb": round(archive / 1e6, 1),
    }, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
