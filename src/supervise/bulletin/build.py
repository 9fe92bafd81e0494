"""Build the bulletin model from results, reporting status and the period's data.

Pure: no files, no database, no clock. Everything the writers print is decided here, including
which rows a web page shows of a very large table (see `FULL_TABLE_MAX`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date

from ..assess.model import AssessmentResult
from ..periods import Period, chinese_date
from ..registry import Goal, Registry
from ..status import CountyStatus
from .model import (
    TIER_100,
    TIER_200,
    TIER_500,
    AssessmentSection,
    Bulletin,
    ClusterSummary,
    Edition,
    Excerpt,
    StatusRow,
    StatusSummary,
)
from .sections import assessment_section
from .tables import cluster_table, goal_rows, goals_note, status_table, text_rows
from .wording import (
    EXCERPT_HEAD,
    EXCERPT_TAIL,
    FULL_LIST_MAX,
    FULL_TABLE_MAX,
    YI,
    Values,
    bulletin_subject,
    bulletin_title,
    correction_heading,
    excerpt,
    fmt,
    names_of,
    period_label,
    tier_of,
)

# --------------------------------------------------------------------------- helpers


# --------------------------------------------------------------------------- sections


# --------------------------------------------------------------------------- data tables


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
        first = f"{summary.months}，{scope}累计实现营业收入{fmt(summary.revenue_yi)}亿元"
        if summary.growth is not None:
            trend = "增长" if summary.growth >= 0 else "下降"
            first += f"，同比{trend}{abs(summary.growth):.1f}%（上年同期{fmt(summary.revenue_ly / YI)}亿元）。"
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
        text = f"《{s.title}》（{s.version}版）中，{names_of(s.top)}位列前三"
        text += f"，{names_of(s.bottom)}位列后三。" if s.bottom else "。"
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

    sections = [assessment_section(r, previous.get(r.rulebook)) for r in results]
    clusters, summary = cluster_table(registry, values, p, {s.county_code: s.state for s in statuses})
    status_rows, warnings, status_summary = status_table(registry, statuses)
    goals = goal_rows(registry, values, goal_values, goal_period, summary)
    texts = text_rows(registry, values)

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

    goal_note = goals_note(registry.goals)
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


__all__ = [
    "FULL_TABLE_MAX", "Values", "build_bulletin", "bulletin_subject", "bulletin_title", "correction_heading",
    "excerpt", "tier_of", "with_edition",
]

