"""Build the bulletin model from results, reporting status and the period's data.

Pure: no files, no database, no clock. Everything the writers print is decided here, including
which rows a web page shows of a very large table (see `FULL_TABLE_MAX`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import TypeVar

from ..assess.engine import DEDUCTION_LABELS
from ..assess.model import AssessmentResult, Deduction, UnitResult
from ..assess.settlement import REWARD_NEW, REWARD_UPGRADED
from ..periods import TZ, Month, Period, Quarter, Year, chinese_date
from ..registry import Goal, Registry
from ..status import STATE_LABELS, CountyStatus, rates
from .model import (
    TIER_100,
    TIER_200,
    TIER_500,
    TIER_BELOW,
    TIER_NONE,
    TIERS,
    AssessmentSection,
    Bulletin,
    ClusterRow,
    ClusterSummary,
    Edition,
    Excerpt,
    GoalRow,
    IndicatorColumn,
    LedgerRow,
    NetRow,
    PointsRow,
    RankingRow,
    SettlementView,
    StatusRow,
    StatusSummary,
    TallyRow,
    TextRow,
    TierCount,
    WarningRow,
)

T = TypeVar("T")

Values = Mapping[str, Mapping[str, Mapping[str, float | str | None]]]

# A page lists every county up to this many; above it, the head and tail of each table.
FULL_TABLE_MAX = 60
EXCERPT_HEAD = 20
EXCERPT_TAIL = 20
# Long lists without a meaningful order (clusters, warnings, texts) are cut at this many rows.
FULL_LIST_MAX = 200

YI = 10_000.0                 # 万元 per 亿元
TIER_BOUNDS = ((500 * YI, TIER_500), (200 * YI, TIER_200), (100 * YI, TIER_100))


# --------------------------------------------------------------------------- helpers


def bulletin_title(period: Period) -> str:
    """关于2025年3月全市县域特色产业集群发展情况的通报 (quarter: 第一季度; year: 2025年度)."""
    return f"关于{period_label(period)}全市县域特色产业集群发展情况的通报"


def bulletin_subject(title: str, edition: Edition | None) -> str:
    """The mail's subject: the title; a correction says so: 【更正】关于…的通报（第2版）."""
    if edition is None or edition.version <= 1:
        return title
    return f"【更正】{title}（第{edition.version}版）"


def correction_heading(edition: Edition) -> str:
    """The first line of a correction, on the page, the workbook's cover and the mail."""
    before = edition.version - 1
    return (f"更正：本通报为第{edition.version}版，更正此前发出的第{before}版，请以本版为准。"
            f"与第{before}版相比：")


def period_label(period: Period) -> str:
    p = period
    if isinstance(p, Year):
        return f"{p.year}年度"
    return p.label


def ytd_span(period: Period) -> str:
    """The months a year-to-date figure covers: 1—3月, 1月, 1—12月."""
    if isinstance(period, Month):
        last = period.month
    elif isinstance(period, Quarter):
        last = 3 * period.quarter
    else:
        last = 12
    return f"{period.year}年1月" if last == 1 else f"{period.year}年1—{last}月"


def tier_of(revenue: float | None) -> str:
    if revenue is None:
        return TIER_NONE
    for bound, tier in TIER_BOUNDS:
        if revenue >= bound:
            return tier
    return TIER_BELOW


def number(v: object) -> float | None:
    """A numeric value from the data, or None (text, blank, bool)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def excerpt(rows: list[T], limit: int = FULL_TABLE_MAX, head: int = EXCERPT_HEAD, tail: int = EXCERPT_TAIL) -> Excerpt[T]:
    if len(rows) <= limit:
        return Excerpt(list(rows))
    return Excerpt(rows[:head], len(rows) - head - tail, rows[len(rows) - tail:] if tail else [])


def _fmt(v: float, digits: int = 2) -> str:
    return f"{v:,.{digits}f}"


def _names(rows: Sequence[RankingRow]) -> str:
    return "、".join(f"{r.county_name}（{r.score:.2f}分）" for r in rows)


# --------------------------------------------------------------------------- sections


def _deduction_note(ds: list[Deduction]) -> str:
    parts = []
    for d in ds:
        if not d.points:
            continue
        label = DEDUCTION_LABELS.get(d.on, d.on)
        unit = "天" if d.on == "late" else "次"
        parts.append(d.note or f"{label}{d.count:g}{unit}扣{d.points:g}分")
    return "；".join(parts)


def _indicator_columns(result: AssessmentResult) -> list[IndicatorColumn]:
    cols = [
        IndicatorColumn(
            code=str(i["code"]),
            label=str(i.get("label", i["code"])),
            weight=float(i.get("weight", 0) or 0),
            method=str(i.get("method", "")),
            unit=str(i.get("unit", "") or ""),
        )
        for i in result.indicators
    ]
    if not cols and result.units:
        cols = [
            IndicatorColumn(s.code, s.label, s.weight, s.method) for s in result.units[0].scores.values()
        ]
    return cols


def _ranking(units: list[UnitResult], previous: AssessmentResult | None) -> list[RankingRow]:
    before = {u.county_code: u.rank for u in previous.units} if previous else {}
    rows = []
    for u in units:
        prev = before.get(u.county_code)
        if prev is None:
            change, label = "new", "—"
        elif prev > u.rank:
            change, label = "up", f"进位{prev - u.rank}"
        elif prev < u.rank:
            change, label = "down", f"退位{u.rank - prev}"
        else:
            change, label = "same", "持平"
        rows.append(
            RankingRow(
                rank=u.rank,
                county_code=u.county_code,
                county_name=u.county_name,
                score=u.score,
                points_total=sum(u.points.values()),
                deductions=u.deduction_points,
                previous_rank=prev,
                change=change,
                change_label=label,
                mark="",
                reporting=STATE_LABELS.get(u.reporting_state, u.reporting_state),
            )
        )
    # 鼓励先进，鞭策后进: ranks 1–3 (ties included), and the last three places (ties included).
    top = {id(r) for r in rows if r.rank <= 3}
    if len(rows) > 3:
        floor = rows[-3].rank
        for r in rows:
            if r.rank >= floor and id(r) not in top:
                r.mark = "bottom"
    for r in rows:
        if id(r) in top:
            r.mark = "top"
    return rows


def _settlement(result: AssessmentResult, names: dict[str, str], ranks: dict[str, int]) -> SettlementView | None:
    s = result.settlement
    if s is None:
        return None
    ledger = [
        LedgerRow(t.payer, names.get(t.payer, t.payer), t.payee, names.get(t.payee, t.payee), float(t.amount))
        for t in s.ledger
    ]
    nets = sorted(
        (NetRow(code, names.get(code, code), ranks.get(code), float(v)) for code, v in s.net.items()),
        key=lambda n: (n.rank if n.rank is not None else 1 << 30, n.county_code),
    )
    return SettlementView(
        applies=s.applies,
        reason=s.reason,
        rewards=list(s.rewards),
        ledger=ledger if s.applies else [],
        nets=nets if s.applies else [],
        ledger_total=round(sum(t.amount for t in ledger), 6) if s.applies else 0.0,
        net_sum=round(sum(n.net for n in nets), 6) if s.applies else 0.0,
    )


def _section(result: AssessmentResult, previous: AssessmentResult | None) -> AssessmentSection:
    columns = _indicator_columns(result)
    ranking = _ranking(result.units, previous)
    points = []
    for u in result.units:
        points.append(
            PointsRow(
                rank=u.rank,
                county_code=u.county_code,
                county_name=u.county_name,
                points=[u.scores[c.code].points if c.code in u.scores else None for c in columns],
                values=[u.scores[c.code].value if c.code in u.scores else None for c in columns],
                deductions=u.deduction_points,
                deduction_note=_deduction_note(u.deductions),
                score=u.score,
            )
        )
    names = {u.county_code: u.county_name for u in result.units}
    ranks = {u.county_code: u.rank for u in result.units}
    for t in result.rewards_tally:
        names.setdefault(t.county_code, t.county_name)
    settlement = _settlement(result, names, ranks)
    if not result.assessable:
        note = f"本期不予排名，不进行奖惩结算：{'；'.join(result.reasons)}。"
    elif settlement is None:
        note = "本项考核不设奖惩结算。"
    elif not settlement.applies:
        note = f"本期不进行奖惩结算：{settlement.reason}" if settlement.reason else "本期不进行奖惩结算。"
    else:
        note = ""
    tally = [TallyRow(t.county_code, t.county_name, t.new_entered, t.upgraded, t.amount) for t in result.rewards_tally]
    new = REWARD_NEW if result.reward_new is None else result.reward_new
    upgraded = REWARD_UPGRADED if result.reward_upgraded is None else result.reward_upgraded
    scores = [u.score for u in result.units]
    return AssessmentSection(
        rulebook=result.rulebook,
        title=result.title,
        version=result.version,
        period=result.period,
        previous_period=previous.period if previous else "",
        indicators=columns,
        ranking=ranking,
        ranking_excerpt=excerpt(ranking),
        top=[r for r in ranking if r.mark == "top"],
        bottom=[r for r in ranking if r.mark == "bottom"],
        points=points,
        points_excerpt=excerpt(points),
        settlement=settlement,
        settlement_note=note,
        tally=tally,
        tally_title=f"新增规上工业企业奖励（新建入统每家{new:g}万元、小升规每家{upgraded:g}万元）",
        tally_total=sum(t.amount for t in tally),
        max_score=max([s for s in scores if s > 0], default=0.0),
        assessable=result.assessable,
        reasons=list(result.reasons),
    )


# --------------------------------------------------------------------------- data tables


# A cluster without figures, by its county's reporting state: one word for one thing.
_ABSENT = {"rejected": "退回", "not_due": "截止前未报送"}


def _clusters(registry: Registry, values: Values, period: Period,
              states: dict[str, str] | None = None) -> tuple[list[ClusterRow], ClusterSummary]:
    rows = []
    states = states or {}
    for i, c in enumerate(registry.clusters.values(), start=1):
        data = values.get(c.county_code, {}).get(c.code, {})
        rev = number(data.get("revenue_ytd"))
        ly = number(data.get("revenue_ytd_ly"))
        growth = (rev - ly) / ly * 100 if rev is not None and ly else None
        rows.append(
            ClusterRow(
                index=i,
                county_code=c.county_code,
                county_name=c.county_name,
                cluster_code=c.code,
                cluster_name=c.name,
                revenue=rev,
                revenue_yi=rev / YI if rev is not None else None,
                revenue_ly=ly,
                growth=growth,
                tier=tier_of(rev),
                absent=_ABSENT.get(states.get(c.county_code, ""), TIER_NONE),
            )
        )
    reported = [r for r in rows if r.reported]
    both = [r for r in reported if r.revenue_ly]
    total = sum(r.revenue or 0.0 for r in reported)
    now_both = sum(r.revenue or 0.0 for r in both)
    ly_both = sum(r.revenue_ly or 0.0 for r in both)
    counts = {t: 0 for t in TIERS}
    for r in rows:
        counts[r.tier] += 1
    summary = ClusterSummary(
        clusters=len(rows),
        reported=len(reported),
        revenue=total,
        revenue_yi=total / YI,
        revenue_ly=ly_both,
        growth=(now_both - ly_both) / ly_both * 100 if ly_both else None,
        tiers=[TierCount(t, counts[t]) for t in TIERS],
        over_100=counts[TIER_500] + counts[TIER_200] + counts[TIER_100],
        months=ytd_span(period),
    )
    return rows, summary


def _received(dt: datetime | None) -> str:
    if dt is None:
        return ""
    local = dt.astimezone(TZ) if dt.tzinfo else dt
    return local.strftime("%Y-%m-%d %H:%M")


def _statuses(registry: Registry, statuses: list[CountyStatus]) -> tuple[list[StatusRow], list[WarningRow], StatusSummary]:
    rows, warnings = [], []
    for s in statuses:
        if s.state == "late":
            detail = f"迟报{s.days_late}天"
        elif s.state == "missing":
            detail = "截至考核时未报送"
        elif s.state == "rejected":
            detail = s.reason or "已退回，待重新报送"
        elif s.state == "not_due":
            detail = "尚未报送，报送截止时间未到"
        else:
            detail = ""
        rows.append(
            StatusRow(
                county_code=s.county_code,
                county_name=s.county_name,
                state=s.state,
                label=STATE_LABELS.get(s.state, s.state),
                received_at=_received(s.received_at),
                days_late=s.days_late,
                detail=detail,
                warnings=len(s.warnings),
            )
        )
        for w in s.warnings:
            where = []
            if w.sheet or w.cell:
                where.append("!".join(x for x in (w.sheet, w.cell) if x))
            if w.cluster_code:
                cl = registry.clusters.get(w.cluster_code)
                where.append(cl.name if cl else w.cluster_code)
            if w.indicator:
                ind = registry.indicators.get(w.indicator)
                where.append(ind.label if ind else w.indicator)
            warnings.append(WarningRow(s.county_code, s.county_name, " · ".join(where), w.message, w.code))
    count = {k: sum(1 for r in rows if r.state == k) for k in ("on_time", "late", "missing", "rejected", "not_due")}
    rate = rates(statuses)
    waiting = f"、截止前尚未报送{count['not_due']}个" if count["not_due"] else ""
    sentence = (
        f"应报{len(rows)}个县（市），按时报送{count['on_time']}个、迟报{count['late']}个、"
        f"漏报{count['missing']}个、退回{count['rejected']}个{waiting}；报送完整率{rate['completeness']:.1f}%、"
        f"及时率{rate['timeliness']:.1f}%"
    )
    sentence += f"；数据质量提示{len(warnings)}条。" if warnings else "；未发现数据质量问题。"
    summary = StatusSummary(
        counties=len(rows),
        on_time=count["on_time"],
        late=count["late"],
        missing=count["missing"],
        rejected=count["rejected"],
        not_due=count["not_due"],
        completeness=rate["completeness"],
        timeliness=rate["timeliness"],
        warnings=len(warnings),
        sentence=sentence,
    )
    return rows, warnings, summary


def _texts(registry: Registry, values: Values) -> list[TextRow]:
    rows = []
    for c in registry.clusters.values():
        data = values.get(c.county_code, {}).get(c.code, {})
        texts = [data.get(k) for k in ("progress", "problems", "next_steps")]
        if not any(isinstance(t, str) and t.strip() for t in texts):
            continue
        rows.append(
            TextRow(c.county_code, c.county_name, c.code, c.name,
                    *(t if isinstance(t, str) else "" for t in texts))
        )
    return rows


def _goals(
    registry: Registry, values: Values, goal_values: Values, goal_period: str, summary: ClusterSummary
) -> list[GoalRow]:
    """Progress against the plan's goals (reference/goals.csv), in the file's order."""
    quarterly = goal_values or values
    tiers = {t.tier: t.count for t in summary.tiers}
    rows = []
    for g in registry.goals:
        current: float | None
        basis = g.basis
        if g.measure == "tier":
            current = float({"100+": summary.over_100, "500+": tiers[TIER_500], "200-500": tiers[TIER_200]}[g.tier])
            basis = f"{basis}（{summary.months}）"
        else:
            ind = registry.indicators.get(g.indicator)
            monthly = ind is not None and ind.dataset == "monthly"
            src = values if monthly else quarterly
            nums = [
                n
                for c in registry.clusters.values()
                if (n := number(src.get(c.county_code, {}).get(c.code, {}).get(g.indicator))) is not None
            ]
            if not nums:
                current = None
            elif g.measure == "mean":
                current = sum(nums) / len(nums)
            else:
                current = sum(nums)
            if not monthly and goal_period:
                basis = f"{basis}（{goal_period}）"
        percent = current / g.target * 100 if current is not None and g.target else None
        rows.append(GoalRow(g.label, g.unit, current, g.target, g.target_text, percent, basis))
    return rows


def _goal_note(goals: Sequence[Goal]) -> str:
    """Where the goals come from, and how progress is measured."""
    sources = list(dict.fromkeys(f"{g.policy}确定的{g.year}年主要目标" for g in goals if g.policy))
    head = f"目标值来自{'、'.join(sources)}；" if sources else ""
    return head + "完成进度 = 当前值 ÷ 目标值；集群规模按本年累计营业收入计，年内随累计收入增加而上升。"


# --------------------------------------------------------------------------- overview


def _overview(
    label: str, summary: ClusterSummary, status: StatusSummary, statuses: list[StatusRow],
    sections: list[AssessmentSection], goals: Sequence[Goal],
) -> list[str]:
    paras = []
    if summary.reported == 0:
        first = f"{summary.months}，全市{summary.clusters}个县域特色产业集群本期尚无营业收入数据。"
    else:
        scope = (
            f"全市{summary.clusters}个县域特色产业集群"
            if summary.reported == summary.clusters
            else f"全市{summary.clusters}个县域特色产业集群中已报送数据的{summary.reported}个集群"
        )
        first = f"{summary.months}，{scope}累计实现营业收入{_fmt(summary.revenue_yi)}亿元"
        if summary.growth is not None:
            trend = "增长" if summary.growth >= 0 else "下降"
            first += f"，同比{trend}{abs(summary.growth):.1f}%（上年同期{_fmt(summary.revenue_ly / YI)}亿元）。"
        else:
            first += "，上年同期数据不全，暂不计算同比增速。"
        tiers = {t.tier: t.count for t in summary.tiers}
        first += (
            f"按本年累计营业收入计，超百亿元的集群{summary.over_100}个"
            f"（其中500亿元以上{tiers[TIER_500]}个、200—500亿元{tiers[TIER_200]}个、100—200亿元{tiers[TIER_100]}个）"
        )
        goal = next((g for g in goals if g.measure == "tier" and g.tier == "100+" and g.target), None)
        if goal is None:
            first += "。"
        else:
            aim = f"{goal.year}年“超百亿级集群{goal.target_text}个”目标"
            gap = int(goal.target or 0) - summary.over_100
            first += f"，距{aim}尚差{gap}个。" if gap > 0 else f"，已达到{aim}。"
    paras.append(first)

    second = f"{label}数据报送方面，{status.sentence}"
    for state, word in (("late", "迟报"), ("missing", "漏报"), ("rejected", "退回"), ("not_due", "截止前尚未报送")):
        names = [s.county_name for s in statuses if s.state == state]
        if names and len(names) <= 10:
            second += f"{word}的县（市）：{'、'.join(names)}。"
    paras.append(second)

    for s in sections:
        if not s.assessable:
            paras.append(f"《{s.title}》（{s.version}版）本期不予排名，不进行奖惩结算：{'；'.join(s.reasons)}。")
            continue
        if not s.ranking:
            paras.append(f"《{s.title}》（{s.version}版）本期无参评县（市）。")
            continue
        text = f"《{s.title}》（{s.version}版）中，{_names(s.top)}位列前三"
        text += f"，{_names(s.bottom)}位列后三。" if s.bottom else "。"
        text += "对排名靠前的县（市）予以通报表扬；排名靠后的县（市）要认真查找差距、分析原因，采取有力措施迎头赶上。"
        if s.settlement is not None and s.settlement.applies:
            rewards = "、".join(f"{r:g}万元" for r in s.settlement.rewards)
            text += f"按照工作方案，考核前三名分别获得{rewards}奖励，由考核后三名承担。"
        elif s.settlement is not None:
            text += s.settlement_note
        paras.append(text)
    return paras


# --------------------------------------------------------------------------- the bulletin


def build_bulletin(
    *,
    registry: Registry,
    issuer: str,
    city: str,
    period: Period,
    results: list[AssessmentResult],
    previous: Mapping[str, AssessmentResult | None],
    statuses: list[CountyStatus],
    values: Values,
    goal_values: Values,
    issued: date,
    goal_period: str = "",
    preview: str = "",
    edition: Edition | None = None,
) -> Bulletin:
    """The whole bulletin for a period; several results give one section each, in the given order.

    A `preview` (its mark) is printed on every page, and its attachments are named 【预览】….
    An `edition` numbers a published bulletin (第1版 …); from the second on it is a correction:
    marked 更正 in the subject and first lines, saying what changed, its attachments named
    …（第2版）."""
    p = period
    label = period_label(p)
    title = bulletin_title(p)

    sections = [_section(r, previous.get(r.rulebook)) for r in results]
    clusters, summary = _clusters(registry, values, p, {s.county_code: s.state for s in statuses})
    status_rows, warnings, status_summary = _statuses(registry, statuses)
    goals = _goals(registry, values, goal_values, goal_period, summary)
    texts = _texts(registry, values)

    units = max([len(s.ranking) for s in sections] + [len(status_rows)], default=0)
    compact = units > FULL_TABLE_MAX or len(clusters) > FULL_LIST_MAX
    tag = f"【{preview}】" if preview else ""
    xlsx_name, html_name = f"{tag}{title}.xlsx", f"{tag}{title}.html"
    if compact:
        shown = [c for c in clusters if c.revenue is not None]
        shown.sort(key=lambda c: (-(c.revenue or 0.0), c.index))
        clusters_excerpt = Excerpt(shown[:EXCERPT_HEAD], len(clusters) - min(len(shown), EXCERPT_HEAD))
        exceptions = [s for s in status_rows if s.state != "on_time"]
        statuses_excerpt = Excerpt(exceptions[:FULL_LIST_MAX], len(status_rows) - min(len(exceptions), FULL_LIST_MAX))
        compact_note = _compact_note(units, xlsx_name)
    else:
        clusters_excerpt = excerpt(clusters, FULL_LIST_MAX, FULL_LIST_MAX, 0)
        statuses_excerpt = Excerpt(list(status_rows))
        compact_note = ""

    goal_note = _goal_note(registry.goals)
    tier_note = (
        f"注：规模档次按{summary.months}累计营业收入（已达到的规模）划分：500亿以上为5,000,000万元及以上，"
        "200–500亿为2,000,000万元至5,000,000万元，100–200亿为1,000,000万元至2,000,000万元；"
        "未报送指本期无该集群营业收入数据。同比增长 =（本年累计 − 上年同期）÷ 上年同期。"
    )

    bulletin = Bulletin(
        issuer=issuer,
        city=city,
        title=title,
        period=str(p),
        period_kind=p.kind,
        period_label=label,
        issued=issued,
        date_line=chinese_date(issued),
        overview=_overview(label, summary, status_summary, status_rows, sections, registry.goals),
        sections=sections,
        clusters=clusters,
        clusters_excerpt=clusters_excerpt,
        cluster_summary=summary,
        tier_note=tier_note,
        statuses=status_rows,
        statuses_excerpt=statuses_excerpt,
        status_summary=status_summary,
        warnings=warnings,
        warnings_excerpt=excerpt(warnings, FULL_LIST_MAX, FULL_LIST_MAX, 0),
        goals=goals,
        goal_note=goal_note,
        texts=texts,
        texts_excerpt=excerpt(texts, FULL_LIST_MAX, FULL_LIST_MAX, 0),
        compact=compact,
        compact_note=compact_note,
        xlsx_name=xlsx_name,
        html_name=html_name,
        preview=preview,
        subject=title,
        footer_left=issuer,
        footer_right=label,
    )
    return with_edition(bulletin, edition) if edition is not None and not preview else bulletin


def _compact_note(units: int, xlsx_name: str) -> str:
    return (
        f"本期参评县（市）{units}个，网页仅列出排名前{EXCERPT_HEAD}位和后{EXCERPT_TAIL}位、营业收入前{EXCERPT_HEAD}位的集群"
        f"及未按时报送的县（市）；完整排名、分项得分、集群情况和报送情况见附件工作簿《{xlsx_name}》。"
    )


def with_edition(b: Bulletin, edition: Edition) -> Bulletin:
    """The bulletin as published version `edition.version`: 第1版, or a correction of the one
    before (更正 in the subject and the first lines, what changed, attachments named …（第2版）)."""
    version = edition.version
    label = f"第{version}版"
    b = replace(b, version=version, version_label=label, subject=bulletin_subject(b.title, edition),
                footer_right=f"{b.period_label}　{label}")
    if version <= 1:
        return b
    xlsx_name = f"{b.title}（{label}）.xlsx"
    units = max([len(s.ranking) for s in b.sections] + [len(b.statuses)], default=0)
    return replace(
        b,
        corrects=version - 1,
        correction_heading=correction_heading(edition),
        correction=list(edition.changes),
        xlsx_name=xlsx_name,
        html_name=f"{b.title}（{label}）.html",
        compact_note=_compact_note(units, xlsx_name) if b.compact else "",
    )
