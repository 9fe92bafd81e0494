"""JSON for machines: the documents of `supervise status --json` and `supervise history --json`."""

from __future__ import annotations

from flask import Blueprint, Response, abort, g, jsonify, request

from .app import site
from .auth import roles
from .reading import history_document, parse_report_period, status_document

bp = Blueprint("api", __name__, url_prefix="/api")


def _period() -> object:
    p = parse_report_period(request.args.get("period"))
    if p is None:
        abort(400, "请给出报告期，如 period=2025-03（月份）或 period=2025Q1（季度）。")
    return p


@bp.get("/status")
@roles("staff")
def status() -> Response:
    the_site = site()
    return jsonify(status_document(the_site.workspace(), _period(), the_site.now()))  # type: ignore[arg-type]


@bp.get("/history")
@roles("county", "staff")
def history() -> Response:
    """A county's versions of a period; a county user only its own (another county: 403)."""
    code = request.args.get("county") or g.user.county_code
    if g.user.role == "county" and code != g.user.county_code:
        abort(403)
    ws = site().workspace()
    if code not in ws.registry.counties:
        abort(404)
    return jsonify(history_document(ws, code, _period()))  # type: ignore[arg-type]
