"""The county portal: open periods and deadlines, the county's status and versions, its
pre-filled template, and uploads with an instant, located verdict. A county user sees and
touches only its own county's data."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, g, jsonify, request, send_file, url_for

from ..errors import SuperviseError
from ..intake.problems import Problem
from ..jobs.locks import LockBusy
from ..labels import SOURCE_LABELS
from ..periods import Month, Period, Quarter
from .app import error_page, render, site, wants_json
from .auth import audit, roles, time_text
from .reading import (
    UNCHANGED_LABEL,
    VERDICT_LABELS,
    VERSION_STATE_LABELS,
    county_row,
    history_document,
    open_periods,
    parse_report_period,
    period_choices,
    problem_where,
    returns_in,
    status_document,
    submission_view,
    value_text,
)
from .uploads import ingest_upload, safe_filename

bp = Blueprint("county", __name__, url_prefix="/county")


def _own_county() -> str:
    """The user's county; a request naming another county is refused (403)."""
    code: str = g.user.county_code
    asked = request.args.get("county")
    if asked is not None and asked != code:
        abort(403)
    return code


@bp.get("")
@roles("county")
def home() -> Response:
    code = _own_county()
    the_site = site()
    ws, now = the_site.workspace(), the_site.now()
    deadlines = ws.settings.deadlines
    periods = open_periods(deadlines, now)
    rows = []
    for op in periods:
        row = county_row(status_document(ws, op.period, now), code)
        rows.append((op, row))
    asked = request.args.get("period")
    chosen: Period | None = parse_report_period(asked) if asked else periods[0].period
    if chosen is None:
        return error_page(400, f"报告期 {asked} 无效，请写作 2025-03（月份）或 2025Q1（季度）。")
    doc = history_document(ws, code, chosen)
    chosen_row = county_row(status_document(ws, chosen, now), code)
    return render("county.html", title="本县报送", county_code=code, county_name=ws.registry.county_name(code),
                  periods=rows, chosen=chosen, chosen_row=chosen_row, history=doc, returns=returns_in(doc),
                  choices=period_choices(now), deadline_text=deadlines.deadline_text(chosen),
                  link=lambda v: url_for("county.submission", period=str(chosen), submission_id=v["submission_id"]),
                  **_labels())


def _labels() -> dict[str, Any]:
    return {"verdict_labels": VERDICT_LABELS, "state_labels": VERSION_STATE_LABELS,
            "source_labels": SOURCE_LABELS, "time_text": time_text, "value_text": value_text,
            "problem_where": problem_where, "unchanged_label": UNCHANGED_LABEL}


@bp.get("/template")
@roles("county")
def template() -> Response:
    from ..intake.templates import write_templates

    code = _own_county()
    period = parse_report_period(request.args.get("period"))
    if not isinstance(period, (Month, Quarter)):
        return error_page(400, "请给出报告期，如 period=2025-03（月份）或 period=2025Q1（季度）。")
    ws = site().workspace()
    written = write_templates(ws, period, code)
    path = Path(written[0]["path"])
    return send_file(io.BytesIO(path.read_bytes()), as_attachment=True, download_name=path.name,
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


@bp.post("/upload")
@roles("county")
def upload() -> Response:
    code = _own_county()
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return error_page(400, "请选择要上传的报送文件（.xlsx、.xls、.ods 或 .csv）。")
    the_site = site()
    ws, now = the_site.workspace(), the_site.now()
    name = safe_filename(upload.filename)
    try:
        result = ingest_upload(ws, upload.stream, upload.filename, county=code, now=now,
                               staging=the_site.staging_dir, lock_wait=the_site.config.lock_wait,
                               turns=the_site.write_turns)
    except LockBusy:
        audit("upload", outcome="busy", county_code=code, file=name)
        return error_page(503, "系统正在运行考核或收取任务，暂时不能接收文件，请几分钟后重新上传；本次上传未保存。")
    except SuperviseError as exc:
        audit("upload", outcome="error", county_code=code, file=name, error=str(exc))
        return error_page(500, f"文件未能处理：{exc}")
    finally:
        upload.close()
    f = result.file
    audit("upload", outcome=f["verdict"], county_code=code, period=f["period"], submission_id=f["submission_id"],
          file=result.name, sha256=f["sha256"], problems=len(f["problems"]), unchanged=bool(f.get("unchanged")))
    if wants_json():
        return jsonify(f)
    return render("upload_result.html", title="报送结果", file=f, summary=result.summary,
                  county_name=ws.registry.county_name(code), **_labels())


def too_large() -> Response:
    """A body over the limit, refused before it was read: the verdict the CLI gives an oversized file."""
    limit = site().max_file_bytes()
    problem = Problem("file_too_large", f"文件超过上限{limit}字节（约{limit / 1_000_000:g} MB），未接收，也未保存。"
                      "请删除多余的工作表、图片或空白行列后重新报送。")
    user = g.get("user")
    if user is not None and request.endpoint == "county.upload":
        audit("upload", outcome="rejected", county_code=user.county_code, problems=1, code="file_too_large",
              content_length=request.content_length)
    doc = {"file": None, "county_code": user.county_code if user is not None else None, "period": None,
           "verdict": "rejected", "problems": [problem.to_json()], "submission_id": None, "sha256": None,
           "format": None, "values": 0, "received_at": None}
    if wants_json():
        response = jsonify(doc)
        response.status_code = 413
        return response
    if user is None:
        return error_page(413, problem.message)
    return render("upload_result.html", title="报送结果", status=413, file=doc, summary={},
                  county_name=site().workspace().registry.county_name(user.county_code or ""), **_labels())


@bp.get("/submissions/<period>/<int:submission_id>")
@roles("county")
def submission(period: str, submission_id: int) -> Response:
    code = _own_county()
    p = parse_report_period(period)
    if p is None:
        abort(404)
    view = submission_view(site().workspace(), code, p, submission_id)
    if view is None:
        abort(404)
    ws = site().workspace()
    return render("submission.html", title="报送版本", view=view, period=p, county_code=code,
                  county_name=ws.registry.county_name(code), staff=False, back=("county.home", {"period": str(p)}),
                  **_labels())
