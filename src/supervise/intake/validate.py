"""Validation of a read submission: every problem with a code, a place and a Chinese message.

Errors reject the file; warnings (YTD decrease, month-over-month jump, unit slip) accept it with
warnings. A blank numeric cell is an error unless the dictionary marks the indicator optional:
the program never turns a blank into 0.

Formulas are read as their cached values. A formula without one (a file written by a program
that never calculates, e.g. openpyxl) is an error in a numeric cell (`formula_without_value`),
never a zero. In a text cell (进展成效, 存在问题, 下一步措施) it is what the county typed: its own
text, "=" first (`=HYPERLINK("http://x","y")`), is stored as the literal text value, and shown
as text wherever it is printed.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from ..periods import TZ, Month, Period, PeriodError, Quarter, parse_period
from ..registry import Cluster, Indicator, Registry
from .cells import Cell, FromSettings, Limits, ReadResult, RowRead
from .locate import cell_text as _text
from .problems import ERROR, WARNING, Problem, csv_place

Values = dict[str, dict[str, float]]
History = Callable[[str, Period], Values]

DATASET_LABEL = {"monthly": "月报（集群发展月报）", "quarterly": "季度更新（集群季度更新）"}
CROSS_CHECKS = (
    ("ent_above", "ent_total", "ent_above_gt_total"),
    ("ent_in_park", "ent_total", "ent_in_park_gt_total"),
)
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
# Commas are accepted only as thousands separators (1,234,567.8); "12,5" or "1.234,5" are not
# numbers we can read without guessing, so they are refused rather than misread.
_GROUPED = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
# No cluster figure comes near 1万亿 of its unit (万元, 家, 人, 亩); a larger value is a slip,
# and would overflow the city-wide sums if it were stored.
MAX_MAGNITUDE = 1e12
# Template versions count up from 1; a larger number in the 模板版本 cell is not a version (and
# 1e19 would not even fit the store's INTEGER column).
MAX_TEMPLATE_VERSION = 1_000_000


@dataclass(frozen=True)
class Rules(FromSettings):
    """The [validation] settings."""

    min_template_version: int = 1
    jump_factor: float = 5.0
    unit_slip_factor: float = 10_000
    unit_slip_tolerance: float = 3.0
    jump_min_value: float = 100


@dataclass(frozen=True)
class RegistryIndex:
    """Look-ups built once per registry (not once per file): a national registry has ~8,500 clusters."""

    cluster_index: dict[str, str]                 # upper-case code -> code
    clusters_by_county: dict[str, list[Cluster]]
    indicators_by_dataset: dict[str, list[Indicator]]

    @classmethod
    def of(cls, registry: Registry) -> RegistryIndex:
        by_county: dict[str, list[Cluster]] = {}
        for c in registry.clusters.values():
            by_county.setdefault(c.county_code, []).append(c)
        by_dataset: dict[str, list[Indicator]] = {}
        for i in registry.indicators.values():
            by_dataset.setdefault(i.dataset, []).append(i)
        return cls({c.upper(): c for c in registry.clusters}, by_county, by_dataset)


@dataclass(frozen=True)
class PendingHistory:
    """What the history checks need, when validation ran without the history (in a worker)."""

    county: str
    period: str
    indicators: tuple[str, ...]
    csv: bool
    sheet: str | None


@dataclass
class Validated:
    county_code: str | None = None
    period: str | None = None
    dataset: str | None = None
    template_version: int | None = None
    values: list[tuple[str, str, float | None, str | None, str]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # Set when validated without a history: the history checks still to run (apply_history).
    pending_history: PendingHistory | None = field(default=None, repr=False, compare=False)

    @property
    def has_errors(self) -> bool:
        return any(p.is_error for p in self.problems)

    @property
    def verdict(self) -> str:
        if self.has_errors:
            return "rejected"
        return "warning" if self.problems else "accepted"


def validate(
    res: ReadResult,
    registry: Registry,
    *,
    limits: Limits,
    rules: Rules,
    sender: str | None = None,
    expected_period: Period | None = None,
    history: History | None = None,
    index: RegistryIndex | None = None,
    received_at: datetime | None = None,
) -> Validated:
    """Check one read file against the registry, the dictionary and (for warnings) its history.

    `received_at` (the receipt time) rejects data for a period that has not ended yet.

    Without `history`, the history checks (warnings only, run last) are left in
    `pending_history` for `apply_history`, so that reading and validating can run in another
    process while the history is read, in order, from the database.
    """
    return _Validator(res, registry, limits, rules, sender, expected_period, history, index,
                      received_at).run()


def apply_history(
    v: Validated, registry: Registry, *, limits: Limits, rules: Rules, history: History,
    index: RegistryIndex | None = None,
) -> Validated:
    """Run the history checks left pending by `validate(..., history=None)`; the same warnings, in
    the same place (last), as a validation with the history would have given."""
    pending = v.pending_history
    if pending is None:
        return v
    v.pending_history = None
    res = ReadResult(format="csv" if pending.csv else "xlsx", sheet=pending.sheet)
    val = _Validator(res, registry, limits, rules, None, None, history, index)
    val.out = v
    indicators = [registry.indicators[c] for c in pending.indicators]
    val.check_history(pending.county, parse_period(pending.period), indicators)
    return v


class _Validator:
    def __init__(
        self,
        res: ReadResult,
        registry: Registry,
        limits: Limits,
        rules: Rules,
        sender: str | None,
        expected_period: Period | None,
        history: History | None,
        index: RegistryIndex | None = None,
        received_at: datetime | None = None,
    ) -> None:
        self.res = res
        self.reg = registry
        self.limits = limits
        self.rules = rules
        self.sender = sender
        self.expected = expected_period
        self.history = history
        self.received_at = received_at
        self.out = Validated()
        self.csv = res.format == "csv" and not res.wide   # the long layout: places are lines
        self.sheet = res.sheet
        self.index = index if index is not None else RegistryIndex.of(registry)
        self.cluster_index = self.index.cluster_index

    # ---- helpers
    def add(self, code: str, message: str, cell: Cell | None = None, *, cluster: str | None = None,
            indicator: str | None = None, severity: str = ERROR) -> None:
        p = Problem(code, message, severity, cluster_code=cluster, indicator=indicator)
        if cell is not None and cell.ref is not None:
            p.cell = cell.ref
            if self.csv:
                p.where_text = csv_place(cell.row)
            else:
                p.sheet = self.sheet
        elif self.csv:
            p.where_text = csv_place(None)
        else:
            p.sheet = self.sheet
        self.out.problems.append(p)

    def place(self, cell: Cell | None) -> str:
        if cell is None or cell.ref is None:
            return ""
        return f"第{cell.row}行" if self.csv else f"{self.sheet}!{cell.ref}"

    def row_label(self, cell: Cell | None, cluster: Cluster | None, code: str) -> str:
        name = f"{code} {cluster.name}" if cluster else code
        if cell is None or cell.row is None:
            return f"集群{name}"
        return f"第{cell.row}行（{name}）"

    # ---- the checks
    wrong_county = False     # the file is another real county's: nothing else about it matters

    def run(self) -> Validated:
        county = self.check_county()
        period = self.check_period()
        if self.wrong_county:
            # another county's file: its rows are all "not ours"; one problem says it all
            return self.out
        dataset = self.check_dataset(period)
        self.out.dataset = dataset
        if not self.csv:
            self.check_template_version()
        indicators = self.check_columns(dataset)
        self.check_rows(county, indicators)
        if not self.out.has_errors and county and period is not None:
            if self.history is not None:
                self.check_history(county, period, indicators)
            else:
                self.out.pending_history = PendingHistory(
                    county, str(period), tuple(i.code for i in indicators), self.csv, self.sheet)
        return self.out

    def check_county(self) -> str | None:
        cell = self.res.meta.get("county_code")
        raw = _text(cell.value) if cell else ""
        raw = raw.removesuffix(".0")
        sender = self.sender
        sender_text = f"{sender}（{self.reg.county_name(sender)}）" if sender else ""
        if not raw:
            where = "CSV 的 county_code 列" if self.csv else "表头的“县（市）代码”单元格（模板B2）"
            self.add("county_mismatch", f"文件中没有县（市）代码：{where}为空。请使用下发的本县（市）模板。", cell)
            return sender if sender in self.reg.counties else None
        self.out.county_code = raw
        known = raw in self.reg.counties
        file_text = f"{raw}（{self.reg.county_name(raw)}）" if known else f"“{raw}”"
        if sender and raw != sender:
            self.wrong_county = known
            self.add(
                "county_mismatch",
                f"文件中的县（市）代码为{file_text}，但文件由{sender_text}报送。"
                "请使用本县（市）的模板，不要报送其他县（市）的文件。",
                cell,
            )
            return sender if sender in self.reg.counties else (raw if known else None)
        if not known:
            self.add("unknown_county", f"县（市）代码{file_text}不存在，请使用下发的模板，不要修改县（市）代码。", cell)
            return None
        for what, c in self.res.csv_conflicts:
            if what == "county_code":
                self.add("county_mismatch",
                         f"第{c.row}行的县（市）代码“{_show(c.value)}”与第{cell.row if cell else 2}行的“{raw}”不一致；"
                         "一个文件只能报送一个县（市）的数据。", c)
        return raw

    def check_period(self) -> Period | None:
        cell = self.res.meta.get("period")
        raw = cell.value if cell else ""
        period: Period | None = None
        if isinstance(raw, (datetime, date)):
            period = Month(raw.year, raw.month)
        else:
            text = _text(raw)
            if not text:
                where = "CSV 的 period 列" if self.csv else "表头的“报告期”单元格（模板F2）"
                self.add("period_mismatch", f"文件中没有报告期：{where}为空。", cell)
                return None
            try:
                p = parse_period(text)
            except PeriodError:
                p = None
            if not isinstance(p, (Month, Quarter)):
                self.add("period_mismatch",
                         f"报告期“{_show(text)}”不是有效的月份（如2025-03）或季度（如2025Q1）。", cell)
                return None
            period = p
        self.out.period = str(period)
        if self.expected is not None and str(period) != str(self.expected):
            self.add("period_mismatch",
                     f"文件的报告期为{period}（{period.label}），但本次收取的是{self.expected}（{self.expected.label}）的数据。",
                     cell)
        self.check_period_ended(period, cell)
        for what, c in self.res.csv_conflicts:
            if what == "period":
                self.add("period_mismatch",
                         f"第{c.row}行的报告期“{_show(c.value)}”与第{cell.row if cell else 2}行的“{period}”不一致；"
                         "一个文件只能报送一个报告期的数据。", c)
        return period

    def check_period_ended(self, period: Period, cell: Cell | None) -> None:
        """Data for a month (quarter) can only be reported once it is over: a file received
        before the first instant of the next month (quarter), Asia/Shanghai, is rejected."""
        if self.received_at is None or not isinstance(period, (Month, Quarter)):
            return
        end = datetime.combine(period.next().first_day(), time(0), tzinfo=TZ)
        received = self.received_at if self.received_at.tzinfo else self.received_at.replace(tzinfo=TZ)
        if received >= end:
            return
        at = received.astimezone(TZ)
        self.add("period_not_ended",
                 f"报告期为{period}（{period.label}），该报告期尚未结束（{end.year}年{end.month}月{end.day}日0时起"
                 f"方可报送），本文件的收到时间为{at:%Y-%m-%d %H:%M}，不予接收。请核对报告期，"
                 "或在报告期结束后报送。", cell)

    def check_dataset(self, period: Period | None) -> str | None:
        counts = {"monthly": 0, "quarterly": 0}
        for c in self.res.columns:
            ind = self.reg.indicators.get(str(c.value))
            if ind is not None:
                counts[ind.dataset] += 1
        by_codes = max(counts, key=lambda k: counts[k]) if any(counts.values()) else None
        by_period = None if period is None else ("monthly" if isinstance(period, Month) else "quarterly")
        if by_codes and by_period and by_codes != by_period:
            self.add(
                "period_mismatch",
                f"报告期为{period}（{period.label if period else ''}），但表格是{DATASET_LABEL[by_codes]}模板；"
                f"{'月份' if by_period == 'monthly' else '季度'}数据请使用{DATASET_LABEL[by_period]}模板。",
                self.res.meta.get("period"),
            )
        return by_codes or by_period

    def check_template_version(self) -> None:
        cell = self.res.meta.get("template_version")
        raw = _text(cell.value) if cell else ""
        try:
            number = float(raw)
        except ValueError:
            self.add("template_too_old",
                     "找不到模板版本号（模板H2），可能使用了旧模板或自制表格。请使用最新下发的模板重新填报。", cell)
            return
        if not abs(number) <= MAX_TEMPLATE_VERSION:   # inf, nan, 1e400, 1e19
            self.add("template_too_old",
                     f"模板版本号“{_show(raw)}”不是有效的版本号（模板H2），可能改动了模板或使用了自制表格。"
                     "请使用最新下发的模板重新填报。", cell)
            return
        version = int(number)
        self.out.template_version = version
        if version < self.rules.min_template_version:
            self.add("template_too_old",
                     f"模板版本为{version}，已停止使用（最低版本{self.rules.min_template_version}）。"
                     "请使用最新下发的模板重新填报。", cell)

    def check_columns(self, dataset: str | None) -> list[Indicator]:
        seen: dict[str, Cell] = {}
        for c in self.res.columns:
            code = str(c.value)
            ind = self.reg.indicators.get(code)
            if code in seen:
                self.add("duplicate_column",
                         f"指标代码({code})出现了两次（{self.place(seen[code])}和{self.place(c)}），请删除重复的列。",
                         c, indicator=code)
                continue
            seen[code] = c
            if ind is None:
                self.add("unknown_indicator",
                         f"指标代码({_show(code)})不存在（{self.place(c)}）。请不要修改模板中的指标代码，也不要自行增加指标列。",
                         c, indicator=code)
            elif dataset and ind.dataset != dataset:
                self.add("unknown_indicator",
                         f"{_named(ind)}不属于{DATASET_LABEL[dataset]}，请使用下发的模板。",
                         c, indicator=code)
        wanted = self.index.indicators_by_dataset.get(dataset, []) if dataset else []
        present = []
        for ind in wanted:
            if ind.code in seen:
                present.append(ind)
            elif not ind.optional:
                self.add("missing_indicator",
                         f"缺少指标{_named(ind)}{'的数据' if self.csv else '列'}。"
                         "请使用下发的模板，不要删除列。", None, indicator=ind.code)
        return present

    def check_rows(self, county: str | None, indicators: list[Indicator]) -> None:
        seen: dict[str, Cell] = {}
        for row in self.res.rows:
            cluster = self.check_cluster(row, county, seen)
            if cluster is None:
                continue
            self.check_values(row, cluster, indicators)
        for cluster_code, _code, cell in self.res.duplicates:
            cl = self.reg.clusters.get(self.cluster_index.get(cluster_code.upper(), ""))
            known = self.reg.indicators.get(_code)
            what = _named(known) if known else f"指标({_show(_code)})"
            self.add("duplicate_row",
                     f"第{cell.row}行重复：{self.row_label(None, cl, cluster_code)}的{what}已经填报过一次，请删除重复的行。",
                     cell, cluster=cl.code if cl else cluster_code, indicator=_code)
        if county:
            for cl in self.index.clusters_by_county.get(county, []):
                if cl.code not in seen:
                    self.add("missing_cluster",
                             f"缺少集群“{cl.code} {cl.name}”的数据行。每个集群都要填报，请不要删除行。",
                             None, cluster=cl.code)

    def check_cluster(self, row: RowRead, county: str | None, seen: dict[str, Cell]) -> Cluster | None:
        raw = _text(row.cluster.value)
        col = "cluster_code 列" if self.csv else "A列"
        if not raw:
            self.add("unknown_cluster",
                     f"第{row.cluster.row}行填写了数据，但{col}没有集群代码。请在模板中已有的集群行内填写。",
                     row.cluster)
            return None
        code = self.cluster_index.get(raw.upper())
        cluster = self.reg.clusters.get(code) if code else None
        if cluster is None:
            self.add("unknown_cluster",
                     f"第{row.cluster.row}行的集群代码“{_show(raw)}”不存在。请不要修改或新增集群代码。",
                     row.cluster, cluster=raw)
            return None
        if county and cluster.county_code != county:
            self.add("unknown_cluster",
                     f"第{row.cluster.row}行的集群“{cluster.code} {cluster.name}”属于{cluster.county_name}，"
                     f"不属于{self.reg.county_name(county)}。请只填报本县（市）的集群。",
                     row.cluster, cluster=cluster.code)
            return None
        if cluster.code in seen:
            self.add("duplicate_row",
                     f"第{row.cluster.row}行与第{seen[cluster.code].row}行的集群代码“{cluster.code}”重复，"
                     "每个集群只能填一行。",
                     row.cluster, cluster=cluster.code)
            return None
        seen[cluster.code] = row.cluster
        return cluster

    def check_values(self, row: RowRead, cluster: Cluster, indicators: list[Indicator]) -> None:
        numbers: dict[str, tuple[float, Cell]] = {}
        for ind in indicators:
            cell = row.cells.get(ind.code) or Cell("", None, None)
            where_ref = f"{self.sheet}!{cell.ref}" if (cell.ref and not self.csv) else (cell.ref or "")
            raw = cell.value
            if ind.is_number and not cell.formula_missing and type(raw) is float and math.isfinite(raw):
                # The common case (a number typed into a number cell): only the range checks.
                if self.quick_range(raw, ind):
                    numbers[ind.code] = (raw, cell)
                    self.out.values.append((cluster.code, ind.code, raw, None, where_ref))
                    if ind.unit == "%" and 0 < raw <= 1:
                        self.percent_as_fraction(raw, ind, cell, cluster)
                    continue
            label = f"{self.row_label(cell if cell.row else row.cluster, cluster, cluster.code)}{_named(ind)}"
            if cell.formula_missing and not (not ind.is_number and cell.formula):
                self.add("formula_without_value",
                         f"{label}是公式，但没有计算结果（{self.place(cell)}）。请在 Excel/WPS 中重新计算并保存，"
                         "或直接填写数值。", cell, cluster=cluster.code, indicator=ind.code)
                continue
            raw = cell.value
            if not ind.is_number:
                text = "=" + cell.formula if cell.formula_missing else _text(raw)
                if not text:
                    if not ind.optional:
                        self.add("empty_value", f"{label}未填写。", cell, cluster=cluster.code, indicator=ind.code)
                    continue
                if len(text) > self.limits.max_text_chars:
                    self.add("text_too_long",
                             f"{label}有{len(text)}字，超过上限{self.limits.max_text_chars}字，请精简。",
                             cell, cluster=cluster.code, indicator=ind.code)
                    continue
                self.out.values.append((cluster.code, ind.code, None, text, where_ref))
                continue
            if _is_blank(raw):
                if not ind.optional:
                    missing_line = "（CSV 中没有这一行）" if self.csv and cell.ref is None else ""
                    self.add("empty_value",
                             f"{label}未填写{missing_line}。数字不能空着，没有的请填0。",
                             cell, cluster=cluster.code, indicator=ind.code)
                continue
            value = to_number(raw, percent=ind.unit == "%")
            if value is None:
                self.add("not_a_number",
                         f"{label}应为数字，实际填写了“{_show(raw)}”。请只填数字（单位{ind.unit or '见表头'}），不要填文字或单位。",
                         cell, cluster=cluster.code, indicator=ind.code)
                continue
            if not self.check_range(value, ind, cell, cluster, label):
                continue
            numbers[ind.code] = (value, cell)
            self.out.values.append((cluster.code, ind.code, value, None, where_ref))
            if ind.unit == "%" and 0 < value <= 1:
                self.percent_as_fraction(value, ind, cell, cluster)
        for part, whole, code in CROSS_CHECKS:
            if part in numbers and whole in numbers and numbers[part][0] > numbers[whole][0]:
                pi, wi = self.reg.indicators[part], self.reg.indicators[whole]
                cell = numbers[part][1]
                self.add(code,
                         f"{self.row_label(cell, cluster, cluster.code)}{_named(pi)}（{_num(numbers[part][0])}）"
                         f"大于{_named(wi)}（{_num(numbers[whole][0])}），请核实。",
                         cell, cluster=cluster.code, indicator=part)

    @staticmethod
    def quick_range(value: float, ind: Indicator) -> bool:
        return ((ind.min is None or value >= ind.min) and (ind.max is None or value <= ind.max)
                and (not ind.integer or value.is_integer()) and abs(value) <= MAX_MAGNITUDE)

    def percent_as_fraction(self, value: float, ind: Indicator, cell: Cell, cluster: Cluster) -> None:
        """Excel stores 62% typed into a cell as 0.62: a percentage at most 1 is probably that."""
        label = f"{self.row_label(cell, cluster, cluster.code)}{_named(ind)}"
        self.add("percent_as_fraction",
                 f"{label}为{_num(value)}，疑似按百分比格式录入（如62%被存为0.62）。本表百分比请填写62或62.5这样的数，"
                 "如确为不足1%请忽略本提示。", cell, cluster=cluster.code, indicator=ind.code, severity=WARNING)

    def check_range(self, value: float, ind: Indicator, cell: Cell, cluster: Cluster, label: str) -> bool:
        args = dict(cluster=cluster.code, indicator=ind.code)
        if abs(value) > MAX_MAGNITUDE:
            self.add("out_of_range", f"{label}为{_num(value)}，数值过大（绝对值不得超过1万亿），请核实单位和数值。",
                     cell, **args)
            return False
        if ind.unit == "%" and ((ind.min is not None and value < ind.min) or (ind.max is not None and value > ind.max)):
            self.add("percent_out_of_range",
                     f"{label}为{_num(value)}，百分比应在{_num(ind.min or 0)}到{_num(ind.max if ind.max is not None else 100)}之间"
                     "（如62.5表示62.5%）。", cell, **args)
            return False
        if ind.min is not None and value < ind.min:
            if ind.min == 0 and ind.integer:
                self.add("negative_count", f"{label}为{_num(value)}，不能为负数。", cell, **args)
            elif ind.min == 0:
                self.add("negative_value", f"{label}为{_num(value)}，不能为负数。", cell, **args)
            else:
                self.add("out_of_range", f"{label}为{_num(value)}，不能小于{_num(ind.min)}。", cell, **args)
            return False
        if ind.max is not None and value > ind.max:
            self.add("out_of_range", f"{label}为{_num(value)}，不能大于{_num(ind.max)}。", cell, **args)
            return False
        if ind.integer and not float(value).is_integer():
            self.add("not_integer", f"{label}为{_num(value)}，应为整数。", cell, **args)
            return False
        return True

    def check_history(self, county: str, period: Period, indicators: list[Indicator]) -> None:
        assert self.history is not None
        prev_period = period.previous()
        prev = self.history(county, prev_period)
        if not prev:
            return
        same_year = prev_period.year == period.year
        kind_word = "上月" if isinstance(period, Month) else "上季度"
        by_ind = {i.code: i for i in indicators}
        r = self.rules
        slip_lo, slip_hi = r.unit_slip_factor / r.unit_slip_tolerance, r.unit_slip_factor * r.unit_slip_tolerance
        for cl, code, value, _t, ref in self.out.values:
            if value is None:
                continue
            row = prev.get(cl)
            before = row.get(code) if row else None
            if before is None or value == before:
                continue
            ind = by_ind[code]
            ytd = ind.kind == "ytd"
            if ytd and not same_year:
                continue
            found: tuple[str, str] | None = None
            if ytd and value < before:
                found = ("ytd_decreased", f"为{_num(value)}，小于{kind_word}（{prev_period}）的累计数{_num(before)}。"
                                          "本年累计数一般不会减少，请核实。")
            elif before > 0 and value > 0:
                ratio = value / before
                if slip_lo <= ratio <= slip_hi:
                    found = ("unit_slip", f"为{_num(value)}，约为{kind_word}（{_num(before)}）的{ratio:,.0f}倍，"
                                          f"是否误将“元”当作“{ind.unit or '万元'}”填写？请核实。")
                elif max(value, before) >= r.jump_min_value and (
                        ratio > r.jump_factor or ratio < 1 / r.jump_factor):
                    found = ("jump", f"为{_num(value)}，{kind_word}为{_num(before)}，"
                                     f"变化超过{_num(r.jump_factor)}倍，请核实。")
            elif value == 0 and before >= r.jump_min_value:
                found = ("jump", f"为0，{kind_word}为{_num(before)}，请核实。")
            if found is None:
                continue
            cell = _cell_from_ref(ref, self.csv)
            label = f"{self.row_label(cell, self.reg.clusters[cl], cl)}{_named(ind)}"
            self.add(found[0], label + found[1], cell, cluster=cl, indicator=code, severity=WARNING)


def _cell_from_ref(ref: str, csv: bool) -> Cell | None:
    """Rebuild a Cell from a stored 'sheet!H7' / 'E12' reference (for warning locations)."""
    if not ref:
        return None
    local = ref.split("!", 1)[-1]
    m = re.match(r"^[A-Z]+(\d+)$", local)
    return Cell(None, local, int(m.group(1)) if m else None)


def _named(ind: Indicator) -> str:
    """An indicator as a county's messages name it: by its label, “营业收入（本年累计）” (the
    code is in the problem's `indicator` and its place, for machines)."""
    return f"“{ind.label}”"


def _is_blank(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and raw.strip() == "")


def to_number(raw: Any, *, percent: bool = False) -> float | None:
    """A cell's number, or None when it is not one (text, booleans, dates, NaN)."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        v = float(raw)
        return v if math.isfinite(v) else None
    if not isinstance(raw, str):
        return None
    s = unicodedata.normalize("NFKC", raw).strip().replace(" ", "")
    if "," in s:
        if not _GROUPED.match(s.rstrip("%")):
            return None
        s = s.replace(",", "")
    if percent and s.endswith("%"):
        s = s[:-1]
    if not _NUMBER.match(s):
        return None
    v = float(s)
    return v if math.isfinite(v) else None


def _num(x: float | None) -> str:
    if x is None:
        return ""
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.10g}"


def _show(raw: Any, limit: int = 30) -> str:
    s = _text(raw) if not isinstance(raw, str) else raw.strip()
    s = s.replace("\n", " ")
    return s if len(s) <= limit else s[:limit] + "…"
