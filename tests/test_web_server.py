"""`supervise serve` itself: waitress on 127.0.0.1, a body over the limit refused from its headers
(before it is read), the headers of every answer, a clean stop on SIGTERM; the demo's accounts."""

from __future__ import annotations

import json
import select
import socket
import time
from pathlib import Path

from click.testing import CliRunner

from supervise.cli import cli
from supervise.workspace import Workspace

from .intake_corpus import filled
from .web_support import HUANGHUA, MARCH, PASSWORDS, HttpSession, add_users, running_server


def _raw(port: int, head: bytes, body: bytes = b"", timeout: float = 10) -> bytes:
    """Send a request as a client would, stopping as soon as the server answers (it may answer,
    and close, long before the body is through); return the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head)
        for start in range(0, len(body), 65536):
            if select.select([s], [], [], 0)[0]:
                break
            try:
                s.sendall(body[start:start + 65536])
            except (ConnectionResetError, BrokenPipeError):
                break
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            out += chunk
    return out


def test_the_server_refuses_an_oversized_body_from_its_headers(ws: Workspace, tmp_path: Path) -> None:
    add_users(ws)
    with running_server(ws.home) as server:
        session = HttpSession(server)
        csrf = session.login("county-a", PASSWORDS["county-a"])
        cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
        session.close()
        started = time.monotonic()
        # 10 GB announced, not a byte of it sent: the answer comes at once, nothing waits for the body
        answer = _raw(server.port, (
            "POST /county/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n"
            f"Cookie: {cookie}\r\nX-CSRF-Token: {csrf}\r\n"
            "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 10000000000\r\n\r\n").encode())
        assert time.monotonic() - started < 5
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413 ")
        doc = json.loads(body)
        assert doc["verdict"] == "rejected" and [p["code"] for p in doc["problems"]] == ["file_too_large"]
        # chunked, without a length: cut off once it passes the limit
        chunk = b"x" * 1_000_000
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(25))
        answer = _raw(server.port, (
            b"POST /county/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/html\r\n"
            b"Transfer-Encoding: chunked\r\nContent-Type: multipart/form-data; boundary=x\r\n\r\n"), chunked)
        assert answer.startswith(b"HTTP/1.1 413 ") and "文件超过上限".encode() in answer
        # and a normal upload still works beside it
        good = filled(ws, HUANGHUA, MARCH, tmp_path / "a.xlsx")
        session = HttpSession(server)
        csrf = session.login("county-a", PASSWORDS["county-a"])
        status, doc = session.upload(csrf, "a.xlsx", good.read_bytes())
        session.close()
        assert status == 200 and doc["verdict"] == "accepted"
    assert sum(1 for p in ws.archive_dir.rglob("*") if p.is_file()) == 1      # only the good file is kept


def test_the_server_sends_the_security_headers_and_stops_on_sigterm(ws: Workspace) -> None:
    add_users(ws)
    with running_server(ws.home) as server:
        session = HttpSession(server)
        status, headers, body = session.request("GET", "/county")
        assert status == 302 and headers["location"].startswith("/login")
        status, headers, body = session.request("GET", "/api/status?period=2025-03")
        assert status == 401 and json.loads(body)["error"] == "unauthorized"
        status, headers, body = session.request("GET", "/login")
        assert headers["server"] == "supervise"
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
        cookie = headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        session.close()
        process = server.process
    assert process.returncode == 0


def test_serve_and_users_have_chinese_help() -> None:
    for args in (["serve", "--help"], ["users", "--help"], ["users", "add", "--help"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0 and "Usage:" in result.output


def test_the_demo_accounts_can_log_in(ws: Workspace) -> None:
    from datetime import datetime

    from supervise.demo import demo_accounts
    from supervise.periods import TZ
    from supervise.web.users import LockoutPolicy, authenticate

    lines: list[str] = []
    now = datetime(2025, 7, 1, tzinfo=TZ)
    made = demo_accounts(ws, now=now, echo=lines.append)
    assert [(a["name"], a["role"], a["county_code"]) for a in made] == [
        ("demo-county", "county", "130929"), ("demo-staff", "staff", "")]
    assert lines[0] == f"网页演示：supervise --home {ws.home} serve，然后用浏览器打开 http://127.0.0.1:8000/ 登录："
    assert made[0]["password"] in lines[1] and "献县" in lines[1] and made[1]["password"] in lines[2]
    conn = ws.connect()
    try:
        for a in made:
            assert authenticate(conn, a["name"], a["password"], "127.0.0.1", now=now, policy=LockoutPolicy()).ok
    finally:
        conn.close()
