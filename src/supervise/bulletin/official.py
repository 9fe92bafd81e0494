"""The 通报 as an official document (GB/T 9704-2012), shared by the Word and the PDF writers.

`outline(b)` turns the bulletin model into blocks: headings in the standard's order (一、 黑体,
（一） 楷体, 1. 仿宋), paragraphs, and tables whose columns are given in millimetres of the
156 mm 版心. `DocumentHead` carries what the settings add (发文机关标志, 文号, 主送机关, 版记).
`docx.write_docx` and `pdf.write_pdf` draw the same blocks, so the document staff sign and the
PDF everyone reads say the same thing; neither computes anything, both only format.

Every county is in the ranking table, however many there are. Above `build.FULL_TABLE_MAX`
counties the other long tables (indicator points, clusters, reporting status) show what the web
page shows (head and tail, the largest clusters, the counties that did not report on time) and
say that the workbook has every row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from ..templating import cn_numeral, fmt_count, fmt_number, fmt_percent, fmt_signed
from .charts import HBarChart, score_chart, tier_chart
from .model import AssessmentSection, Bulletin, PointsRow

WIDTH_MM = 156.0          # 版心 width
HEIGHT_MM = 225.0         # 版心 height
LINES = 22                # lines per page …
CHARS = 28                # … and characters per line, in 3号 (16 pt)


@dataclass(frozen=True)
class DocumentHead:
    """What the settings add to the model: the 版头 and the 版记."""

    mark: str                     # 发文机关标志, in red at the top of the first page
    number: str = ""              # 文号: 沧工信字〔2025〕12号; "" prints none
    addressee: str = ""           # 主送机关: 各县（市）：
    signer: str = ""              # 落款 (发文机关署名); "" = the mark
    printed_by: str = ""          # 印发机关 in the 版记; "" = the signer
    cc: str = ""                  # 抄送; "" prints no 抄送 line

    @classmethod
    def of(cls, b: Bulletin, *, issuer: str = "", number: str = "", addressee: str = "", printed_by: str = "",
           cc: str = "", seq: int | str = "") -> DocumentHead:
        """From the [bulletin] settings: `issuer` the mark ("" = the bulletin's issuer), `number`
        the 文号 pattern ({year}, {seq}; "" = none)."""
        mark = issuer or b.issuer
        return cls(mark, document_number(number, b, seq) if number else "", addressee, "", printed_by, cc)

    @property
    def signature(self) -> str:
        return self.signer or self.mark

    @property
    def printer(self) -> str:
        return self.printed_by or self.signature


def document_number(pattern: str, b: Bulletin, seq: int | str = "") -> str:
    """The 文号 from the settings' pattern: {year} is the year of issue, {seq} the running number
    the office gives it ("" leaves a blank for the clerk to fill in before signing)."""
    blank = "　　" if seq == "" else str(seq)
    try:
        return pattern.format(year=b.issued.year, seq=blank)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"[bulletin] number {pattern!r}: only {{year}} and {{seq}} may be used ({exc})") from exc


def head_of(b: Bulletin, *, issuer_number: str | None = None, head: DocumentHead | None = None) -> DocumentHead:
    """The head to print: the given one (or the bulletin's issuer alone), with `issuer_number` as its 文号."""
    h = head or DocumentHead(mark=b.issuer)
    if issuer_number is not None:
        h = DocumentHead(h.mark, issuer_number, h.addressee, h.signer, h.printed_by, h.cc)
    return h


def mark_size(mark: str) -> int:
    """Points for the 发文机关标志: as large as one line of the 版心 allows, 22 to 36 (小初)."""
    fits = int(WIDTH_MM / 25.4 * 72 / max(len(mark), 1) * 0.95)
    return max(22, min(36, fits))


def text_width(text: str) -> float:
    """Width in characters of the body font: an ASCII character (a digit) is half of one."""
    return sum(0.5 if ord(ch) < 128 else 1.0 for ch in text)


def date_shift(signature: str, date_line: str) -> float:
    """Characters between the date and the right edge, so that the date's first character
    stands two to the right of the signature's (the signature is two in from the edge)."""
    return max(text_width(signature) - text_width(date_line), 0.0)


# --------------------------------------------------------------------------- blocks


@dataclass
class Heading:
    level: int                    # 1: 一、(黑体)  2: （一）(楷体)  3: 1. (仿宋, bold)
    text: str


@dataclass
class Para:
    text: str
    kind: str = "body"            # body (first line indented two characters) | note | alert (red)


@dataclass
class Column:
    label: str
    width: float                  # mm; a table's columns add up to WIDTH_MM
    align: str = "center"         # left | center | right


@dataclass
class Row:
    cells: list[str]
    kind: str = ""                # top | bottom | total | gap (one cell across the table)


@dataclass
class Table:
    title: str                    # the line above the table (e.g. 表1　综合排名)
    columns: list[Column]
    rows: list[Row]
    size: float = 10.5            # pt: 五号 (9 pt, 小五, for wide tables)
    key: str = ""                 # ranking | points | ledger | nets | tally | tiers | clusters | status | warnings | goals | texts


@dataclass
class Chart:
    chart: HBarChart              # drawn as vector graphics in the PDF; the Word document has the table


Block: TypeAlias = Heading | Para | Table | Chart


@dataclass
class Outline:
    head: DocumentHead
    title: str
    banner: list[str] = field(default_factory=list)     # a preview's mark, a correction's lines (red)
    blocks: list[Block] = field(default_factory=list)
    signature: str = ""
    date_line: str = ""
    printed: str = ""             # 2025年4月8日印发


# --------------------------------------------------------------------------- helpers


def _cols(spec: list[tuple[str, float, str]]) -> list[Column]:
    cols = [Column(label, width, align) for label, width, align in spec]
    total = sum(c.width for c in cols)
    if abs(total - WIDTH_MM) > 0.01:
        # Scale to the 版心; the last column takes the rounding.
        cols = [Column(c.label, round(c.width * WIDTH_MM / total, 2), c.align) for c in cols]
        cols[-1].width = round(WIDTH_MM - sum(c.width for c in cols[:-1]), 2)
    return cols


def _gap(n: int, what: str, cols: int) -> Row:
    return Row([f"……{what}{n}个从略，详见附件工作簿……"] + [""] * (cols - 1), "gap")


# --------------------------------------------------------------------------- sections


def _ranking(s: AssessmentSection) -> Table:
    cols = _cols([("名次", 11, "center"), ("县（市）", 30, "left"), ("综合得分", 17, "right"),
                  ("指标得分", 17, "right"), ("扣分", 13, "right"), ("上期名次", 18, "center"),
                  ("名次变化", 18, "center"), ("报送情况", 18, "center"), ("备注", 14, "center")])
    rows = [
        Row([str(r.rank), r.county_name, fmt_number(r.score), fmt_number(r.points_total), fmt_number(r.deductions),
             str(r.previous_rank) if r.previous_rank is not None else "—", r.change_label, r.reporting,
             "前三" if r.mark == "top" else "后三" if r.mark == "bottom" else ""], r.mark)
        for r in s.ranking
    ]
    return Table("综合排名", cols, rows, key="ranking")


def _points(s: AssessmentSection) -> tuple[Table, list[str]]:
    n = len(s.indicators)
    fixed = 10 + 28 + 12 + 16
    each = (WIDTH_MM - fixed) / max(n, 1)
    cols = _cols([("名次", 10, "center"), ("县（市）", 28, "left")]
                 + [(f"{c.label}（{c.weight:g}分）", each, "right") for c in s.indicators]
                 + [("扣分", 12, "right"), ("综合得分", 16, "right")])
    ex = s.points_excerpt

    def row(p: PointsRow) -> Row:
        return Row([str(p.rank), p.county_name, *(fmt_number(v) for v in p.points), fmt_number(p.deductions),
                    fmt_number(p.score)])

    rows = [row(p) for p in ex.head]
    if ex.omitted:
        rows.append(_gap(ex.omitted, "中间县（市）", len(cols)))
    rows += [row(p) for p in ex.tail]
    notes = [f"{p.county_name}：{p.deduction_note}" for p in ex.rows if p.deduction_note]
    return Table("分项得分", cols, rows, size=10.5 if n <= 5 else 9.0, key="points"), notes


def _settlement(s: AssessmentSection, blocks: list[Block], number: int) -> int:
    v = s.settlement
    if v is not None and v.applies:
        blocks.append(Heading(3, f"{number}.奖惩结算"))
        number += 1
        rows = [Row([t.payer_name, t.payee_name, fmt_number(t.amount)]) for t in v.ledger]
        rows.append(Row(["合计", "", fmt_number(v.ledger_total)], "total"))
        blocks.append(Table("奖惩资金结算", _cols([("付款县（市）", 52, "left"), ("收款县（市）", 52, "left"),
                                            ("金额（万元）", 52, "right")]), rows, key="ledger"))
        nets = [Row([n.county_name, str(n.rank) if n.rank is not None else "—", fmt_signed(n.net)]) for n in v.nets]
        nets.append(Row(["净额合计", "", fmt_signed(v.net_sum)], "total"))
        blocks.append(Table("各县（市）结算净额（正数为获得奖励，负数为承担奖励资金）",
                            _cols([("县（市）", 60, "left"), ("名次", 30, "center"), ("净额（万元）", 66, "right")]),
                            nets, key="nets"))
    else:
        blocks.append(Para(s.settlement_note))
    if s.tally:
        blocks.append(Heading(3, f"{number}.{s.tally_title}"))
        number += 1
        rows = [Row([t.county_name, fmt_count(t.new_entered), fmt_count(t.upgraded), fmt_number(t.amount)])
                for t in s.tally]
        rows.append(Row(["合计", "", "", fmt_number(s.tally_total)], "total"))
        blocks.append(Table("新增规上工业企业奖励", _cols([("县（市）", 48, "left"), ("新建入统（家）", 36, "right"),
                                                 ("小升规（家）", 36, "right"), ("奖励金额（万元）", 36, "right")]),
                            rows, key="tally"))
    return number


def _section(s: AssessmentSection, index: int, blocks: list[Block]) -> None:
    blocks.append(Heading(2, f"（{cn_numeral(index)}）{s.title}"))
    if not s.assessable:
        blocks.append(Para(f"考核规则：《{s.title}》（{s.version}版）。本期不予排名，不进行奖惩结算：" + "；".join(s.reasons) + "。",
                           "alert"))
        return
    compare = f"，比较期为{s.previous_period}" if s.previous_period else ""
    blocks.append(Para(f"考核规则：《{s.title}》（{s.version}版），参评县（市）{len(s.ranking)}个{compare}。"))
    if s.top or s.bottom:
        top = "、".join(f"{r.county_name}（{fmt_number(r.score)}分）" for r in s.top) or "—"
        bottom = "、".join(f"{r.county_name}（{fmt_number(r.score)}分）" for r in s.bottom) or "—"
        blocks.append(Para(f"鼓励先进，排名前三的是：{top}；鞭策后进，排名后三的是：{bottom}。"))
    blocks.append(Heading(3, "1.综合排名"))
    if s.ranking:
        blocks.append(Chart(score_chart(s)))
    blocks.append(_ranking(s))
    blocks.append(Para(
        f"注：名次变化与上期（{s.previous_period}）相比，“—”表示上期未参评。" if s.previous_period
        else "注：本规则无上期考核结果，名次变化记为“—”。", "note"))
    blocks.append(Heading(3, "2.分项得分"))
    points, notes = _points(s)
    blocks.append(points)
    if notes:
        blocks.append(Para("扣分说明：" + "；".join(notes) + "。", "note"))
    _settlement(s, blocks, 3)


def _clusters(b: Bulletin, blocks: list[Block]) -> None:
    cs = b.cluster_summary
    blocks.append(Heading(1, "三、集群发展情况"))
    growth = f"同比增长{fmt_percent(cs.growth)}" if cs.growth is not None else "同比增速无法计算"
    blocks.append(Para(f"{cs.months}，已报送数据的集群{cs.reported}个（共{cs.clusters}个），累计营业收入"
                       f"{fmt_number(cs.revenue_yi)}亿元，{growth}；营业收入超百亿元的集群{cs.over_100}个。"))
    blocks.append(Chart(tier_chart(cs)))
    blocks.append(Table("集群规模档次分布", _cols([("规模档次", 78, "center"), ("集群数（个）", 78, "right")]),
                        [Row([t.tier, fmt_count(t.count)]) for t in cs.tiers], key="tiers"))
    cols = _cols([("序号", 12, "center"), ("县（市）", 28, "left"), ("集群", 36, "left"),
                  ("营业收入（万元）", 24, "right"), ("营业收入（亿元）", 20, "right"), ("同比增长", 16, "right"),
                  ("规模档次", 20, "center")])
    ex = b.clusters_excerpt
    rows = [
        Row([str(c.index), c.county_name, c.cluster_name,
             fmt_count(c.revenue) if c.reported else c.absent,
             fmt_number(c.revenue_yi) if c.reported else "—",
             fmt_percent(c.growth) if c.reported else "—",
             c.tier if c.reported else c.absent])
        for c in ex.rows
    ]
    if ex.omitted:
        rows.append(_gap(ex.omitted, "其余集群", len(cols)))
    rows.append(Row([f"合计（已报送{cs.reported}个）", "", "", fmt_count(cs.revenue), fmt_number(cs.revenue_yi),
                     fmt_percent(cs.growth), ""], "total"))
    title = "各集群营业收入" if not ex.omitted else f"营业收入前{len(ex.head)}位的集群（全部{cs.clusters}个集群见附件工作簿）"
    blocks.append(Table(title, cols, rows, key="clusters"))
    blocks.append(Para(b.tier_note, "note"))


def _status(b: Bulletin, blocks: list[Block]) -> None:
    blocks.append(Heading(1, "四、数据报送情况"))
    blocks.append(Para(b.status_summary.sentence))
    cols = _cols([("序号", 12, "center"), ("县（市）", 32, "left"), ("报送情况", 20, "center"),
                  ("接收时间", 32, "center"), ("说明", 42, "left"), ("提示（条）", 18, "right")])
    ex = b.statuses_excerpt
    rows = [Row([str(i), s.county_name, s.label, s.received_at or "—", s.detail, fmt_count(s.warnings)],
                "" if s.state in ("on_time", "not_due") else "bottom")
            for i, s in enumerate(ex.rows, start=1)]
    if ex.omitted:
        rows.append(_gap(ex.omitted, "按时报送的县（市）", len(cols)))
    title = "各县（市）报送情况" if not b.compact else "未按时报送的县（市）（全部报送情况见附件工作簿）"
    if rows:
        blocks.append(Table(title, cols, rows, key="status"))
    else:
        blocks.append(Para("各县（市）均按时报送。"))
    blocks.append(Heading(2, "（一）数据质量提示"))
    if not b.warnings:
        blocks.append(Para("本期无数据质量提示。"))
        return
    wx = b.warnings_excerpt
    wrows = [Row([w.county_name, w.where, w.message]) for w in wx.rows]
    if wx.omitted:
        wrows.append(Row([f"……其余{wx.omitted}条从略，详见附件工作簿……", "", ""], "gap"))
    blocks.append(Table("数据质量提示", _cols([("县（市）", 30, "left"), ("位置", 56, "left"), ("提示内容", 70, "left")]),
                        wrows, key="warnings"))


def _goals(b: Bulletin, blocks: list[Block]) -> None:
    blocks.append(Heading(1, "五、2025年主要目标进度"))
    rows = []
    for g in b.goals:
        current = fmt_percent(g.current) if g.unit == "%" else (
            f"{fmt_count(g.current)}{g.unit}" if g.current is not None else "—")
        goal = g.goal_text + (g.unit if g.goal is not None and g.unit != "%" else "")
        rows.append(Row([g.label, current, goal, fmt_percent(g.percent), g.basis]))
    blocks.append(Table("2025年主要目标完成进度", _cols([("目标", 44, "left"), ("当前值", 24, "right"),
                                                ("2025年目标", 26, "right"), ("完成进度", 20, "right"),
                                                ("口径说明", 42, "left")]), rows, key="goals"))
    blocks.append(Para(b.goal_note, "note"))


def _texts(b: Bulletin, blocks: list[Block]) -> None:
    blocks.append(Heading(1, "六、各集群进展情况"))
    blocks.append(Para("以下为各县（市）季度更新报送的原文。", "note"))
    ex = b.texts_excerpt
    rows = [Row([t.county_name, t.cluster_name, t.progress, t.problems, t.next_steps]) for t in ex.rows]
    if ex.omitted:
        rows.append(Row([f"……其余{ex.omitted}条从略，详见附件工作簿……", "", "", "", ""], "gap"))
    blocks.append(Table("各集群进展情况", _cols([("县（市）", 22, "left"), ("集群", 24, "left"), ("进展成效", 38, "left"),
                                            ("存在问题", 36, "left"), ("下一步措施", 36, "left")]),
                        rows, size=9.0, key="texts"))


def _compact_note(b: Bulletin) -> str:
    units = max([len(s.ranking) for s in b.sections] + [len(b.statuses)], default=0)
    return (f"本期参评县（市）{units}个。综合排名列出全部县（市）；分项得分仅列出排名前后各若干位，集群情况仅列出营业收入"
            f"靠前的集群，报送情况仅列出未按时报送的县（市）；完整数据见附件工作簿《{b.xlsx_name}》。")


# --------------------------------------------------------------------------- the document


def outline(b: Bulletin, head: DocumentHead | None = None) -> Outline:
    """The 通报 as blocks, in the order the document prints them."""
    h = head or DocumentHead(mark=b.issuer)
    out = Outline(head=h, title=b.title, signature=h.signature, date_line=b.date_line,
                  printed=f"{b.date_line}印发")
    if b.preview:
        out.banner.append(f"{b.preview}：本文不是正式通报，不排名公布、不发送")
    if b.correction_heading:
        out.banner += [f"【更正】{b.version_label}", b.correction_heading, *b.correction]
    blocks = out.blocks
    blocks.append(Heading(1, "一、总体情况"))
    blocks += [Para(p) for p in b.overview]
    if b.compact:
        blocks.append(Para(_compact_note(b), "note"))
    blocks.append(Heading(1, "二、考核排名"))
    if not b.sections:
        blocks.append(Para("本期无考核结果。"))
    for i, s in enumerate(b.sections, start=1):
        _section(s, i, blocks)
    _clusters(b, blocks)
    _status(b, blocks)
    _goals(b, blocks)
    if b.texts:
        _texts(b, blocks)
    _number_tables(blocks)
    return out


def _number_tables(blocks: list[Block]) -> None:
    """表1, 表2 … in the order they print."""
    n = 0
    for blk in blocks:
        if isinstance(blk, Table):
            n += 1
            blk.title = f"表{n}　{blk.title}"
