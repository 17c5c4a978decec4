"""The Alerts page: the rules with what their notifications did, and the incidents' history."""

from __future__ import annotations

from sharelake.services.lake import Lake
from sharelake.worker import Worker
from tests.console.support import ConsoleUser, by_testid
from tests.helpers import Tenant


def test_the_page_lists_alerts_and_their_incidents(me: Tenant, my_console: ConsoleUser, lake: Lake) -> None:
    body = {
        "name": "too warm", "recType": "io.lab.t", "kind": "threshold", "field": "data.temperature",
        "above": 30, "channels": [],
    }  # fmt: skip
    made = me.client.post("/alerts", json=body, headers=me.headers).json()["objs"][0]
    for t in (31, 32, 20):
        me.post("io.lab.t", {"temperature": t})
        Worker(lake).drain()
    me.post("io.lab.t", {"temperature": 40})
    Worker(lake).drain()
    page = my_console.get("/console/alerts")
    assert page.status_code == 200, page.text
    assert len(by_testid(page.text, "alert-row")) == 1
    assert "too warm" in page.text
    assert "above 30" in page.text
    assert len(by_testid(page.text, "incident-row")) == 2
    assert len(by_testid(page.text, "incident-open")) == 1
    assert 'href="/console/alerts"' in page.text  # in the navigation
    resolved = my_console.get("/console/alerts", params={"status": "resolved", "alertId": made["id"]})
    assert len(by_testid(resolved.text, "incident-row")) == 1
    assert "1 incident of “too warm”" in resolved.text


def test_a_bad_filter_is_shown_not_thrown(my_console: ConsoleUser) -> None:
    page = my_console.get("/console/alerts", params={"status": "closed"})
    assert page.status_code == 400
    assert "open or resolved" in page.text
