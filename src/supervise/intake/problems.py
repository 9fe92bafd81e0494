"""A problem found in a submission: a stable code for machines, a Chinese message for the county."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ERROR = "error"
WARNING = "warning"

# Every code intake can produce (documented, stable; JSON and the database carry them).
CODES: dict[str, str] = {
    # the file as a whole
    "file_unreadable": "无法读取或不是电子表格",
    "file_encrypted": "文件已加密或设有密码",
    "file_too_large": "文件（或其行数、列数、工作表数）超过上限",
    "zip_bomb": "压缩内容异常（疑似压缩炸弹）",
    "xml_entities": "文件含有 DTD/实体声明（不安全）",
    "header_not_found": "找不到指标代码行",
    "internal_error": "处理文件时发生内部错误",
    "reader_failed": "服务器读取文件时出现故障（超时或读取进程被终止），不计为错报",
    "not_stored": "数据库写入失败，文件未能保存（留在收件箱，下次重新处理）",
    # who and when
    "county_mismatch": "县（市）代码与报送单位不符或缺失",
    "unknown_county": "县（市）代码不存在",
    "period_mismatch": "报告期错误",
    "period_not_ended": "报告期尚未结束，不能报送",
    "template_too_old": "模板版本过旧",
    # structure
    "unknown_cluster": "集群代码不存在或不属于本县",
    "missing_cluster": "缺少集群",
    "duplicate_row": "重复的行",
    "unknown_indicator": "未知指标代码",
    "missing_indicator": "缺少指标列",
    "duplicate_column": "重复的指标列",
    # values
    "not_a_number": "数字单元格填写了非数字",
    "negative_count": "企业数等计数不得为负",
    "negative_value": "数值不得为负",
    "percent_out_of_range": "百分比超出0～100",
    "out_of_range": "数值超出允许范围",
    "not_integer": "应为整数",
    "ent_above_gt_total": "规上企业数大于企业总数",
    "ent_in_park_gt_total": "入园企业数大于企业总数",
    "empty_value": "必填单元格为空",
    "formula_without_value": "公式没有计算结果",
    "text_too_long": "文字过长",
    # warnings
    "ytd_decreased": "累计值小于上月",
    "jump": "环比变化异常",
    "unit_slip": "疑似单位错误（元/万元）",
    "percent_as_fraction": "百分比疑似按小数录入（62%存为0.62）",
}


@dataclass
class Problem:
    code: str
    message: str
    severity: str = ERROR
    sheet: str | None = None
    cell: str | None = None
    cluster_code: str | None = None
    indicator: str | None = None
    where_text: str | None = None   # the place when it is not sheet!cell (e.g. "CSV第5行")

    @property
    def place(self) -> str:
        """Sheet and cell (or CSV line), or the whole file."""
        if self.where_text:
            return self.where_text
        if self.sheet and self.cell:
            return f"{self.sheet}!{self.cell}"
        return self.cell or self.sheet or "文件"

    @property
    def where(self) -> str:
        """Every part of the place that applies: "填报表!I7 / CZ01 / revenue_ytd",
        "CSV第5行 / CZ01 / revenue_ytd", "填报表 / CZ03", "文件"."""
        return " / ".join(x for x in (self.place, self.cluster_code, self.indicator) if x)

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "where": self.where,
            "message": self.message,
            "severity": self.severity,
            "sheet": self.sheet,
            "cell": self.cell,
            "cluster_code": self.cluster_code,
            "indicator": self.indicator,
        }


def csv_place(row: int | None) -> str:
    """Where a problem of a long CSV is: its line, or the file as a whole."""
    return f"CSV第{row}行" if row else "CSV"


def csv_place_of(cell: str | None) -> str:
    """The place of a stored CSV problem, from its cell reference ("E5" -> "CSV第5行")."""
    digits = "".join(ch for ch in cell or "" if ch.isdigit())
    return csv_place(int(digits) if digits else None)


class FileRejected(Exception):
    """The file cannot be read at all; carries the one problem that says why."""

    def __init__(self, code: str, message: str, *, sheet: str | None = None, cell: str | None = None) -> None:
        super().__init__(message)
        self.problem = Problem(code, message, sheet=sheet, cell=cell)


def short_reason(exc: BaseException) -> str:
    """The first line of an exception, at most 120 characters, for a county's message."""
    s = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return s[:120]
