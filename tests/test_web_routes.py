"""Every route of the web against every kind of visitor: anonymous, county A, county B, staff, admin.

A county sees and touches only its own data (another county's template, page, submission or
history: 403/404); anonymous gets /login (pages) or 401 (/api/...); staff pages refuse counties.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from supervise.intake import ingest_files
from supervise.workspace import Workspace

from .intake_corpus import at, filled
from .web_support import HUANGHUA, MARCH, NOW, RENQIU, Browser, add_users, login, make_app

ROLES = ("anonymous", "county-a", "county-b", "staff", "admin")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Flask, dict[str, int], dict[str, Browser]]:
    from supervise.workspace import init_workspace

    tmp = tmp_path_factory.mktemp("routes")
    ws = init_workspace(tmp / "home")
    add_users(ws)
    sids = {}
    for code in (HUANGHUA, RENQIU):
        path = filled(ws, code, MARCH, tmp / f"{code}.xlsx")
        report = ingest_files(ws, [path], county=code, received_at=at("2025-04-02 09:00"), now=NOW)
        sids[code] = report.files[0].submission_id
    (ws.report_dir(MARCH)).mkdir(parents=True)
    (ws.report_dir(MARCH) / "bulletin-2025-03.html").write_text("<p>通报</p>", encoding="utf-8")
    app = make_app(ws)
    browsers = {role: login(app, None if role == "anonymous" else role) for role in ROLES}
    return app, sids, browsers


A, B = HUANGHUA, RENQIU
LOGIN = "login"
# (path, {role: expected status}); "login" = sent to /login, ids are filled in from the fixture.
GETS: list[tuple[str, dict[str, int | str]]] = [
    ("/", {"anonymous": LOGIN, "county-a": 302, "county-b": 302, "staff": 302, "admin": 302}),
    ("/county", {"anonymous": LOGIN, "county-a": 200, "county-b": 200, "staff": 403, "admin": 403}),
    ("/county?period=2025-03", {"anonymous": LOGIN, "county-a": 200, "county-b": 200, "staff": 403, "admin": 403}),
    (f"/county?county={B}", {"anonymous": LOGIN, "county-a": 403, "county-b": 200, "staff": 403, "admin": 403}),
    ("/county/template?period=2025-03", {"anonymous": LOGIN, "county-a": 200, "county-b": 200, "staff": 403,
                                         "admin": 403}),
    (f"/county/template?period=2025-03&county={B}", {"anonymous": LOGIN, "county-a": 403, "county-b": 200,
                                                      "staff": 403, "admin": 403}),
    ("/county/template?period=2025", {"anonymous": LOGIN, "county-a": 400, "county-b": 400, "staff": 403,
                                      "admin": 403}),
    ("/county/submissions/2025-03/{A}", {"anonymous": LOGIN, "county-a": 200, "county-b": 404, "staff": 403,
                                         "admin": 403}),
    ("/county/submissions/2025-03/{B}", {"anonymous": LOGIN, "county-a": 404, "county-b": 200, "staff": 403,
                                         "admin": 403}),
    ("/staff", {"anonymous": LOGIN, "county-a": 403, "county-b": 403, "staff": 200, "admin": 200}),
    ("/staff?period=2025-03", {"anonymous": LOGIN, "county-a": 403, "county-b": 403, "staff": 200, "admin": 200}),
    ("/staff?period=nonsense", {"anonymous": LOGIN, "county-a": 403, "county-b": 403, "staff": 400, "admin": 400}),
    (f"/staff/counties/{A}?period=2025-03", {"anonymous": LOGIN, "county-a": 403, "county-b": 403, "staff": 200,
                                             "admin": 200}),
    ("/staff/counties/999999?period=2025-03", {"anonymous": LOGIN, "county-a": 403, "county-b": 403, "staff": 404,
                                               "admin": 404}),
    (f"/staff/counties/{A}/2025-03/{{A}}", {"anonymous": LOGIN, "county-a": 403, "county-b": 403, "staff": 200,
                                            "admin": 200}),
    (f"/staff/counties/{A}/2025-03/{{B}}", {"anonymous": LOGIN, "county-a": 403, "county-b": 403, "staff": 404,
                                            "admin": 404}),
    ("/staff/bulletins", {"anonymous": LOGIN, "county-a": 403, "county-b": 403, "staff": 200, "admin": 200}),
    ("/staff/bulletins/2025-03/bulletin-2025-03.html", {"anonymous": LOGIN, "county-a": 403, "county-b": 403,
                                                       "staff": 200, "admin": 200}),
    ("/staff/bulletins/2025-03/missing.html", {"anonymous": LOGIN, "county-a": 403, "county-b": 403, "staff": 404,
                                              "admin": 404}),
    ("/staff/runs", {"anonymous": LOGIN, "county-a": 403, "county-b": 403, "staff": 200, "admin": 200}),
    ("/staff/run?period=2025-03", {"anonymous": LOGIN, "county-a": 403, "county-b": 403, "staff": 200, "admin": 200}),
    ("/api/status?period=2025-03", {"anonymous": 401, "county-a": 403, "county-b": 403, "staff": 200, "admin": 200}),
    ("/api/status", {"anonymous": 401, "county-a": 403, "county-b": 403, "staff": 400, "admin": 400}),
    (f"/api/history?county={A}&period=2025-03", {"anonymous": 401, "county-a": 200, "county-b": 403, "staff": 200,
                                                  "admin": 200}),
    ("/admin/audit", {"anonymous": LOGIN, "county-a": 403, "county-b": 403, "staff": 403, "admin": 200}),
    ("/admin/users", {"anonymous": LOGIN, "county-a": 403, "county-b": 403, "staff": 403, "admin": 200}),
    ("/no/such/page", {"anonymous": LOGIN, "county-a": 404, "county-b": 404, "staff": 404, "admin": 404}),
    ("/static/portal.css", {"anonymous": 200, "county-a": 200, "county-b": 200, "staff": 200, "admin": 200}),
    ("/login", {"anonymous": 200, "county-a": 302, "county-b": 302, "staff": 302, "admin": 302}),
]


@pytest.mark.parametrize(("path", "expected"), GETS, ids=[p for p, _ in GETS])
def test_every_page_answers_each_role_as_it_should(site: tuple[Flask, dict[str, int], dict[str, Browser]],
                                                   path: str, expected: dict[str, int | str]) -> None:
    _app, sids, browsers = site
    url = path.replace("{A}", str(sids[A])).replace("{B}", str(sids[B]))
    for role in ROLES:
        r = browsers[role].get(url)
        want = expected[role]
        if want == LOGIN:
            assert r.status_code == 302 and r.headers["Location"].startswith("/login"), (role, url, r.status_code)
        else:
            assert r.status_code == want, (role, url, r.status_code)
        if url.startswith("/api/") and r.status_code != 200:
            assert r.is_json and r.json["message"]
        if r.status_code in (400, 403, 404) and not url.startswith("/api/"):
            assert "<html lang=\"zh-CN\">" in r.text          # a Chinese page, not Werkzeug's


POSTS = [
    ("/county/upload", {"anonymous": LOGIN, "county-a": 400, "county-b": 400, "staff": 403, "admin": 403}),
    ("/staff/reject", {"anonymous": LOGIN, "county-a": 403, "county-b": 403, "staff": 404, "admin": 404}),
    ("/staff/run", {"anonymous": LOGIN, "county-a": 403, "county-b": 403, "staff": 400, "admin": 400}),
]


@pytest.mark.parametrize(("path", "expected"), POSTS, ids=[p for p, _ in POSTS])
def test_every_state_change_needs_the_role_and_the_token(site: tuple[Flask, dict[str, int], dict[str, Browser]],
                                                         path: str, expected: dict[str, int | str]) -> None:
    _app, _sids, browsers = site
    for role in ROLES:
        b = browsers[role]
        # with the page's token: the role decides (the empty form then gets 400/404 from the view)
        r = b.post(path, data={"csrf_token": b.csrf})
        want = expected[role]
        if want == LOGIN:
            assert r.status_code == 303 and r.headers["Location"].startswith("/login"), (role, r.status_code)
            continue
        assert r.status_code == want, (role, path, r.status_code)
        assert b.post(path, data={}).status_code == 400, role                          # no token
        assert b.post(path, data={"csrf_token": "forged"}).status_code == 403, role     # a wrong one


def test_a_county_gets_its_own_prefilled_template(site: tuple[Flask, dict[str, int], dict[str, Browser]],
                                                  tmp_path: Path) -> None:
    from openpyxl import load_workbook

    _app, _sids, browsers = site
    r = browsers["county-a"].get("/county/template?period=2025-03")
    assert r.headers["Content-Disposition"].startswith("attachment;")
    (tmp_path / "t.xlsx").write_bytes(r.data)
    sheet = load_workbook(tmp_path / "t.xlsx")["填报表"]
    assert (sheet["B2"].value, sheet["F2"].value) == (A, "2025-03")


def test_a_bulletin_page_is_sandboxed_and_other_files_download(site: tuple[Flask, dict[str, int], dict[str, Browser]],
                                                                ) -> None:
    _app, _sids, browsers = site
    r = browsers["staff"].get("/staff/bulletins/2025-03/bulletin-2025-03.html")
    assert r.status_code == 200 and "sandbox" in r.headers["Content-Security-Policy"]
    assert "script-src" not in r.headers["Content-Security-Policy"]
    d = browsers["staff"].get("/staff/bulletins/2025-03/bulletin-2025-03.html?download=1")
    assert d.headers["Content-Disposition"].startswith("attachment;")


@pytest.mark.parametrize("path", [
    "/staff/bulletins/2025-03/..%2F..%2Fsupervise.toml",
    "/staff/bulletins/..%2F/supervise.toml",
    "/staff/bulletins/templates/bulletin.html",
    "/staff/bulletins/2025-03/%2E%2E",
    "/staff/bulletins/2025-03/.%2E%2Fsupervise.db",
])
def test_no_bulletin_path_escapes_the_reports_folder(site: tuple[Flask, dict[str, int], dict[str, Browser]],
                                                      path: str) -> None:
    _app, _sids, browsers = site
    r = browsers["staff"].get(path, follow_redirects=True)
    assert r.status_code == 404 and "[bureau]" not in r.text


def test_the_status_api_is_the_status_command_document(site: tuple[Flask, dict[str, int], dict[str, Browser]],
                                                       ) -> None:
    import json

    from click.testing import CliRunner

    from supervise import cli_intake
    from supervise.cli import cli

    app, _sids, browsers = site
    doc = browsers["staff"].get("/api/status?period=2025-03").json
    home = app.extensions["supervise"].home
    original = cli_intake.now
    cli_intake.now = lambda: NOW  # the CLI reads the real clock; the same instant as the web's
    try:
        result = CliRunner().invoke(cli, ["--home", str(home), "status", "--month", "2025-03", "--json"])
    finally:
        cli_intake.now = original
    assert doc == json.loads(result.stdout)
    states = {c["county_code"]: c["state"] for c in doc["counties"]}
    assert states[A] == states[B] == "on_time" and doc["deadline_passed"] is False


def test_a_workspace_is_needed(tmp_path: Path) -> None:
    from supervise.workspace import WorkspaceError

    with pytest.raises(WorkspaceError):
        make_app(Workspace(tmp_path / "nothing"))
