"""For administrators: the audit log of the web (every login, upload, 退回 and run) and the users."""

from __future__ import annotations

from flask import Blueprint, Response, request

from ..store import accounts as store
from .app import connection, render, site
from .auth import roles, time_text
from .users import ROLE_LABELS

bp = Blueprint("admin", __name__, url_prefix="/admin")

ACTION_LABELS = {"login": "登录", "login_failed": "登录失败", "login_locked": "登录被锁定", "logout": "退出",
                 "upload": "上传报送", "reject": "退回", "run": "运行考核"}


@bp.get("/audit")
@roles("admin")
def audit() -> Response:
    action = request.args.get("action") or None
    if action not in ACTION_LABELS:
        action = None
    entries = store.audit_log(connection(), limit=500, action=action)
    return render("audit.html", title="审计日志", entries=entries, action=action, action_labels=ACTION_LABELS,
                  time_text=time_text, registry=site().workspace().registry)


@bp.get("/users")
@roles("admin")
def users() -> Response:
    return render("users.html", title="用户", users=store.list_users(connection()), role_labels=ROLE_LABELS,
                  time_text=time_text, registry=site().workspace().registry)
