"""The portal and the console in a real browser: the system Chromium, headless, driven through
Debian's chromium-driver (Selenium), against `supervise serve` (waitress) on 127.0.0.1.

A county clerk logs in, uploads a file with mistakes, reads the located problems, uploads the
corrected file and sees 已受理; a staff member finds it on the board and sends it back with a
reason; the clerk sees the reason. With SUPERVISE_SCREENSHOTS=1 the portal and the board are
saved to docs/ for the README.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supervise.intake import ingest_files
from supervise.workspace import Workspace

from .conftest import require_peer
from .intake_corpus import at, filled
from .web_support import HUANGHUA, MARCH, PASSWORDS, add_users, running_server

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
DRIVER = shutil.which("chromedriver")
DOCS = Path(__file__).resolve().parents[1] / "docs"

pytestmark = [pytest.mark.chromium, pytest.mark.browser]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    require_peer("a headless Chromium", CHROMIUM)
    require_peer("chromedriver (Debian's chromium-driver)", DRIVER)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,900", "--lang=zh-CN"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=str(DRIVER)), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _wait_text(driver: Any, text: str, timeout: float = 30) -> str:
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    # The page's text read in one script call: while a form posts and the next page loads, an
    # element found a moment before may already belong to the old document (a stale node).
    def page_text(d: Any) -> str:
        return str(d.execute_script("return document.body ? document.body.innerText : ''"))

    WebDriverWait(driver, timeout, ignored_exceptions=(WebDriverException,)).until(lambda d: text in page_text(d))
    return page_text(driver)


def _login(driver: Any, base: str, name: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(base + "/login")
    driver.find_element(By.NAME, "username").send_keys(name)
    driver.find_element(By.NAME, "password").send_keys(PASSWORDS[name])
    driver.find_element(By.CSS_SELECTOR, "button[type=submit].primary").click()
    _wait_text(driver, "退出登录")          # logged in: the next page is asked for only now


def _logout(driver: Any) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, "form.who button").click()
    _wait_text(driver, "请使用市工信局分配的账户登录")


def _upload(driver: Any, path: Path) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, "input[type=file][name=file]").send_keys(str(path))
    driver.find_element(By.CSS_SELECTOR, "#upload-form button[type=submit]").click()


def _screenshot(driver: Any, tmp_path: Path, name: str) -> Path:
    shot = tmp_path / name
    driver.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("SUPERVISE_SCREENSHOTS") == "1":
        shutil.copyfile(shot, DOCS / name)
    return shot


def test_a_county_corrects_its_file_and_staff_send_it_back(ws: Workspace, tmp_path: Path, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    add_users(ws)
    # Other counties reported already (a board with something on it).
    others = [c.code for c in ws.registry.assessed_counties() if c.code != HUANGHUA][:9]
    for i, code in enumerate(others):
        path = filled(ws, code, MARCH, tmp_path / "others" / f"{code}.xlsx")
        ingest_files(ws, [path], county=code, received_at=at(f"2025-04-0{1 + i % 7} 10:00"),
                     now=at("2025-04-09 12:00"))
    wrong = filled(ws, HUANGHUA, MARCH, tmp_path / "黄骅市2025年3月（初稿）.xlsx",
                   CZ01__revenue_ytd="约三千万", CZ02__ent_above=999)
    right = filled(ws, HUANGHUA, MARCH, tmp_path / "黄骅市2025年3月.xlsx")

    with running_server(ws.home) as server:
        base = server.url
        driver = browser
        driver.get(base + "/county")
        assert "/login" in driver.current_url                       # anonymous: sent to the login page
        _login(driver, base, "county-a")
        _wait_text(driver, "黄骅市（130983）报送")

        _upload(driver, wrong)
        text = _wait_text(driver, "报送结果")
        assert "退回" in text and "已保存的数据没有改变" in text
        assert "填报表!I6 / CZ01 / revenue_ytd" in text and "约三千万" in text
        assert "/ CZ02 / ent_above" in text                      # ent_above > ent_total, located too
        _screenshot(driver, tmp_path, "web-upload-problems.png")

        _upload(driver, right)
        text = _wait_text(driver, "已受理")
        assert "文件已受理，数据已保存" in text and "黄骅市2025年3月.xlsx" in text

        driver.get(base + "/county?period=2025-03")
        text = _wait_text(driver, "2025年3月报送记录")
        assert "迟报" in text          # March was due on 5 April 2025
        _screenshot(driver, tmp_path, "web-portal.png")
        _logout(driver)

        _login(driver, base, "staff")
        _wait_text(driver, "报送情况")
        driver.get(base + "/staff?period=2025-03")
        text = _wait_text(driver, "2025年3月报送情况")
        row = driver.find_element(By.XPATH, f"//tr[td[1][text()='{HUANGHUA}']]").text
        assert "黄骅市" in row and "迟报" in row
        _screenshot(driver, tmp_path, "web-board.png")

        driver.find_element(By.XPATH, f"//tr[td[1][text()='{HUANGHUA}']]//a").click()
        _wait_text(driver, "黄骅市（130983）2025年3月报送记录")
        driver.find_element(By.ID, "reason").send_keys("CZ01营业收入与统计局快报不符，请核实后重新报送")
        driver.find_element(By.CSS_SELECTOR, "button.danger").click()
        text = _wait_text(driver, "已退回 黄骅市 2025年3月 的报送")
        driver.get(base + "/staff?period=2025-03")
        row = driver.find_element(By.XPATH, f"//tr[td[1][text()='{HUANGHUA}']]").text
        assert "退回" in row and "CZ01营业收入与统计局快报不符" in row
        _logout(driver)

        _login(driver, base, "county-a")
        driver.get(base + "/county?period=2025-03")
        text = _wait_text(driver, "2025年3月报送记录")
        assert "市工信局已于" in text and "原因：CZ01营业收入与统计局快报不符，请核实后重新报送" in text
        logs = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        assert logs == [], logs                     # no CSP violation, no script error
