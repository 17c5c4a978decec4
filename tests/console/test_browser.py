"""End to end in a real browser: Debian's Chromium, driven by Playwright, against a live `sharelake serve`
with its mail caught by an in-process SMTP server. A newcomer signs up, sets a password, logs in, creates
an app and a pipe token; a real HTTP client posts data with it; the data page shows the records and the
chart; they share the recType with a rule and the simulator confirms it, create a Cayenne LPP device
cluster and test-decode a payload; revoking the token in the console makes the next POST fail.

Screenshots of every page go to test-artifacts/console/ (the ones in docs/console/ were taken here).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Page, expect, sync_playwright

from tests.helpers import PASSWORD
from tests.live import live_server, sharelake_env
from tests.services.test_inventory import uplink
from tests.smtp import smtp_server

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
REC_TYPE = "com.example.greenhouse"
NEIGHBOUR = "neighbour@example.org"

if not CHROMIUM.exists() and os.environ.get("CI"):
    # CI runs scripts/install-browser first; a missing browser there is a broken setup, not a skip.
    raise RuntimeError(f"{CHROMIUM} is missing in CI: run scripts/install-browser before the tests")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed (run scripts/install-browser as root)"
    ),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium for the module (it takes a second to start); each test gets a fresh context."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def browser_page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 760}, locale="en-GB")
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_newcomer_flow_in_chromium(database_url: str, tmp_path: Path, browser_page: Page) -> None:
    page = browser_page
    problems: list[str] = []
    # A CSP violation, a script error or a failed asset shows up here; the flow must have none.
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    with smtp_server() as (inbox, smtp_port):
        env = sharelake_env(database_url, tmp_path, {"SHARELAKE_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}"})
        with live_server(env, tmp_path / "server.log") as server, httpx.Client(base_url=server.url) as http:
            # Sign up, and follow the link in the mail.
            page.goto(f"{server.url}/console/signup")
            _shot(page, "signup")
            page.get_by_label("Email").fill("newcomer@example.com")
            page.get_by_role("button", name="Sign up").click()
            expect(page.get_by_role("heading", name="Check your mail")).to_be_visible()
            _shot(page, "signup-sent")

            body = inbox.wait()[-1].get_payload(decode=True)
            assert isinstance(body, bytes)
            link = re.search(r"http\S+/console/verify\?token=[0-9a-f]+", body.decode())
            assert link, body
            page.goto(link.group(0))
            page.get_by_label("Password", exact=True).fill(PASSWORD)
            page.get_by_label("Password (again)").fill(PASSWORD)
            _shot(page, "verify")
            page.get_by_role("button", name="Set password").click()
            expect(page.get_by_role("heading", name="Your account is active")).to_be_visible()
            page.get_by_role("main").get_by_role("link", name="Log in").click()

            # Log in: the e-mail is filled in from the link.
            expect(page.get_by_label("Email")).to_have_value("newcomer@example.com")
            page.get_by_label("Password").fill(PASSWORD)
            _shot(page, "login")
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_role("heading", name="Data")).to_be_visible()
            expect(page.get_by_text("No data yet")).to_be_visible()
            _shot(page, "data-empty")

            # Keys: "Create new app" opens the form in place.
            page.get_by_role("link", name="Keys").click()
            page.get_by_role("button", name="Create new app").click()
            page.get_by_label("Name").fill("Greenhouse sensors")
            page.get_by_role("button", name="Create", exact=True).click()
            key = page.get_by_test_id("api-key")
            expect(key).to_have_text(re.compile(r"^[0-9A-F-]{36}$"))
            expect(page.get_by_role("button", name="Copy the key of Greenhouse sensors")).to_be_visible()
            _shot(page, "keys")

            # Tokens: a pipe token for that app, shown once.
            page.get_by_role("link", name="Tokens").click()
            page.get_by_role("button", name="Request pipe token").click()
            new_token = page.get_by_test_id("new-token")
            expect(new_token).to_be_visible()
            pipe = new_token.inner_text().strip()
            assert re.fullmatch(r"[0-9a-f]{32,}", pipe), pipe
            page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
            page.get_by_role("button", name="Copy the new token").click()
            expect(page.get_by_role("button", name="Copy the new token")).to_have_text("Copied")
            assert page.evaluate("navigator.clipboard.readText()") == pipe
            _shot(page, "tokens")

            # A real HTTP client posts data with it, as a network server would.
            for i in range(6):
                reading = {
                    "temperature": 20.5 + i,
                    "humidity": 40 + 2 * i,
                    "battery": {"volts": round(3.6 - i / 100, 2)},
                }
                posted = http.post(
                    f"/share/{REC_TYPE}", json=reading, headers={"Authorization": f"Bearer {pipe}"}
                )
                assert posted.status_code == 200, posted.text

            # Data: the recType, its records and the chart.
            page.get_by_role("link", name="Data").click()
            page.get_by_role("link", name=REC_TYPE).click()
            expect(page.get_by_test_id("record-row")).to_have_count(6)
            chart = page.get_by_test_id("chart")
            expect(chart).to_be_visible()
            expect(chart.locator("canvas")).to_have_count(3)  # temperature, humidity, battery.volts
            _shot(page, "data")
            page.get_by_test_id("record-row").first.locator("summary").click()
            expect(page.get_by_test_id("record-row").first.locator("pre")).to_contain_text('"recType"')
            page.get_by_test_id("record-row").first.get_by_role("link").first.click()
            expect(page.get_by_test_id("record-json")).to_contain_text('"temperature": 25.5')
            _shot(page, "record")

            _devices(page, http, pipe)
            _share_with_a_rule(page)
            _decode_with_a_cluster(page)

            # Revoke the pipe token (after the browser's confirm()); its next POST is refused.
            page.get_by_role("link", name="Tokens").click()
            expect(page.get_by_test_id("new-token")).to_have_count(0)
            pipe_row = page.locator('[data-testid="token-row"][data-kind="pipe"]')
            expect(pipe_row).to_contain_text("Greenhouse sensors")
            dialogs: list[str] = []

            def accept(dialog: Dialog) -> None:
                dialogs.append(dialog.message)
                dialog.accept()

            page.once("dialog", accept)
            pipe_row.get_by_role("button", name="Revoke").click()
            expect(page.get_by_role("status")).to_contain_text("revoked")
            assert len(dialogs) == 1
            assert "Revoke this pipe token" in dialogs[0]
            expect(pipe_row).to_have_count(0)
            refused = http.post(
                f"/share/{REC_TYPE}", json={"temperature": 1}, headers={"Authorization": pipe}
            )
            assert refused.status_code == 401

            # Log out.
            page.get_by_role("button", name="Log out").click()
            expect(page.get_by_role("status")).to_contain_text("logged out")
            page.goto(f"{server.url}/console/keys")
            expect(page).to_have_url(re.compile(r"/console/login\?next="))

    assert problems == []


def _devices(page: Page, http: httpx.Client, pipe: str) -> None:
    """Two devices' uplinks through The Things Stack's webhook: the Devices table sorts, a device's page
    draws its signal."""
    now = int(time.time() * 1000)
    for n in range(3):
        for dev_eui, rssi in (("70B3D57ED0000001", -100 + n), ("70B3D57ED0000002", -80 + n)):
            body = uplink(n + 1, now - 60_000 * (3 - n), dev_eui=dev_eui, gateways=(("gw-1", rssi, 7.0),))
            posted = http.post(
                "/share/com.example.field", json=body, headers={"Authorization": f"Bearer {pipe}"}
            )
            assert posted.status_code == 200, posted.text
    _nav(page, "Devices")
    rows = page.get_by_test_id("device-row")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("70B3D57ED0000001")
    page.get_by_role("button", name="RSSI").click()  # ascending: the weaker first
    expect(rows.first).to_contain_text("70B3D57ED0000001")
    page.get_by_role("button", name="RSSI").click()  # descending: the stronger first
    expect(rows.first).to_contain_text("70B3D57ED0000002")
    _shot(page, "devices")
    rows.first.get_by_role("link", name="70B3D57ED0000002").click()
    expect(page.get_by_test_id("device-frames")).to_have_text("3 / 0")
    expect(page.get_by_test_id("chart").locator("canvas")).to_have_count(2)  # RSSI and SNR
    _shot(page, "device")


def _nav(page: Page, section: str) -> None:
    page.get_by_role("navigation", name="Console sections").get_by_role("link", name=section).click()


def _share_with_a_rule(page: Page) -> None:
    """A rule made in the browser, then the simulator's answer about it."""
    _nav(page, "Rules")
    expect(page.get_by_text("No rules yet")).to_be_visible()
    page.get_by_role("link", name="New rule").click()
    page.get_by_label("Name").fill("Neighbours read")
    page.get_by_label("recType", exact=True).fill(REC_TYPE)
    page.get_by_label("User", exact=True).fill(NEIGHBOUR)
    page.get_by_label("Query").check()
    _shot(page, "rule-new")
    page.get_by_role("button", name="Create rule").click()
    expect(page.get_by_role("status")).to_have_text("The rule is created.")
    row = page.get_by_test_id("rule-row")
    expect(row).to_contain_text(f"user {NEIGHBOUR}")
    expect(row).to_contain_text("Read, Query")

    page.get_by_label("recType").fill(REC_TYPE)
    page.get_by_label("User's e-mail").fill(NEIGHBOUR)
    page.get_by_label("Operation").select_option("Read")
    page.get_by_role("button", name="Simulate").click()
    result = page.get_by_test_id("simulate-result")
    expect(result).to_have_attribute("data-allowed", "true")
    expect(result).to_contain_text(f"Allowed: {NEIGHBOUR} may Read")
    expect(result.get_by_role("link", name="Neighbours read")).to_be_visible()
    _shot(page, "rules")
    page.get_by_label("Operation").select_option("Delete")
    page.get_by_role("button", name="Simulate").click()
    expect(page.get_by_test_id("simulate-result")).to_have_attribute("data-allowed", "false")


def _decode_with_a_cluster(page: Page) -> None:
    """A Cayenne LPP device cluster, and its Test decode of 0167FFD7 (-4.1 °C)."""
    _nav(page, "Device clusters")
    page.get_by_role("link", name="New device cluster").click()
    page.get_by_label("Name").fill("Greenhouse sensors")
    page.get_by_label("recType (the raw uplinks)").fill(f"{REC_TYPE}.packed")
    page.get_by_label("Target recType").fill(f"{REC_TYPE}.unpacked")
    page.get_by_label("Unpacker", exact=True).select_option("cayenne-lpp")
    page.get_by_label("Location tags").fill("greenhouse, north")
    page.get_by_label("Devices").fill("A84041C4A1B2C3D4;bench 1\n0004A30B001C0530;bench 2")
    page.get_by_role("button", name="Create device cluster").click()
    expect(page.get_by_role("status")).to_have_text("The device cluster is created.")

    page.get_by_label("Payload (hex)").fill("0167FFD7")
    page.get_by_role("button", name="Test decode").click()
    expect(page.get_by_test_id("decode-result")).to_contain_text('"temperature_1": -4.1')
    _shot(page, "clusters")
    _nav(page, "Device clusters")
    expect(page.get_by_test_id("cluster-row")).to_contain_text("cayenne-lpp")
    _shot(page, "clusters-list")
    _nav(page, "Robots")
    expect(page.get_by_role("heading", name="Robots")).to_be_visible()
    _shot(page, "robots")
