"""The Devices pages: the inventory's table with its filters, and a device's page with its last values,
its gateways and its signal over time."""

from __future__ import annotations

import json
import re
import time

from tests.console.support import ConsoleUser, by_testid
from tests.helpers import Tenant
from tests.services.test_inventory import DEV, OTHER, uplink


def _rows(page: str) -> list[str]:
    return re.findall(r'<a href="/console/devices/([0-9A-F]{16})">', page)


def test_the_table_lists_filters_and_links_devices(me: Tenant, my_console: ConsoleUser) -> None:
    now = int(time.time() * 1000)
    for n in range(3):
        me.post("io.lab.raw", uplink(n + 1, now - 60_000 * (3 - n), decoded={"battery": 3.5 - n / 10}))
        me.post("io.lab.raw", uplink(n + 1, now - 86_400_000 - 10_000 * (3 - n), dev_eui=OTHER))
    page = my_console.get("/console/devices")
    assert page.status_code == 200, page.text
    assert _rows(page.text) == [DEV, OTHER]
    assert "3 devices" not in page.text
    assert "2 devices." in page.text
    assert len(by_testid(page.text, "device-silent")) == 1
    assert "battery 3.3" in page.text
    assert 'href="/console/data/io.lab.raw?devEui=' + DEV in page.text
    assert _rows(my_console.get("/console/devices", params={"silent": "true"}).text) == [OTHER]
    assert _rows(my_console.get("/console/devices", params={"q": "D0000001"}).text) == [DEV]
    assert 'href="/console/devices"' in page.text  # in the navigation
    assert "sort.js" in page.text


def test_a_bad_filter_is_shown_not_thrown(my_console: ConsoleUser) -> None:
    page = my_console.get("/console/devices", params={"silent": "maybe"})
    assert page.status_code == 400
    assert "silent must be true or false" in page.text


def test_a_device_page_shows_values_gateways_and_its_signal(me: Tenant, my_console: ConsoleUser) -> None:
    now = int(time.time() * 1000)
    for n in range(3):
        gateways = (("gw-roof", -100.0 + n, 5.0 + n), ("gw-street", -110.0, 1.0))
        me.post("io.lab.raw", uplink(n + 1, now - 60_000 * (3 - n), gateways=gateways, decoded={"t": 20 + n}))
    page = my_console.get(f"/console/devices/{DEV}")
    assert page.status_code == 200, page.text
    assert by_testid(page.text, "device-frames") == ["3 / 0"]
    assert "gw-roof" in page.text
    assert "gw-street" in page.text
    assert '<code>t</code></td><td class="num">22</td>' in page.text
    chart = json.loads(
        re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', page.text, re.S).group(1)
    )  # type: ignore[union-attr]
    assert chart["series"][0]["values"] == [-100.0, -99.0, -98.0]  # the best gateway of each frame
    assert chart["series"][1]["values"] == [5.0, 6.0, 7.0]
    assert len(chart["x"]) == 3


def test_an_unknown_device_is_not_found(my_console: ConsoleUser) -> None:
    assert my_console.get(f"/console/devices/{DEV}").status_code == 404
