"""Accounts, sessions, CSRF, lock-out and the audit log of the web (SPEC §11)."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import timedelta

import pytest
from click.testing import CliRunner

from supervise.cli import cli
from supervise.workspace import Workspace

from .web_support import NOW, PASSWORDS, Clock, add_users, csrf_of, login, make_app


@pytest.fixture
def users(ws: Workspace) -> Workspace:
    add_users(ws)
    return ws


def _form(client, name: str, password: str, address: str = "10.1.1.1", csrf: str | None = None):  # type: ignore[no-untyped-def]
    page = client.get("/login", environ_overrides={"REMOTE_ADDR": address})
    token = csrf if csrf is not None else csrf_of(page.text)
    return client.post("/login", data={"username": name, "password": password, "csrf_token": token},
                       environ_overrides={"REMOTE_ADDR": address})


def test_the_login_form_has_the_contract_fields_and_sets_a_strict_cookie(users: Workspace) -> None:
    client = make_app(users).test_client()
    page = client.get("/login")
    assert page.status_code == 200
    html = page.text
    assert re.search(r'<input[^>]+name="username"', html)
    assert re.search(r'<input[^>]+name="password"[^>]+type="password"|<input[^>]+type="password"[^>]+name="password"',
                     html)
    assert re.search(r'<input type="hidden" name="csrf_token" value="[^"]{20,}">', html)
    r = client.post("/login", data={"username": "staff", "password": PASSWORDS["staff"], "csrf_token": csrf_of(html)})
    assert r.status_code == 303 and r.headers["Location"] == "/staff"
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("supervise_session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Expires=" in cookie
    assert client.get("/staff?period=2025-03").status_code == 200


def test_login_without_or_with_a_wrong_csrf_token_is_refused(users: Workspace) -> None:
    client = make_app(users).test_client()
    client.get("/login")
    assert client.post("/login", data={"username": "staff", "password": PASSWORDS["staff"]}).status_code == 400
    r = client.post("/login", data={"username": "staff", "password": PASSWORDS["staff"], "csrf_token": "x" * 43})
    assert r.status_code == 403
    assert client.get("/staff").status_code == 302          # still anonymous


def test_a_wrong_password_is_401_and_opens_no_session(users: Workspace) -> None:
    client = make_app(users).test_client()
    r = _form(client, "staff", "not-the-password")
    assert r.status_code == 401 and "用户名或密码错误" in r.text
    assert client.get("/staff").headers["Location"] == "/login?next=/staff"


def test_state_changes_take_the_token_as_a_header_too(users: Workspace) -> None:
    app = make_app(users)
    b = login(app, "staff")
    assert b.post("/logout").status_code == 400                                   # none
    assert b.post("/logout", headers={"X-CSRF-Token": "wrong"}).status_code == 403
    assert b.post("/logout", headers={"X-CSRF-Token": b.csrf}).status_code == 303
    assert b.get("/staff").status_code == 302


def test_a_cross_site_origin_is_refused_even_with_the_token(users: Workspace) -> None:
    b = login(make_app(users), "staff")
    r = b.post("/logout", data={"csrf_token": b.csrf}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    assert b.get("/staff").status_code == 200


def test_logout_ends_the_session_on_the_server(users: Workspace) -> None:
    app = make_app(users)
    b = login(app, "county-a")
    cookie = b.client.get_cookie("supervise_session")
    assert cookie is not None
    saved = cookie.value
    assert b.post("/logout", data={"csrf_token": b.csrf}).status_code == 303
    replay = app.test_client()
    replay.set_cookie("supervise_session", saved)
    assert replay.get("/county").status_code == 302          # the old cookie opens nothing


def test_the_next_page_is_only_a_path_of_this_site(users: Workspace) -> None:
    client = make_app(users).test_client()
    for target, expected in (("/staff/runs", "/staff/runs"), ("//evil.example/x", "/staff"),
                             ("https://evil.example/", "/staff"), ("/\\evil.example", "/staff")):
        client.get("/login")
        token = csrf_of(client.get("/login").text)
        r = client.post("/login", data={"username": "staff", "password": PASSWORDS["staff"], "csrf_token": token,
                                        "next": target})
        assert r.headers["Location"] == expected, target
        client.post("/logout", data={"csrf_token": token})


def test_repeated_failures_lock_the_account_for_a_while_from_every_address(users: Workspace) -> None:
    clock = Clock()
    app = make_app(users, clock)
    client = app.test_client()
    for _ in range(4):
        assert _form(client, "county-a", "wrong-password").status_code == 401
    assert _form(client, "county-a", "wrong-password").status_code == 429       # the fifth locks, and says so
    r = _form(client, "county-a", PASSWORDS["county-a"])
    assert r.status_code == 429 and "暂时锁定" in r.text
    assert _form(client, "county-a", PASSWORDS["county-a"], address="10.9.9.9").status_code == 429
    assert _form(client, "county-b", PASSWORDS["county-b"]).status_code == 303    # another account is not locked
    clock.now = NOW + timedelta(minutes=16)
    assert _form(app.test_client(), "county-a", PASSWORDS["county-a"]).status_code == 303


def test_repeated_failures_from_one_address_lock_that_address(users: Workspace) -> None:
    clock = Clock()
    app = make_app(users, clock)
    client = app.test_client()
    for i in range(10):
        assert _form(client, f"nobody{i}", "guess", address="10.2.2.2").status_code == (401 if i < 9 else 429)
    assert _form(client, "staff", PASSWORDS["staff"], address="10.2.2.2").status_code == 429
    assert _form(app.test_client(), "staff", PASSWORDS["staff"], address="10.3.3.3").status_code == 303
    clock.now = NOW + timedelta(minutes=16)
    assert _form(app.test_client(), "staff", PASSWORDS["staff"], address="10.2.2.2").status_code == 303


def test_failures_spread_beyond_the_window_do_not_lock(users: Workspace) -> None:
    clock = Clock()
    app = make_app(users, clock)
    for i in range(8):      # one every 4 minutes: a window of 15 minutes starts again after four
        clock.now = NOW + timedelta(minutes=4 * i)
        assert _form(app.test_client(), "staff", "wrong-password").status_code == 401
    clock.now += timedelta(minutes=1)
    assert _form(app.test_client(), "staff", PASSWORDS["staff"]).status_code == 303


def test_passwords_are_kept_only_as_argon2_hashes(users: Workspace) -> None:
    conn = sqlite3.connect(users.db_path)
    hashes = [r[0] for r in conn.execute("SELECT password_hash FROM web_users")]
    conn.close()
    assert len(hashes) == 4 and all(h.startswith("$argon2id$") for h in hashes)
    assert not any(p in h for h in hashes for p in PASSWORDS.values())
    assert len(set(hashes)) == 4                                   # salted


def test_every_login_is_in_the_audit_log_shown_to_admins(users: Workspace) -> None:
    app = make_app(users)
    client = app.test_client()
    _form(client, "county-a", "wrong-password", address="10.4.4.4")
    admin = login(app, "admin")
    page = admin.get("/admin/audit")
    assert page.status_code == 200
    text = page.text
    assert "登录失败" in text and "10.4.4.4" in text and "county-a" in text
    assert login(app, "staff").get("/admin/audit").status_code == 403
    conn = sqlite3.connect(users.db_path)
    rows = conn.execute("SELECT username, address, action, outcome FROM web_audit ORDER BY id").fetchall()
    conn.close()
    assert rows[0] == ("county-a", "10.4.4.4", "login_failed", "refused")
    assert ("admin", "127.0.0.1", "login", "ok") in rows


def test_a_disabled_user_is_logged_out_and_cannot_log_in(users: Workspace) -> None:
    app = make_app(users)
    b = login(app, "county-a")
    assert b.get("/county").status_code == 200
    result = CliRunner().invoke(cli, ["--home", str(users.home), "users", "disable", "county-a"])
    assert result.exit_code == 0 and "已停用用户 county-a" in result.output
    assert b.get("/county").status_code == 302
    assert _form(app.test_client(), "county-a", PASSWORDS["county-a"]).status_code == 401
    assert CliRunner().invoke(cli, ["--home", str(users.home), "users", "enable", "county-a"]).exit_code == 0
    assert _form(app.test_client(), "county-a", PASSWORDS["county-a"]).status_code == 303


def test_a_new_password_ends_the_open_sessions(users: Workspace) -> None:
    app = make_app(users)
    b = login(app, "staff")
    result = CliRunner().invoke(cli, ["--home", str(users.home), "users", "passwd", "staff", "--password-stdin"],
                                input="a-brand-new-password\n")
    assert result.exit_code == 0, result.output
    assert b.get("/staff").status_code == 302
    assert _form(app.test_client(), "staff", PASSWORDS["staff"]).status_code == 401
    assert _form(app.test_client(), "staff", "a-brand-new-password").status_code == 303


def test_pages_carry_the_security_headers(users: Workspace) -> None:
    b = login(make_app(users), "staff")
    for path in ("/login", "/staff?period=2025-03"):
        h = b.get(path).headers
        csp = h["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert h["X-Frame-Options"] == "DENY" and h["X-Content-Type-Options"] == "nosniff"
        assert h["Cache-Control"] == "no-store"


# ------------------------------------------------------------------ the commands


def _run(ws: Workspace, *args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["--home", str(ws.home), "users", *args], input=input)


def test_users_add_prints_a_generated_password_once_and_it_works(ws: Workspace) -> None:
    result = _run(ws, "add", "zhang", "--role", "county", "--county", "130983", "--email", "zhang@huanghua.example")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "已添加用户 zhang（县（市）填报员，黄骅市（130983））"
    password = lines[1].rsplit("：", 1)[1]
    assert len(password) == 16
    assert _form(make_app(ws).test_client(), "zhang", password).status_code == 303
    listed = json.loads(_run(ws, "list", "--json").output)
    assert listed["users"][0]["name"] == "zhang" and listed["users"][0]["county_code"] == "130983"
    assert "password" not in json.dumps(listed).replace("password_changed_at", "")
    assert password not in _run(ws, "list").output


def test_users_add_with_a_password_on_stdin_prints_none(ws: Workspace) -> None:
    result = _run(ws, "add", "chief", "--role", "staff", "--password-stdin", input="chief-password\n")
    assert result.exit_code == 0 and result.output == "已添加用户 chief（市工信局工作人员）\n"


@pytest.mark.parametrize(("args", "message"), [
    (["add", "a", "--role", "county"], "须用 --county"),
    (["add", "a", "--role", "staff", "--county", "130983"], "不能给 --county"),
    (["add", "../x", "--role", "staff"], "用户名"),
    (["add", "a", "--role", "staff", "--email", "not an address"], "不是邮件地址"),
    (["disable", "nobody"], "没有用户 nobody"),
    (["passwd", "nobody"], "没有用户 nobody"),
])
def test_users_commands_refuse_in_one_line(ws: Workspace, args: list[str], message: str) -> None:
    result = _run(ws, *args)
    assert result.exit_code == 1 and message in result.stderr and len(result.stderr.splitlines()) == 1


def test_users_add_refuses_a_short_password_and_a_second_user_of_the_same_name(ws: Workspace) -> None:
    assert "至少8个字符" in _run(ws, "add", "a", "--role", "staff", "--password-stdin", input="short\n").stderr
    assert _run(ws, "add", "Boss", "--role", "admin").exit_code == 0
    again = _run(ws, "add", "boss", "--role", "staff")
    assert again.exit_code == 1 and "已存在" in again.stderr


def test_an_unknown_county_is_the_same_line_as_in_every_command(ws: Workspace) -> None:
    result = _run(ws, "add", "a", "--role", "county", "--county", "999999")
    assert result.exit_code == 2
    assert result.stderr == ("错误 / error: 未知的县（市、区）代码 999999：--county 须为 reference/counties.csv 中的6位代码"
                             "（见 --help）\n")
