"""Upload-to-verdict through the real server against a direct ingest call of the same kind of file.

Builds a workspace (the default 14 counties), writes distinct filled templates of 黄骅市 (four
clusters, a typical county file: ~11 KB .xlsx), then in the same run:

1. direct: `ingest_files(ws, [file], county=..., now=...)` in this process, one file at a time,
   under the workspace lock the web takes too (what `supervise ingest FILE` does after start-up);
2. web: one client logged in to `supervise serve` (waitress, 8 threads) on 127.0.0.1 uploading the
   same number of distinct files one after another (multipart, Accept: application/json), timing
   each request from the first byte sent to the whole verdict read;
3. load: 20 concurrent clients (the 14 counties) uploading `--load` distinct files: throughput;
4. the server's resident memory after the load (VmRSS) and its peak (VmHWM).

    python benchmarks/bench_web.py --uploads 60 --load 200 --clients 20
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from supervise.intake import ingest_files
from supervise.intake.templates import fill_template, write_templates
from supervise.jobs.locks import WORKSPACE_LOCK, hold
from supervise.periods import TZ, Month
from supervise.web.users import add_user
from supervise.workspace import Workspace, init_workspace

MONTH = Month(2025, 3)
HUANGHUA = "130983"


def values(ws: Workspace, county: str, i: int) -> dict[str, dict[str, Any]]:
    out = {}
    for k, cl in enumerate(ws.registry.clusters_of(county), start=1):
        out[cl.code] = {
            "ent_total": 100 + k, "ent_above": 30 + k, "ent_above_new_ytd": 2, "ent_above_upgraded_ytd": 1,
            "ent_in_park": 60 + k, "ent_in_park_new_ytd": 3, "revenue_ytd": round(5000.5 * k * (1 + i / 10000), 2),
            "revenue_ytd_ly": 4500 * k, "profit_ytd": 300 * k, "tax_ytd": 200 * k, "export_ytd": 0,
            "employees": 1000 + k, "tech_invest_ytd": 150, "rd_ytd": 80.5, "land_disposed_ytd": 12.5,
        }
    return out


def make_files(ws: Workspace, county: str, n: int, out: Path, start: int) -> list[Path]:
    template = Path(write_templates(ws, MONTH, county)[0]["path"])
    out.mkdir(parents=True, exist_ok=True)
    return [fill_template(template, values(ws, county, start + i), out / f"{county}-{start + i:04d}.xlsx")
            for i in range(n)]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def summary(xs: list[float]) -> dict[str, float]:
    return {"n": len(xs), "median_ms": round(statistics.median(xs) * 1000, 1), "p95_ms": round(pct(xs, 95) * 1000, 1),
            "min_ms": round(min(xs) * 1000, 1), "max_ms": round(max(xs) * 1000, 1)}


class Client:
    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookie = ""

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        h = dict(headers or {})
        if self.cookie:
            h["Cookie"] = self.cookie
        self.conn.request(method, path, body=body, headers=h)
        r = self.conn.getresponse()
        data = r.read()
        for k, v in r.getheaders():
            if k.lower() == "set-cookie":
                self.cookie = v.split(";", 1)[0]
        return r.status, data

    def login(self, name: str, password: str) -> str:
        _s, page = self.request("GET", "/login")
        m = re.search(rb'name="csrf_token" value="([^"]+)"', page)
        assert m
        csrf = m.group(1).decode()
        status, _ = self.request("POST", "/login", f"username={name}&password={password}&csrf_token={csrf}".encode(),
                                 {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 303, status
        return csrf

    def upload(self, csrf: str, path: Path) -> dict[str, Any]:
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{csrf}\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{path.name}\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n").encode() + path.read_bytes() + \
            f"\r\n--{boundary}--\r\n".encode()
        status, data = self.request("POST", "/county/upload", body,
                                    {"Content-Type": f"multipart/form-data; boundary={boundary}",
                                     "Accept": "application/json"})
        assert status == 200, (status, data[:200])
        doc: dict[str, Any] = json.loads(data)
        return doc


def memory(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) // 1024
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--uploads", type=int, default=60, help="sequential uploads (and direct ingests)")
    ap.add_argument("--load", type=int, default=200, help="uploads under load")
    ap.add_argument("--clients", type=int, default=20)
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-web-"))
    ws = init_workspace(root / "home")
    counties = [c.code for c in ws.registry.assessed_counties()]
    for code in counties:
        add_user(ws, f"c{code}", "county", county=code, password=f"password-{code}", now=datetime.now(TZ))
    t0 = time.perf_counter()
    direct_files = make_files(ws, HUANGHUA, args.uploads, root / "direct", 0)
    web_files = make_files(ws, HUANGHUA, args.uploads, root / "web", 10_000)
    load_files: dict[int, list[Path]] = {k: [] for k in range(args.clients)}   # client k is county k % 14
    for i in range(args.load):
        k = i % args.clients
        load_files[k] += make_files(ws, counties[k % len(counties)], 1, root / "load", 20_000 + i)
    print(f"built {2 * args.uploads + args.load} files in {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    # 1. direct ingest calls, in this process
    direct = []
    for path in direct_files:
        now = datetime.now(TZ)
        start = time.perf_counter()
        with hold(ws.home, WORKSPACE_LOCK, wait=60, now=now):
            report = ingest_files(ws, [path], county=HUANGHUA, now=now)
        direct.append(time.perf_counter() - start)
        assert report.files[0].verdict == "accepted", report.to_json()

    log = root / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "supervise", "--home", str(ws.home), "serve", "--port", "0",
                                 "--threads", "8"], stdout=out, stderr=subprocess.STDOUT)
    try:
        port = 0
        for _ in range(600):
            m = re.search(r"127\.0\.0\.1:(\d+)/", log.read_text(encoding="utf-8", errors="replace"))
            if m:
                port = int(m.group(1))
                break
            time.sleep(0.05)
        assert port, log.read_text()
        rss_idle = memory(proc.pid)

        # 2. sequential uploads through the server
        client = Client(port)
        csrf = client.login(f"c{HUANGHUA}", f"password-{HUANGHUA}")
        web = []
        for path in web_files:
            start = time.perf_counter()
            doc = client.upload(csrf, path)
            web.append(time.perf_counter() - start)
            assert doc["verdict"] == "accepted", doc
        client.conn.close()

        # 3. concurrent clients
        latencies: list[float] = []
        lock = threading.Lock()

        def run(k: int) -> int:
            code = counties[k % len(counties)]
            c = Client(port)
            token = c.login(f"c{code}", f"password-{code}")
            done = 0
            for path in load_files[k]:
                s = time.perf_counter()
                doc = c.upload(token, path)
                with lock:
                    latencies.append(time.perf_counter() - s)
                assert doc["verdict"] == "accepted", doc
                done += 1
            c.conn.close()
            return done

        start = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            done = sum(pool.map(run, range(args.clients)))
        wall = time.perf_counter() - start
        rss_after = memory(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    result = {
        "direct_ingest": summary(direct),
        "web_upload": summary(web),
        "ratio_p95": round(pct(web, 95) / pct(direct, 95), 2),
        "ratio_median": round(statistics.median(web) / statistics.median(direct), 2),
        "load": {"clients": args.clients, "uploads": done, "wall_s": round(wall, 2),
                 "uploads_per_s": round(done / wall, 1), **{f"latency_{k}": v for k, v in summary(latencies).items()}},
        "server_rss_mb": {"idle": rss_idle.get("VmRSS"), "after_load": rss_after.get("VmRSS"),
                          "peak": rss_after.get("VmHWM")},
        "file_bytes": direct_files[0].stat().st_size,
    }
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
