"""A very large registry (the 2,844-county benchmark): the page stays readable, the workbook complete."""

from __future__ import annotations

import time
from datetime import datetime

import openpyxl
import pytest

from supervise.assess.model import UnitResult
from supervise.bulletin import render_email, render_page, write_workbook
from supervise.periods import TZ
from supervise.registry import Cluster, County, Registry, load_registry
from supervise.status import CountyStatus

from .bulletin_support import make_bulletin, make_result

N = 2844


@pytest.fixture(scope="module")
def big():  # type: ignore[no-untyped-def]
    counties = {f"{100000 + i:06d}": County(f"{100000 + i:06d}", f"第{i + 1}县") for i in range(N)}
    clusters = {
        f"C{i:05d}{k}": Cluster(f"C{i:05d}{k}", code, c.name, f"集群{k}")
        for i, (code, c) in enumerate(counties.items()) for k in range(3)
    }
    reg = Registry(counties, clusters, load_registry().indicators)
    codes = list(counties)
    head = make_result(reg, order=codes[:14])
    template = head.units[0].scores
    head.units += [
        UnitResult(code, counties[code].name, template, [], 30.0 - i * 0.001, round(30.0 - i * 0.001, 2), 15 + i,
                   "on_time")
        for i, code in enumerate(codes[14:])
    ]
    statuses = [
        CountyStatus(code, c.name, "missing" if i % 100 == 7 else "on_time",
                     None if i % 100 == 7 else datetime(2025, 4, 3, 9, tzinfo=TZ))
        for i, (code, c) in enumerate(counties.items())
    ]
    values = {
        cl.county_code: {cl.code: {"revenue_ytd": 1000.0 * (j % 2000), "revenue_ytd_ly": 900.0}}
        for j, cl in enumerate(clusters.values())
    }
    t = time.perf_counter()
    b = make_bulletin(reg=reg, results=[head], statuses=statuses, values=values, goal_values={})
    return b, time.perf_counter() - t


def test_page_shows_head_and_tail(big) -> None:  # type: ignore[no-untyped-def]
    b, seconds = big
    assert seconds < 10
    t = time.perf_counter()
    page = render_page(b)
    email = render_email(b)
    assert time.perf_counter() - t < 10
    s = b.sections[0]
    assert b.compact and len(s.ranking_excerpt.rows) == 40 and s.ranking_excerpt.omitted == N - 40
    assert "第1县" in page and f"第{N}县" in page and "第100县" not in page
    assert f"中间{N - 40}个县（市）从略" in page and "附件工作簿" in page
    assert len(page) < 600_000 and len(email) < 300_000
    missing = sum(1 for i in range(N) if i % 100 == 7)
    assert page.count("截至考核时未报送") == missing


def test_workbook_has_every_county(big, tmp_path) -> None:  # type: ignore[no-untyped-def]
    b, _ = big
    t = time.perf_counter()
    data = write_workbook(b)
    assert time.perf_counter() - t < 60
    path = tmp_path / "big.xlsx"
    path.write_bytes(data)
    wb = openpyxl.load_workbook(path, read_only=True)
    ranking = [r for r in wb["综合排名"].iter_rows(min_row=3, values_only=True) if isinstance(r[0], int)]
    assert len(ranking) == N and ranking[-1][:2] == (N, f"第{N}县")
    clusters = sum(1 for r in wb["集群情况"].iter_rows(min_row=3, values_only=True) if isinstance(r[0], int))
    assert clusters == 3 * N
