"""Helpers for the web tests: a workspace with users, logged-in test clients, a real
`supervise serve` on 127.0.0.1, multipart uploads with the standard library."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from supervise.periods import TZ, Month
from supervise.web import WebConfig, create_app
from supervise.web.users import LockoutPolicy, add_user
from supervise.workspace import Workspace

MARCH = Month(2025, 3)
HUANGHUA = "130983"      # county A: 黄骅市
RENQIU = "130982"        # county B: 任丘市
NOW = datetime(2025, 4, 3, 10, 0, tzinfo=TZ)   # March is open, due 5 April
PASSWORDS = {"county-a": "county-a-password", "county-b": "county-b-password",
             "staff": "staff-password-1", "admin": "admin-password-1"}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def add_users(ws: Workspace) -> None:
    add_user(ws, "county-a", "county", county=HUANGHUA, password=PASSWORDS["county-a"], now=NOW)
    add_user(ws, "county-b", "county", county=RENQIU, password=PASSWORDS["county-b"], now=NOW)
    add_user(ws, "staff", "staff", password=PASSWORDS["staff"], now=NOW)
    add_user(ws, "admin", "admin", password=PASSWORDS["admin"], now=NOW)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_app(ws: Workspace, clock: Clock | None = None, **config: Any) -> Flask:
    cfg = WebConfig(lock_wait=5.0, **config)
    app = create_app(ws.home, clock=clock or Clock(), config=cfg)
    app.testing = True
    return app


def csrf_of(html: str) -> str:
    m = _CSRF.search(html)
    assert m, "no csrf_token on the page"
    return m.group(1)


@dataclass
class Browser:
    """A test client and the CSRF token its pages carry."""

    client: FlaskClient
    csrf: str

    def get(self, *a: Any, **kw: Any) -> Any:
        return _read(self.client.get(*a, **kw))

    def post(self, *a: Any, **kw: Any) -> Any:
        return _read(self.client.post(*a, **kw))


def _read(response: Any) -> Any:
    """The whole body read and the response closed (a streamed file would stay open)."""
    response.get_data()
    response.close()
    return response


def login(app: Flask, name: str | None, password: str | None = None) -> Browser:
    """A test client logged in as `name` (None: anonymous, with the login page's token only)."""
    client = app.test_client()
    csrf = csrf_of(client.get("/login").text)
    if name is not None:
        r = client.post("/login", data={"username": name, "password": password or PASSWORDS[name],
                                        "csrf_token": csrf})
        assert r.status_code == 303, r.text
    return Browser(client, csrf)


def lockout(**kw: Any) -> LockoutPolicy:
    return LockoutPolicy(**kw)


# ------------------------------------------------------------------ a real server


@dataclass
class Server:
    host: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def connection(self, timeout: float = 30) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)


@contextmanager
def running_server(home: Path, *, threads: int = 8, timeout: float = 30) -> Iterator[Server]:
    """`supervise serve --port 0` in its own process; stopped with SIGTERM at the end."""
    log = home.parent / f"serve-{uuid.uuid4().hex[:8]}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "supervise", "--home", str(home), "serve", "--port", "0",
             "--threads", str(threads)], stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + timeout
        port = 0
        while time.monotonic() < deadline:
            m = re.search(r"http://127\.0\.0\.1:(\d+)/", log.read_text(encoding="utf-8", errors="replace"))
            if m:
                port = int(m.group(1))
                break
            if proc.poll() is not None:
                raise AssertionError(f"supervise serve exited: {log.read_text(encoding='utf-8', errors='replace')}")
            time.sleep(0.05)
        assert port, f"supervise serve did not start within {timeout} s"
        yield Server("127.0.0.1", port, proc, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def multipart(fields: dict[str, str], file_field: str, filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for k, v in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
                 "Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class HttpSession:
    """A cookie-keeping client of the real server over http.client (no third-party HTTP library)."""

    def __init__(self, server: Server, timeout: float = 60) -> None:
        self.server = server
        self.timeout = timeout
        self.cookies: dict[str, str] = {}
        self.conn = server.connection(timeout)

    def close(self) -> None:
        self.conn.close()

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        h = dict(headers or {})
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=h)
                r = self.conn.getresponse()
                data = r.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = self.server.connection(self.timeout)
                if attempt:
                    raise
        for k, v in r.getheaders():
            if k.lower() == "set-cookie":
                name, _, rest = v.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        if r.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = self.server.connection(self.timeout)
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def login(self, name: str, password: str) -> str:
        status, _h, body = self.request("GET", "/login")
        assert status == 200
        csrf = csrf_of(body.decode())
        form = f"username={name}&password={password}&csrf_token={csrf}".encode()
        status, headers, _ = self.request("POST", "/login", form,
                                          {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 303, status
        return csrf

    def upload(self, csrf: str, filename: str, data: bytes) -> tuple[int, dict[str, Any]]:
        body, ctype = multipart({"csrf_token": csrf}, "file", filename, data)
        status, _h, out = self.request("POST", "/county/upload", body,
                                       {"Content-Type": ctype, "Accept": "application/json"})
        return status, json.loads(out)
