"""The one bulletin (通报) model that both writers render.

`build.build_bulletin` fills it from assessment results, reporting status and the period's data;
`excel.write_workbook` and `html.render_page` / `html.render_email` only format what is here.
Numbers stay numbers (floats, None = no value); the writers choose digits and units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Generic, TypeVar

T = TypeVar("T")

TIER_500 = "500亿以上"
TIER_200 = "200–500亿"
TIER_100 = "100–200亿"
TIER_BELOW = "100亿以下"
TIER_NONE = "未报送"
TIERS = (TIER_500, TIER_200, TIER_100, TIER_BELOW, TIER_NONE)


@dataclass
class Excerpt(Generic[T]):
    """Rows a page shows of a long table: a head, how many were left out, a tail."""

    head: list[T]
    omitted: int = 0
    tail: list[T] = field(default_factory=list)

    @property
    def rows(self) -> list[T]:
        return self.head + self.tail


@dataclass
class RankingRow:
    rank: int
    county_code: str
    county_name: str
    score: float                      # rounded total that decided the rank
    points_total: float               # sum of indicator points before deductions
    deductions: float
    previous_rank: int | None
    change: str                       # up | down | same | new
    change_label: str                 # 进位2 | 退位1 | 持平 | —
    mark: str                         # top | bottom | ""
    reporting: str                    # 按时报送 | 迟报 | 漏报 | 退回


@dataclass
class IndicatorColumn:
    code: str
    label: str
    weight: float
    method: str
    unit: str = ""


@dataclass
class PointsRow:
    rank: int
    county_code: str
    county_name: str
    points: list[float | None]        # in the order of AssessmentSection.indicators
    values: list[float | None]        # the unit's computed value per indicator
    deductions: float
    deduction_note: str
    score: float


@dataclass
class LedgerRow:
    payer_code: str
    payer_name: str
    payee_code: str
    payee_name: str
    amount: float                     # 万元


@dataclass
class NetRow:
    county_code: str
    county_name: str
    rank: int | None
    net: float                        # 万元: + receives, − pays


@dataclass
class SettlementView:
    applies: bool
    reason: str                       # why not, when it does not apply
    rewards: list[float]
    ledger: list[LedgerRow]
    nets: list[NetRow]
    ledger_total: float               # the sum of all transfers (万元)
    net_sum: float                    # sums to zero when the ledger is balanced


@dataclass
class TallyRow:
    county_code: str
    county_name: str
    new_entered: float
    upgraded: float
    amount: float                     # 万元


@dataclass
class AssessmentSection:
    """One rulebook's results for the period."""

    rulebook: str
    title: str
    version: str
    period: str
    previous_period: str              # "" when there was no previous result
    indicators: list[IndicatorColumn]
    ranking: list[RankingRow]
    ranking_excerpt: Excerpt[RankingRow]
    top: list[RankingRow]
    bottom: list[RankingRow]
    points: list[PointsRow]
    points_excerpt: Excerpt[PointsRow]
    settlement: SettlementView | None
    settlement_note: str              # printed when there is no settlement section to show
    tally: list[TallyRow]
    tally_title: str                  # 新增规上工业企业奖励（新建入统每家2万元、小升规每家1万元）
    tally_total: float
    max_score: float                  # highest score (chart scale)
    assessable: bool = True           # False: nothing ranked or settled, `reasons` says why
    reasons: list[str] = field(default_factory=list)


@dataclass
class ClusterRow:
    index: int
    county_code: str
    county_name: str
    cluster_code: str
    cluster_name: str
    revenue: float | None             # 万元, YTD
    revenue_yi: float | None          # 亿元, YTD
    revenue_ly: float | None          # 万元, same period last year
    growth: float | None              # %
    tier: str                         # one of TIERS
    absent: str = TIER_NONE           # what stands for no figures: 未报送 | 退回 | 截止前未报送

    @property
    def reported(self) -> bool:
        return self.revenue is not None


@dataclass
class TierCount:
    tier: str
    count: int


@dataclass
class ClusterSummary:
    clusters: int                     # registered clusters
    reported: int                     # clusters with a revenue value
    revenue: float                    # 万元, sum over reported clusters
    revenue_yi: float
    revenue_ly: float                 # 万元, sum of last year's values where both years are known
    growth: float | None              # %, over clusters with both years
    tiers: list[TierCount]
    over_100: int                     # clusters at 100亿 or more (YTD)
    months: str                       # 1—3月 / 全年: the YTD span the revenue covers


@dataclass
class StatusRow:
    county_code: str
    county_name: str
    state: str                        # on_time | late | missing | rejected | not_due
    label: str                        # 按时报送 | 迟报 | 漏报 | 退回 | 未到截止
    received_at: str                  # 2025-04-03 16:20 (Asia/Shanghai), "" if none
    days_late: int
    detail: str                       # 迟报2天 / the reason it was sent back
    warnings: int


@dataclass
class StatusSummary:
    counties: int
    on_time: int
    late: int
    missing: int
    rejected: int
    not_due: int                      # nothing received yet, before the deadline (未到截止)
    completeness: float               # %
    timeliness: float                 # %
    warnings: int
    sentence: str                     # 应报14个县（市），按时报送11个、…；报送完整率85.7%，及时率78.6%；…


@dataclass
class WarningRow:
    county_code: str
    county_name: str
    where: str                        # 填报表!H7 · 化工 · 营业收入（本年累计）
    message: str                      # text from the submission's validation, shown as text
    code: str


@dataclass
class GoalRow:
    label: str
    unit: str
    current: float | None
    goal: float | None                # None for goals stated as growth rates
    goal_text: str                    # 25 / 年均增长15%以上
    percent: float | None             # current / goal × 100
    basis: str                        # how `current` was obtained


@dataclass
class TextRow:
    county_code: str
    county_name: str
    cluster_code: str
    cluster_name: str
    progress: str
    problems: str
    next_steps: str


@dataclass(frozen=True)
class Edition:
    """Which published version of the period's bulletin this is, and what it corrects."""

    version: int                      # 1, 2, … (第1版, 第2版 …)
    changes: tuple[str, ...] = ()     # what changed against version − 1; () for the first


@dataclass
class Bulletin:
    issuer: str
    city: str
    title: str
    period: str                       # 2025-03 | 2025Q1 | 2025
    period_kind: str                  # month | quarter | year
    period_label: str                 # 2025年3月 | 2025年第一季度 | 2025年度
    issued: date
    date_line: str                    # 2025年4月8日
    overview: list[str]               # 总体情况 paragraphs
    sections: list[AssessmentSection]
    clusters: list[ClusterRow]
    clusters_excerpt: Excerpt[ClusterRow]
    cluster_summary: ClusterSummary
    tier_note: str
    statuses: list[StatusRow]
    statuses_excerpt: Excerpt[StatusRow]
    status_summary: StatusSummary
    warnings: list[WarningRow]
    warnings_excerpt: Excerpt[WarningRow]
    goals: list[GoalRow]
    goal_note: str
    texts: list[TextRow]
    texts_excerpt: Excerpt[TextRow]
    compact: bool                     # the page shows excerpts; the workbook has every row
    compact_note: str
    xlsx_name: str                    # attachment names for the mailer
    html_name: str
    preview: str = ""                 # a provisional preview's mark, on every page; "" for the bulletin
    subject: str = ""                 # the mail's subject: the title, or 【更正】…（第2版）for a correction
    version: int = 0                  # 1, 2, … the published version; 0: none (a preview)
    version_label: str = ""           # 第2版
    corrects: int = 0                 # the version a correction replaces; 0 for the first
    correction_heading: str = ""      # 更正：本通报为第2版，更正此前发出的第1版……
    correction: list[str] = field(default_factory=list)  # what changed against `corrects`, one line each
    footer_left: str = ""             # every printed page of the workbook: the issuer …
    footer_right: str = ""            # … and the period (with the version)
