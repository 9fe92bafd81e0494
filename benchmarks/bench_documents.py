"""Document benchmark: the 通报 as .docx and .pdf against the .xlsx writer, on the same bulletin.

A bulletin is built in memory (like tests/test_bulletin_large.py) for N counties × 3 clusters:
one monthly rulebook of five indicators, every county ranked, one in a hundred missing its data,
a revenue for every cluster. Then each writer renders it `--repeat` times in this process (fonts
and templates warm after the first PDF), and the median wall time is reported with the ratios the
issue sets as goals (docx ≤ 1 × and pdf ≤ 3 × the xlsx time at 2,844 counties).

    python benchmarks/bench_documents.py --counties 14 2844 --repeat 3
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from collections.abc import Callable
from datetime import date, datetime

from supervise.assess.model import AssessmentResult, IndicatorScore, UnitResult
from supervise.bulletin import build_bulletin, write_workbook
from supervise.bulletin.docx import write_docx
from supervise.bulletin.model import Bulletin
from supervise.bulletin.official import DocumentHead
from supervise.bulletin.pdf import write_pdf
from supervise.periods import TZ, Month
from supervise.registry import Cluster, County, Registry, load_registry
from supervise.status import CountyStatus

INDICATORS = [
    {"code": f"i{k}", "label": label, "unit": "%", "weight": w, "method": "minmax"}
    for k, (label, w) in enumerate([("营业收入同比增速", 30), ("实缴税金", 20), ("技术改造投资", 20),
                                    ("规上企业培育目标完成率", 20), ("入园进区率", 10)])
]


def bulletin(n: int) -> Bulletin:
    counties = {f"{100000 + i:06d}": County(f"{100000 + i:06d}", f"测试县{i + 1:04d}") for i in range(n)}
    clusters = {
        f"X{i:05d}{k}": Cluster(f"X{i:05d}{k}", code, c.name, ["化工", "铸造", "食品"][k])
        for i, (code, c) in enumerate(counties.items()) for k in range(3)
    }
    reg = Registry(counties, clusters, load_registry().indicators)
    units = []
    for i, (code, c) in enumerate(counties.items()):
        score = 100.0 - 90.0 * i / max(n - 1, 1)
        scores = {ind["code"]: IndicatorScore(ind["code"], ind["label"], "minmax", ind["weight"], score,
                                              score * ind["weight"] / 100, {}, {}) for ind in INDICATORS}
        units.append(UnitResult(code, c.name, scores, [], score, round(score, 2), i + 1,
                                "missing" if i % 100 == 7 else "on_time"))
    result = AssessmentResult("cz-monthly", "县域特色产业集群发展月度督导考核", "2025.1", "2025-03", "month", "monthly",
                              INDICATORS, units, None, issued_at="2025-04-08T09:00:00+08:00")
    statuses = [CountyStatus(code, c.name, "missing" if i % 100 == 7 else "on_time",
                             None if i % 100 == 7 else datetime(2025, 4, 3, 9, tzinfo=TZ))
                for i, (code, c) in enumerate(counties.items())]
    values = {}
    for j, cl in enumerate(clusters.values()):
        values.setdefault(cl.county_code, {})[cl.code] = {"revenue_ytd": 1000.0 * (j % 2000 + 1),
                                                          "revenue_ytd_ly": 900.0 * (j % 2000 + 1)}
    return build_bulletin(registry=reg, issuer="沧州市民营经济领导小组办公室（沧州市工业和信息化局）", city="沧州市",
                          period=Month(2025, 3), results=[result], previous={}, statuses=statuses, values=values,
                          goal_values={}, issued=date(2025, 4, 8))


def timed(render: Callable[[], bytes], repeat: int) -> tuple[float, int]:
    seconds = []
    size = 0
    for _ in range(repeat):
        t = time.perf_counter()
        size = len(render())
        seconds.append(time.perf_counter() - t)
    return statistics.median(seconds), size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counties", type=int, nargs="+", default=[14, 2844])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", help="write the figures as JSON here")
    args = ap.parse_args()
    write_pdf(bulletin(14))          # import WeasyPrint and load the fonts once, outside the timings
    results = []
    for n in args.counties:
        b = bulletin(n)
        head = DocumentHead.of(b, issuer="沧州市民营经济领导小组办公室", number="沧工信字〔{year}〕{seq}号")
        row: dict[str, float | int] = {"counties": n}
        renders: tuple[tuple[str, Callable[[], bytes]], ...] = (
            ("xlsx", functools.partial(write_workbook, b)), ("docx", functools.partial(write_docx, b, head=head)),
            ("pdf", functools.partial(write_pdf, b, head=head)))
        for name, render in renders:
            seconds, size = timed(render, args.repeat)
            row[f"{name}_s"] = round(seconds, 3)
            row[f"{name}_kb"] = round(size / 1024)
        row["docx_vs_xlsx"] = round(float(row["docx_s"]) / float(row["xlsx_s"]), 2)
        row["pdf_vs_xlsx"] = round(float(row["pdf_s"]) / float(row["xlsx_s"]), 2)
        results.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(results, f, ensure_ascii=False, indent=2)


if __name__ == "__main__":
    main()
