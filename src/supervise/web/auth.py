"""Logging in and out, who may see what, and the audit of what people did."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, abort, g, redirect, request, session, url_for
from werkzeug.wrappers import Response

from ..periods import TZ
from ..store import accounts as store
from .app import address, anonymous, connection, new_csrf_token, render, session_hash, site
from .users import authenticate

bp = Blueprint("auth", __name__)

F = TypeVar("F", bound=Callable[..., Any])


def roles(*allowed: str) -> Callable[[F], F]:
    """Only users of these roles (admin counts as staff); others get 403, anonymous /login or 401."""
    wanted = set(allowed) | ({"admin"} if "staff" in allowed else set())

    def decorator(fn: F) -> F:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = g.get("user")
            if user is None:
                return anonymous()
            if user.role not in wanted:
                abort(403)
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def audit(action: str, *, outcome: str | None = None, county_code: str | None = None, period: str | None = None,
          submission_id: int | None = None, username: str | None = None, **detail: Any) -> None:
    """One line of the web's audit log: who, when, from where, what."""
    user = g.get("user")
    store.log_event(connection(), at=site().now(), username=username or (user.name if user else None),
                    address=address(), action=action, outcome=outcome, county_code=county_code, period=period,
                    submission_id=submission_id, detail=detail)


def home_of(user: store.UserRow) -> str:
    return url_for("county.home") if user.role == "county" else url_for("staff.board")


def _safe_next(target: str | None) -> str | None:
    """Only a path of this site (no scheme, no host, no backslash tricks)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if any(ord(c) < 32 for c in target):
        return None
    return target


@bp.get("/")
def index() -> Response:
    return redirect(home_of(g.user))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response:
    next_url = _safe_next(request.values.get("next"))
    if request.method == "GET":
        if g.user is not None:
            return redirect(next_url or home_of(g.user))
        return render("login.html", title="登录", next_url=next_url or "", name="", message="")
    name = (request.form.get("username") or "").strip()
    password = request.form.get("password") or ""
    the_site = site()
    now = the_site.now()
    outcome = authenticate(connection(), name, password, address(), now=now, policy=the_site.config.lockout)
    if outcome.user is None:
        if outcome.locked_until:
            audit("login_locked", outcome="refused", username=name or None, until=outcome.locked_until)
            until = outcome.locked_until[11:16]
            message = f"登录失败次数过多，该账户或本机地址已被暂时锁定，请于 {until} 后再试；如忘记密码，请联系管理员。"
            status = 429
        else:
            audit("login_failed", outcome="refused", username=name or None)
            message = "用户名或密码错误，请重新输入。"
            status = 401
        return render("login.html", title="登录", status=status, next_url=next_url or "", name=name,
                      message=message)
    user = outcome.user
    token = secrets.token_urlsafe(32)
    store.create_session(connection(), session_id=session_hash(token), user_id=user.id, now=now,
                         expires=now + the_site.config.session_lifetime, address=address())
    old = session.get("sid")
    if isinstance(old, str):
        store.end_session(connection(), session_hash(old))
    session["sid"] = token          # a new session id at every login
    session.permanent = True
    g.user = user
    audit("login", outcome="ok", county_code=user.county_code)
    return redirect(next_url or home_of(user), 303)


@bp.post("/logout")
def logout() -> Response:
    sid = session.pop("sid", None)
    if isinstance(sid, str):
        store.end_session(connection(), session_hash(sid))
        audit("logout", outcome="ok")
    new_csrf_token()
    g.user = None
    return redirect(url_for("auth.login"), 303)


def time_text(stamp: str | None) -> str:
    """2025-04-06T08:00:00+08:00 as 2025-04-06 08:00."""
    if not stamp:
        return ""
    from datetime import datetime

    try:
        return datetime.fromisoformat(stamp).astimezone(TZ).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return stamp[:16].replace("T", " ")
