"""The browser front in a real browser: headless Chromium (Debian's chromium and chromium-driver), driven
by selenium, loads the home page, looks a handle up with the form, reads the record's page, and follows
the redirect to the record's URL value, served here by a small HTTP server of the test's own.

Without Chromium the test fails in CI (the CI variable set) and is skipped elsewhere.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
from aiohttp import web

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--window-size=1200,900")
WAIT = 30.0
HANDLE = "88.101/SN-000123"


def require_chromium() -> None:
    if Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file():
        return
    message = (f"Chromium is not installed ({CHROMIUM}, {CHROMEDRIVER}): apt-get install chromium chromium-driver, "
               "as .ci/run does")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def chrome(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


async def product_site() -> tuple[web.AppRunner, str]:
    """The page a record's URL value names: a server of the test's own on an ephemeral port."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=f"<html><head><title>Product {request.match_info['serial']}</title></head>"
                                 f"<body><h1 id='product'>Washer {request.match_info['serial']}</h1></body></html>",
                            content_type="text/html")

    app = web.Application()
    app.router.add_get("/washers/{serial}", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


class Waiting:
    """WebDriverWait that says where the browser was when it gave up."""

    def __init__(self, driver, wait) -> None:
        self.driver, self.wait = driver, wait

    def until(self, condition):
        from selenium.common.exceptions import TimeoutException

        try:
            return self.wait.until(condition)
        except TimeoutException:
            raise AssertionError(f"Chromium waited {WAIT:g} s in vain at {self.driver.current_url}: "
                                 f"{self.driver.page_source[:2000]}") from None


def browse(base: str, product: str, profile: Path, screenshot: Path) -> dict:
    """What Chromium saw: the home page, the record page reached through the form, and where the
    record's link and a plain lookup landed."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chrome(profile)
    try:
        wait = Waiting(driver, WebDriverWait(driver, WAIT))
        driver.get(base + "/")
        saw = {"home title": driver.title}
        driver.find_element(By.ID, "hdl").send_keys(HANDLE)
        driver.find_element(By.ID, "noredirect").click()
        driver.find_element(By.ID, "resolve").click()
        wait.until(seen.presence_of_element_located((By.ID, "values")))
        saw.update(record_url=driver.current_url, handle=driver.find_element(By.ID, "handle").text,
                   signature=driver.find_element(By.ID, "signature").text,
                   rows=[row.text for row in driver.find_elements(By.CSS_SELECTOR, "#values tbody tr")])
        driver.save_screenshot(str(screenshot))
        driver.find_element(By.ID, "target").click()  # /<handle>, which redirects to the URL value
        wait.until(seen.url_to_be(product))
        saw["followed"] = (driver.current_url, driver.find_element(By.ID, "product").text)
        driver.get(base + "/")
        driver.find_element(By.ID, "hdl").send_keys(HANDLE)
        driver.find_element(By.ID, "resolve").click()  # no "show the record": straight to the product's page
        wait.until(seen.url_to_be(product))
        saw["looked up"] = (driver.current_url, driver.title)
        return saw
    finally:
        driver.quit()


async def test_chromium_looks_a_handle_up_and_follows_the_redirect(node, tmp_path):
    require_chromium()
    runner, site = await product_site()
    try:
        product = f"{site}/washers/SN-000123"
        async with node.session.put(node.url(f"/api/handles/{HANDLE}"), headers=node.auth(), json=[
                {"index": 1, "type": "URL", "data": product}, {"index": 2, "type": "MODEL", "data": "WM-7030 <pro>"}]) as r:
            assert r.status == 201
        screenshot = tmp_path / "record.png"
        saw = await asyncio.to_thread(browse, node.http, product, tmp_path / "profile", screenshot)
    finally:
        await runner.cleanup()
    assert saw["home title"].startswith("idres node")
    assert saw["record_url"] == f"{node.http}/{HANDLE}?noredirect"
    assert saw["handle"] == HANDLE
    assert saw["signature"].startswith("Signed (HS_SIGNATURE), but not checked")
    assert saw["rows"][0] == f"1 URL {product} 86400 s " + saw["rows"][0].rsplit(" ", 1)[-1]
    assert saw["rows"][1].startswith("2 MODEL WM-7030 <pro> 86400 s")  # shown as text, escaped in the HTML
    assert saw["followed"] == (product, "Washer SN-000123")
    assert saw["looked up"] == (product, "Product SN-000123")
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
