"""The Flask application: one per workspace, `create_app(home)`.

Every request: the body size is checked against `[limits] max_file_bytes` before anything reads
it; the session (a signed, HttpOnly, SameSite cookie carrying a random session id kept in the
database) names the user; anonymous requests get /login (pages) or 401 (/api/...); every
state-changing request must carry the page's CSRF token. Pages are rendered by the one Jinja
environment (`templating.environment`, autoescaped) and sent with a strict Content-Security-Policy
(no inline script), frame-ancestors 'none' and nosniff.

The clock is read here only (`Site.now`), and passed down to the library as `now`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
import tempfile
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from flask import Flask, Request, Response, abort, current_app, g, jsonify, redirect, request, session, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from ..assets import shipped
from ..periods import TZ
from ..store import accounts as store
from ..templating import environment
from ..workspace import Workspace
from .users import ROLE_LABELS, LockoutPolicy

# Room for the multipart framing and the form fields around the file itself.
MULTIPART_ALLOWANCE = 64 * 1024
WEB_DIR = ".web"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_ENDPOINTS = frozenset({"auth.login", "static"})

PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


@dataclass(frozen=True)
class WebConfig:
    """How the web behaves; the defaults suit the bureau's intranet behind a TLS proxy."""

    session_lifetime: timedelta = timedelta(hours=12)
    lockout: LockoutPolicy = field(default_factory=LockoutPolicy)
    secure_cookies: bool = False          # set when the proxy in front speaks TLS
    lock_wait: float = 60.0               # seconds an upload, 退回 or run waits for a job in the workspace


class Site:
    """The workspace a web process serves, its clock and its settings, shared by all requests."""

    def __init__(self, home: Path, clock: Callable[[], datetime], config: WebConfig) -> None:
        self.home = Path(home).resolve()
        self.clock = clock
        self.config = config
        self._ws: Workspace | None = None
        self._signature: tuple[int, ...] = ()
        self._local = threading.local()
        self.write_turns = FairLock()        # the web's writers queue here, then take the workspace lock

    def now(self) -> datetime:
        return self.clock()

    def connection(self) -> sqlite3.Connection:
        """One connection per server thread, opened once: no open (and migration check) per
        request, and never the last connection to close (SQLite checkpoints the WAL then)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self.workspace().connect()
        return conn  # type: ignore[no-any-return]

    def open_connection(self) -> sqlite3.Connection | None:
        return getattr(self._local, "conn", None)

    def workspace(self) -> Workspace:
        """The workspace, loaded again when supervise.toml or a reference file changed."""
        ws = Workspace(self.home)
        files = [ws.settings_path, *sorted(ws.reference_dir.glob("*.csv"))]
        signature = tuple(_mtime(p) for p in files)
        if self._ws is None or signature != self._signature:
            fresh = ws.require()
            _ = fresh.settings, fresh.registry   # load now, not half-way through a request
            self._ws, self._signature = fresh, signature
        return self._ws

    @property
    def web_dir(self) -> Path:
        return self.home / WEB_DIR

    @property
    def staging_dir(self) -> Path:
        """Where uploads are written while they are read (inside the workspace, never /tmp)."""
        path = self.web_dir / "uploads"
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def max_file_bytes(self) -> int:
        return int(self.workspace().settings.limits["max_file_bytes"])

    def body_limit(self) -> int:
        return self.max_file_bytes() + MULTIPART_ALLOWANCE


class FairLock:
    """First come, first served among this process's threads: uploads waiting for the workspace
    lock take turns in order instead of all polling it (which starves some under load)."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiting: deque[threading.Event] = deque()
        self._held = False

    def acquire(self, timeout: float) -> bool:
        with self._mutex:
            if not self._held and not self._waiting:
                self._held = True
                return True
            turn = threading.Event()
            self._waiting.append(turn)
        if turn.wait(timeout):
            return True
        with self._mutex:
            if turn.is_set():             # handed over just as the wait ran out
                return True
            self._waiting.remove(turn)
            return False

    def release(self) -> None:
        with self._mutex:
            if self._waiting:
                self._waiting.popleft().set()     # stays held, by the next in line
            else:
                self._held = False


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def site() -> Site:
    return current_app.extensions["supervise"]  # type: ignore[no-any-return]


class UploadRequest(Request):
    """File parts are spooled inside the workspace (`.web/uploads/`), not in the system's temp folder."""

    def _get_file_stream(self, total_content_length: int | None, content_type: str | None,
                         filename: str | None = None, content_length: int | None = None) -> IO[bytes]:
        return tempfile.SpooledTemporaryFile(max_size=1024 * 1024, mode="rb+", dir=str(site().staging_dir))


def secret_key(web_dir: Path) -> bytes:
    """The key that signs session cookies: made once per workspace (0600), kept across restarts."""
    web_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = web_dir / "secret_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes().strip()
        if len(key) >= 32:
            return key
        path.unlink()
        return secret_key(web_dir)
    with os.fdopen(fd, "wb") as f:
        key = secrets.token_hex(32).encode()
        f.write(key)
    return key


def create_app(home: Path | str, *, clock: Callable[[], datetime] | None = None,
               config: WebConfig | None = None) -> Flask:
    """The web application of the workspace at `home` (which must exist: `supervise init`)."""
    config = config or WebConfig()
    the_site = Site(Path(home), clock or (lambda: datetime.now(TZ)), config)
    ws = the_site.workspace()
    app = Flask("supervise.web", static_folder=str(shipped("templates") / "web" / "static"),
                static_url_path="/static")
    app.request_class = UploadRequest
    app.extensions["supervise"] = the_site
    app.config.update(
        SECRET_KEY=secret_key(the_site.web_dir),
        SESSION_COOKIE_NAME="supervise_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.secure_cookies,
        PERMANENT_SESSION_LIFETIME=config.session_lifetime,
        MAX_CONTENT_LENGTH=the_site.body_limit(),
        MAX_FORM_MEMORY_SIZE=64 * 1024,
        MAX_FORM_PARTS=50,
        SEND_FILE_MAX_AGE_DEFAULT=3600,
    )
    del ws

    from . import admin, api, auth, county, staff

    for bp in (auth.bp, county.bp, staff.bp, api.bp, admin.bp):
        app.register_blueprint(bp)
    app.before_request(_guard)
    app.after_request(_headers)
    app.teardown_request(_close_connection)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(sqlite3.Error, _database_error)
    return app


# ------------------------------------------------------------------ per request


def connection() -> sqlite3.Connection:
    """This thread's database connection, kept open across requests (see `Site.connection`)."""
    return site().connection()


def _close_connection(exc: BaseException | None) -> None:
    """A request that failed half-way leaves no transaction open on its thread's connection."""
    conn = site().open_connection()
    if conn is not None and conn.in_transaction:
        conn.rollback()


def session_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def address() -> str:
    return request.remote_addr or "unknown"


def wants_json() -> bool:
    if request.path.startswith("/api/"):
        return True
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"


def csrf_token() -> str:
    """The page's CSRF token, one per browser session (kept in the signed cookie)."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
        session.permanent = True
    return token


def new_csrf_token() -> None:
    session["csrf"] = secrets.token_urlsafe(32)


def _load_user() -> store.UserRow | None:
    sid = session.get("sid")
    if not isinstance(sid, str):
        return None
    user = store.session_user(connection(), session_hash(sid), site().now())
    if user is None:
        session.pop("sid", None)
    return user


def _guard() -> BaseResponse | None:
    g.user = None if request.endpoint == "static" else _load_user()
    limit = site().body_limit()
    request.max_content_length = limit     # also caps a body sent without Content-Length
    if request.content_length is not None and request.content_length > limit:
        abort(413)                          # before anything reads the body
    if request.endpoint not in PUBLIC_ENDPOINTS and g.user is None:
        return anonymous()
    if request.method not in SAFE_METHODS:
        check_csrf()
    return None


def anonymous() -> BaseResponse:
    """Anonymous: /api/... answers 401, every page sends the browser to /login."""
    if request.path.startswith("/api/"):
        response = jsonify({"error": "unauthorized", "message": "请先登录"})
        response.status_code = 401
        return response
    target = request.full_path.rstrip("?") if request.method == "GET" else ""
    where = url_for("auth.login", next=target) if target and target != "/" else url_for("auth.login")
    return redirect(where, 303 if request.method != "GET" else 302)


def check_csrf() -> None:
    """The page's token, as the form field csrf_token or the X-CSRF-Token header: missing 400,
    wrong 403. A browser's Origin, when sent, must be this site."""
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlsplit(origin).hostname != urlsplit(request.host_url).hostname:
        abort(403, "请求来源与本站不符")
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token")
    if not sent:
        abort(400, "缺少安全校验码（csrf_token），请刷新页面后重试")
    expected = session.get("csrf")
    if not isinstance(expected, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(403, "安全校验码无效或已过期，请刷新页面后重试")


def _headers(response: Response) -> Response:
    h = response.headers
    h.setdefault("Content-Security-Policy", PAGE_CSP)
    h.setdefault("X-Frame-Options", "DENY")
    h["X-Content-Type-Options"] = "nosniff"
    h.setdefault("Referrer-Policy", "same-origin")
    h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if request.endpoint != "static":
        h.setdefault("Cache-Control", "no-store")
    return response


# ------------------------------------------------------------------ rendering


@dataclass
class Page:
    """What every page's layout shows: the user, the menu, the CSRF token."""

    title: str
    user: store.UserRow | None
    csrf_token: str
    issuer: str
    nav: list[tuple[str, str, bool]]
    user_label: str = ""


def _nav(user: store.UserRow | None) -> list[tuple[str, str, bool]]:
    if user is None:
        return []
    if user.role == "county":
        items = [("本县报送", url_for("county.home"))]
    else:
        items = [("报送情况", url_for("staff.board")), ("通报", url_for("staff.bulletins")),
                 ("任务与邮件", url_for("staff.runs"))]
        if user.role == "admin":
            items += [("审计日志", url_for("admin.audit")), ("用户", url_for("admin.users"))]
    return [(label, href, request.path == href.split("?")[0]) for label, href in items]


def render(template: str, *, title: str, status: int = 200, **context: Any) -> Response:
    """A page from `reports/templates/web/`, through the one autoescaping environment."""
    ws = site().workspace()
    user = g.get("user")
    label = ""
    if user is not None:
        label = f"{user.name}（{ROLE_LABELS[user.role]}"
        label += f"，{ws.registry.county_name(user.county_code)}）" if user.county_code else "）"
    page = Page(title=title, user=user, csrf_token=csrf_token(), issuer=ws.settings.bureau.issuer,
                nav=_nav(user), user_label=label)
    html = environment(ws.templates_dir).get_template(f"web/{template}").render(
        page=page, url=url_for, **context)
    return Response(html, status=status, mimetype="text/html")


ERROR_TITLES = {
    400: "请求有误", 401: "请先登录", 403: "无权访问", 404: "页面不存在", 405: "不支持的操作",
    409: "无法完成", 413: "文件过大", 429: "请稍后再试", 500: "服务器出错", 503: "系统繁忙",
}
ERROR_TEXTS = {
    403: "您没有访问该页面的权限。", 404: "没有找到您要的页面或记录。", 405: "该页面不支持这种操作。",
    500: "服务器处理请求时出错，请稍后再试；如仍有问题，请联系市工信局。",
}


def error_page(status: int, message: str) -> Response:
    """A Chinese error page (or JSON for /api/... and clients asking for JSON)."""
    if wants_json():
        response = jsonify({"error": status, "message": message})
        response.status_code = status
        return response
    return render("error.html", title=ERROR_TITLES.get(status, "出错了"), status=status, code=status,
                  message=message)


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    if status == 413:
        from .county import too_large

        return too_large()
    description = exc.description if isinstance(exc.description, str) and not exc.description.isascii() else ""
    return error_page(status, description or ERROR_TEXTS.get(status, ERROR_TITLES.get(status, "请求无法完成。")))


def _database_error(exc: sqlite3.Error) -> Response:
    current_app.logger.exception("database error")
    return error_page(500, "数据库暂时无法读写，请稍后再试；如仍有问题，请联系市工信局。")
