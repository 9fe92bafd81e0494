"""The staff console: the status board of a period, each county's versions and each version's
values, warnings and changes, 退回 with a reason, the bulletins, the run log and the outbox,
and a period's run started with a confirmation."""

from __future__ import annotations

import io
import mimetypes
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, abort, g, request, send_file, url_for

from ..errors import SuperviseError
from ..jobs.locks import LockBusy
from ..labels import ORIGIN_LABELS
from ..periods import Period
from ..store import runs as store_runs
from .app import connection, error_page, render, site
from .auth import audit, roles, time_text
from .county import _labels
from .reading import (
    bulletin_file,
    bulletin_periods,
    history_document,
    parse_report_period,
    period_choices,
    period_label,
    returns_in,
    status_document,
    submission_view,
)

bp = Blueprint("staff", __name__, url_prefix="/staff")

RUN_STATE_LABELS = {"running": "运行中", "success": "成功", "error": "失败", "skipped": "跳过"}
MAIL_STATE_LABELS = {"pending": "待发送", "sent": "已发送", "failed": "发送失败（留在 outbox 待重发）",
                     "superseded": "已被替代"}
MAIL_KIND_LABELS = {"bulletin": "通报", "reminder": "催报", "alert": "故障告警", "return_notice": "退回通知",
                    "mail_reply": "报送回执"}
JOB_LABELS = {"collect": "收取", "remind": "催报", "run_month": "月度考核", "run_quarter": "季度考核",
              "run_year": "年度考核", "catch_up": "补跑", "preview_month": "月度预览", "preview_quarter": "季度预览",
              "preview_year": "年度预览"}


def _period_arg(kinds: tuple[str, ...] = ("month", "quarter")) -> Period:
    the_site = site()
    text = request.values.get("period")
    if not text:
        return the_site.workspace().settings.deadlines.open_period("month", the_site.now())
    p = parse_report_period(text, kinds=kinds)
    if p is None:
        abort(400, f"报告期 {text[:20]} 无效，请写作 2025-03（月份）或 2025Q1（季度）。")
    return p


def _county_arg(code: str) -> str:
    if code not in site().workspace().registry.counties:
        abort(404)
    return code


@bp.get("")
@roles("staff")
def board() -> Response:
    period = _period_arg()
    the_site = site()
    doc = status_document(the_site.workspace(), period, the_site.now())
    return render("board.html", title=f"{period.label}报送情况", period=period, doc=doc,
                  choices=period_choices(the_site.now()), **_labels())


@bp.get("/counties/<code>")
@roles("staff")
def county(code: str) -> Response:
    code = _county_arg(code)
    period = _period_arg()
    the_site = site()
    ws = the_site.workspace()
    doc = history_document(ws, code, period)
    row = next((c for c in status_document(ws, period, the_site.now())["counties"] if c["county_code"] == code), None)
    can_return = any(v["state"] == "current" for v in doc["versions"])
    return render("staff_county.html", title=f"{ws.registry.county_name(code)} {period.label}", period=period,
                  county_code=code, county_name=ws.registry.county_name(code), history=doc, row=row,
                  returns=returns_in(doc), can_return=can_return, choices=period_choices(the_site.now()),
                  link=lambda v: url_for("staff.submission", code=code, period=str(period),
                                         submission_id=v["submission_id"]),
                  **_labels())


@bp.get("/counties/<code>/<period>/<int:submission_id>")
@roles("staff")
def submission(code: str, period: str, submission_id: int) -> Response:
    code = _county_arg(code)
    p = parse_report_period(period)
    if p is None:
        abort(404)
    ws = site().workspace()
    view = submission_view(ws, code, p, submission_id)
    if view is None:
        abort(404)
    return render("submission.html", title="报送版本", view=view, period=p, county_code=code,
                  county_name=ws.registry.county_name(code), staff=True,
                  back=("staff.county", {"code": code, "period": str(p)}), **_labels())


@bp.post("/reject")
@roles("staff")
def reject() -> Response:
    from ..intake import IntakeError, reject_submission

    code = _county_arg(request.form.get("county", ""))
    period = _period_arg()
    reason = (request.form.get("reason") or "").strip()
    if not reason:
        return error_page(400, "退回须填写原因（该县会在页面上看到并收到邮件）。")
    if len(reason) > 2000:
        return error_page(400, "退回原因过长（最多2000字）。")
    the_site = site()
    ws, now = the_site.workspace(), the_site.now()
    try:
        doc = reject_submission(ws, code, period, reason, actor=g.user.name, now=now)
    except IntakeError as exc:
        audit("reject", outcome="refused", county_code=code, period=str(period), reason=reason, error=str(exc))
        return error_page(409, f"未退回：{ws.registry.county_name(code)}{period.label}没有可退回的有效报送"
                               "（可能已被退回，或尚未受理任何文件）。")
    except LockBusy:
        audit("reject", outcome="busy", county_code=code, period=str(period), reason=reason)
        return error_page(503, "系统正在运行考核或收取任务，暂时不能退回，请几分钟后重试；本次未退回。")
    notice = doc["notice"]
    audit("reject", outcome="ok", county_code=code, period=str(period), submission_id=doc["submission_id"],
          reason=reason, file=doc["file_name"], notice_error=notice.get("error"))
    return render("reject_done.html", title="已退回", doc=doc, notice=notice, period=period, county_code=code,
                  county_name=ws.registry.county_name(code), mail_labels=MAIL_STATE_LABELS, **_labels())


# ------------------------------------------------------------------ bulletins


@bp.get("/bulletins")
@roles("staff")
def bulletins() -> Response:
    listing = bulletin_periods(site().workspace())
    return render("bulletins.html", title="通报", listing=listing, period_label=period_label,
                  time_text=lambda dt: dt.strftime("%Y-%m-%d %H:%M"))


@bp.get("/bulletins/<period>/<name>")
@roles("staff")
def bulletin(period: str, name: str) -> Response:
    path = bulletin_file(site().workspace(), period, name)
    if path is None:
        abort(404)
    inline = path.suffix == ".html" and request.args.get("download") is None
    # Read whole (a bulletin is a few hundred KB): nothing stays open if the client goes away.
    response = send_file(io.BytesIO(path.read_bytes()), as_attachment=not inline, download_name=path.name,
                         mimetype=mimetypes.guess_type(path.name)[0] or "application/octet-stream", max_age=0)
    if inline:
        # The bulletin page stands alone: its own inline styles and SVG, no script at all.
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; sandbox")
    return response


# ------------------------------------------------------------------ runs and outbox


def duration_text(started_at: str, ended_at: str | None) -> str:
    if not ended_at:
        return "运行中"
    try:
        seconds = max(0, int((datetime.fromisoformat(ended_at) - datetime.fromisoformat(started_at)).total_seconds()))
    except ValueError:
        return "-"
    if seconds < 60:
        return f"{seconds}秒"
    if seconds < 3600:
        return f"{seconds // 60}分{seconds % 60:02d}秒"
    return f"{seconds // 3600}小时{seconds % 3600 // 60:02d}分"


def _run_labels() -> dict[str, Any]:
    return {"run_labels": RUN_STATE_LABELS, "origin_labels": ORIGIN_LABELS, "mail_labels": MAIL_STATE_LABELS,
            "kind_labels": MAIL_KIND_LABELS, "job_labels": JOB_LABELS, "duration_text": duration_text,
            "time_text": time_text}


@bp.get("/runs")
@roles("staff")
def runs() -> Response:
    conn = connection()
    recent = store_runs.recent_runs(conn, limit=50)
    unsent = store_runs.unsent_deliveries(conn)
    mails = store_runs.recent_deliveries(conn, limit=50)
    return render("runs.html", title="任务与邮件", recent=recent, unsent=unsent, mails=mails, **_run_labels())


@bp.get("/run")
@roles("staff")
def run_confirm() -> Response:
    from ..jobs.due import not_yet_due

    period = _period_arg(("month", "quarter", "year"))
    the_site = site()
    ws, now = the_site.workspace(), the_site.now()
    refused = not_yet_due(ws.settings.deadlines, period, now)
    before = [r for r in store_runs.recent_runs(connection(), limit=200) if r.period == str(period)][:10]
    return render("run_confirm.html", title=f"运行{period.label}考核", period=period, refused=refused,
                  before=before, recipients=ws.settings.delivery.recipients, **_run_labels())


@bp.post("/run")
@roles("staff")
def run_start() -> Response:
    from ..jobs import JobFailed, run_period

    period = _period_arg(("month", "quarter", "year"))
    if request.form.get("confirm") != "yes":
        return error_page(400, "请勾选“确认运行”后再提交。")
    deliver = request.form.get("deliver") == "yes"
    the_site = site()
    ws, now = the_site.workspace(), the_site.now()
    result: Any = None
    error = ""
    try:
        result = run_period(ws, period, now=now, deliver=deliver, origin="web", clock=the_site.clock,
                            wait=the_site.config.lock_wait)
    except JobFailed as exc:
        result, error = exc.result, str(exc)
    except LockBusy:
        error = "同一任务或其他写入任务正在运行，本次未运行；请稍后在“任务与邮件”中查看，再重试。"
    except SuperviseError as exc:
        error = str(exc)
    audit("run", outcome="error" if error else "ok", period=str(period), deliver=deliver, error=error or None,
          bulletin_version=getattr(result, "bulletin_version", None) if result is not None else None)
    outputs = {}
    if result is not None:
        listing = bulletin_periods(ws).get(str(period), [])
        outputs = {f.name: url_for("staff.bulletin", period=str(period), name=f.name) for f in listing}
    return render("run_done.html", title=f"{period.label}考核运行结果", status=200 if not error else 500,
                  period=period, result=result, error=error, outputs=outputs, **_run_labels())
