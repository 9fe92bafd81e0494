"""Commands of the assess area (registered on the `supervise` group): explain, rules."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .cli import (
    ChineseHelp,
    SuperviseCommand,
    cli,
    county_option,
    emit_json,
    json_option,
    now,
    period_options,
    workspace_required,
)
from .cli_text import safe_markup
from .errors import SuperviseError
from .periods import Period
from .status import STATE_LABELS
from .workspace import Workspace

if TYPE_CHECKING:
    from rich.console import Console

METHOD_LABELS = {
    "rank": "位次赋分",
    "minmax": "功效系数",
    "completion": "目标完成",
    "bands": "分档计分",
    "ratio_to_best": "与最优比",
}
PERIOD_LABELS = {"month": "月度", "quarter": "季度", "year": "年度"}


def _console() -> Console:
    from rich.console import Console

    return Console(highlight=False, width=140, soft_wrap=False)

def Table(*args: Any, **kwargs: Any) -> Any:
    from rich.table import Table as _Table

    return _Table(*args, **kwargs)


def _num(x: Any, digits: int = 4) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{round(x, digits):g}" if abs(x) < 1e15 else f"{x:.6g}"
    return str(x)


def _reference(ind: dict[str, Any]) -> str:
    r = ind["reference"]
    hib = "" if r.get("higher_is_better", True) else "（越小越好）"
    if "missing" in r:
        return "无法计算" + hib
    m = ind["method"]
    if m == "rank":
        return f"第{r['place']}名/共{r['n']}个，每名次差{_num(r['step'])}分{hib}"
    if m == "minmax":
        return f"最小{_num(r['min'])}，最大{_num(r['max'])}，基础分{_num(r['floor'])}%{hib}"
    if m == "completion":
        return f"目标{_num(r['target'])}，完成率{_num(100 * r['ratio'], 2)}%，上限{_num(r['cap'])}{hib}"
    if m == "bands":
        band = r.get("band")
        reached = f"达到 {_num(band[0])} 档，得{_num(100 * band[1], 2)}%" if band else "未达最低档"
        return f"{reached}（档位 {r['bands']}）{hib}"
    if m == "ratio_to_best":
        return f"最优值{_num(r['best'])}{hib}"
    return str(r)


@cli.command("explain")
@county_option(required=True, help="县代码，如 130983。", dest="county_code")
@click.option("--rulebook", "rulebook_id", metavar="ID", help="只看该考核规则（默认：该报告期的全部规则）。")
@click.option("--provisional", is_flag=True,
              help="截止前预览（否则拒绝）：按当前报送情况计算。")
@json_option
@period_options("month", "quarter", "year")
@workspace_required
def explain_command(ws: Workspace, county_code: str, rulebook_id: str | None, provisional: bool, as_json: bool,
                    period: Period) -> None:
    """说明某县得分的由来：输入、计算值、计分方法、得分、扣分和排名。

    未到报送截止的报告期拒绝解释，除非加 --provisional（预览，标注“预览”）；
    数据或目标不足、不能排名的考核规则说明原因。
    """
    from .jobs.assessment import explain
    from .jobs.due import preview_mark, require_due

    at = now()
    before_deadline = require_due(ws.settings.deadlines, period, at, provisional=provisional, what="解释得分")
    doc = explain(ws, county_code, period, rulebook_id, now=at, provisional=provisional)
    if provisional:
        reasons = [r for a in doc["assessments"] for r in a["reasons"]]
        doc["preview"] = preview_mark(before_deadline=before_deadline, reasons=reasons)
    if as_json:
        emit_json(doc)
        return
    console = _console()
    if provisional:
        console.print(f"[bold red]{safe_markup(doc['preview'])}[/bold red]")
    names = {c.code: c.name for c in ws.registry.counties.values()}
    for a in doc["assessments"]:
        _print_assessment(console, a, names)


def _print_assessment(console: Console, a: dict[str, Any], names: dict[str, str]) -> None:
    state = safe_markup(STATE_LABELS.get(a["reporting_state"], a["reporting_state"]))
    if a["reporting_state"] == "late":
        state += f"{a['days_late']}天"
    console.print(
        f"[bold]{safe_markup(a['county_name'])}（{safe_markup(a['county_code'])}） "
        f"{safe_markup(a['period'])} {safe_markup(a['title'])}[/bold]"
        f"（规则 {safe_markup(a['rulebook'])} 版本 {safe_markup(a['version'])}）"
    )
    if not a["assessable"]:
        console.print(f"读取数据：{safe_markup(a['data_period'])}　报送情况：{state}")
        console.print("本期不予排名，不进行奖惩结算：")
        for reason in a["reasons"]:
            console.print(f"  {safe_markup(reason)}", soft_wrap=True)
        console.print("")
        return
    console.print(f"读取数据：{safe_markup(a['data_period'])}　报送情况：{state}　"
                  f"数据质量提示：{safe_markup(a['warnings'])}条")
    table = Table(show_lines=False)
    for col, justify in (
        ("指标", "left"), ("计分方法", "left"), ("输入（汇总值）", "left"), ("计算值", "right"),
        ("对照", "left"), ("权重", "right"), ("得分", "right"),
    ):
        table.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for ind in a["indicators"]:
        inputs = "\n".join(safe_markup(f"{k} = {_num(v)}") for k, v in ind["inputs"].items())
        ref = safe_markup(_reference(ind))
        if ind["note"]:
            ref += f"\n{safe_markup(ind['note'])}"
        table.add_row(
            f"{safe_markup(ind['label'])}\n{safe_markup(ind['code'])} = {safe_markup(ind['expr'])}",
            safe_markup(METHOD_LABELS.get(ind["method"], ind["method"])),
            inputs, _num(ind["value"]), ref, _num(ind["weight"]), _num(ind["points"]),
        )
    console.print(table)
    if a["deductions"]:
        for d in a["deductions"]:
            console.print(f"扣分：{safe_markup(d['note'])}（实扣{_num(d['points'])}分）")
            for n, o in enumerate(d.get("occurrences") or [], start=1):
                kind = "退回" if o["kind"] == "returned" else "校验未通过"
                console.print(f"  {n}. {kind}：{safe_markup(o['file'])}，{safe_markup(o['at'][:16].replace('T', ' '))}，"
                              f"{safe_markup(o['reason'])}")
    else:
        console.print("扣分：无")
    console.print(
        f"指标得分合计 {_num(a['points_total'])} − 扣分 {_num(a['deduction_total'])} = 总分 {_num(a['total'])}，"
        f"保留{a['precision']}位小数为 {_num(a['score'])}；排名 第{a['rank']}名/共{a['n']}个"
    )
    s = a["settlement"]
    if s is not None:
        if not s["applies"]:
            console.print(f"奖惩结算：{safe_markup(s['reason'])}")
        else:
            console.print(f"奖惩结算：净额 {_num(s['net'])} 万元（正数为获得奖励，负数为承担）")
            for line in s["lines"]:
                console.print(
                    f"  {safe_markup(names.get(line['payer'], line['payer']))} → "
                    f"{safe_markup(names.get(line['payee'], line['payee']))}："
                    f"{_num(line['amount'])} 万元"
                )
    t = a["reward_tally"]
    if t is not None:
        console.print(
            f"新增规上企业奖励（本年累计）：新建入统 {_num(t['new_entered'])} 家、小升规 {_num(t['upgraded'])} 家，"
            f"合计 {_num(t['amount'])} 万元" + (f"（{safe_markup(t['note'])}）" if t["note"] else "")
        )
    console.print("")


class _ChecksByDefault(ChineseHelp, click.Group):
    """`supervise rules [FILES...]` is `supervise rules check [FILES...]`: what follows `rules`
    goes to `check` unless it names a subcommand (or asks for help)."""

    command_class = SuperviseCommand

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args = ["check", *args]
        return super().parse_args(ctx, args)


@cli.group("rules", cls=_ChecksByDefault)
def rules_group() -> None:
    """列出并检查考核规则（`supervise rules` 即 `supervise rules check`）。"""


@rules_group.command("check")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@period_options("month", "quarter", "year", required=False)
@json_option
@workspace_required
def rules_command(ws: Workspace, files: tuple[Path, ...], period: Period | None, as_json: bool) -> None:
    """列出并检查 rules/ 中（或给出的 FILES）的考核规则及其警告。

    同时检查排名所需的条件：不给报告期时，检查当前到期和报送中的报告期所在年度的年度目标
    （reference/targets.csv），只作警告；给出 --month/--quarter/--year 时，检查运行该报告期
    现在会读取的数据、目标和指标，有规则不能排名则失败（退出状态 1）。
    """
    from .assess.loading import load_rulebook
    from .jobs.assessment import rulebook_checks, workspace_rulebooks

    if files:
        books = [load_rulebook(f, ws.registry.indicators) for f in files]
    else:
        books = workspace_rulebooks(ws)
    checks = rulebook_checks(ws, books, now(), period)
    docs: list[dict[str, Any]] = [
        {
            "id": b.id, "title": b.title, "version": b.version, "period": b.period, "data": b.data,
            "indicators": [i.describe() for i in b.indicators],
            "weight": sum(i.weight for i in b.indicators),
            "weights_total": b.weights_total,
            "settlement": b.settlement is not None and bool(b.settlement.rewards),
            "path": b.path,
            "warnings": list(b.warnings),
            "checks": checks[b.id],
        }
        for b in books
    ]
    unranked = [(d["id"], c) for d in docs for c in d["checks"] if not c["assessable"]]
    failed = period is not None and bool(unranked)
    if as_json:
        emit_json({"period": str(period) if period else None, "rulebooks": docs})
    else:
        _print_rules(docs, unranked)
    if failed:
        which = "、".join(dict.fromkeys(book for book, _ in unranked))
        raise SuperviseError(
            f"{period.label if period else ''}：考核规则 {which} 不具备考核条件，运行将失败（原因见上） / "
            f"{which} cannot rank {period}: see the reasons above"
        )


def _print_rules(docs: list[dict[str, Any]], unranked: list[tuple[str, dict[str, Any]]]) -> None:
    warnings = [w for d in docs for w in d["warnings"]]
    if unranked:
        books = len(dict.fromkeys(book for book, _ in unranked))
        title = f"考核规则（格式均已通过校验；{books}个规则不具备考核条件" + (f"，{len(warnings)}条警告）" if warnings else "）")
    else:
        title = "考核规则（均已通过校验" + (f"，{len(warnings)}条警告）" if warnings else "）")
    table = Table(title=title)
    for col in ("规则", "名称", "版本", "考核周期", "数据", "指标数", "总权重", "奖惩结算", "文件"):
        table.add_column(col)
    for d in docs:
        table.add_row(
            safe_markup(d["id"]), safe_markup(d["title"]), safe_markup(d["version"]), PERIOD_LABELS[d["period"]],
            "月报" if d["data"] == "monthly" else "季报", str(len(d["indicators"])), _num(d["weight"]),
            "有" if d["settlement"] else "无", safe_markup(Path(d["path"]).name),
        )
    console = _console()
    console.print(table)
    for w in warnings:   # doubts, not refusals: the rulebooks are used as they are
        console.print(f"警告：{safe_markup(w)}", soft_wrap=True)
    for book, c in unranked:
        for reason in c["reasons"]:
            console.print(f"不具备考核条件（{safe_markup(c['period'])}）：{safe_markup(book)}："
                          f"{safe_markup(reason)}", soft_wrap=True)
