"""The Robots pages: create, edit, schedule and scopes, the robot's log; and, on a server without the robot
runtime, a page that says so."""

from __future__ import annotations

import html
import re
from typing import Any

from sharelake.services.lake import Lake
from sharelake.worker import Worker
from tests.console.support import ConsoleUser, by_testid, field, message
from tests.helpers import Tenant

REC_TYPE = "io.lab.unpacked"
SCRIPT = 'var lib = require("./libs/helpers");\nfunction main(text, auth) {\n  print("seen " + lib.parseMsg(text).objs[0].id);\n}\n'


def _robots(me: Tenant) -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = me.get("/robo/*").json()["objs"]
    return objs


def _create(console: ConsoleUser, **fields: str) -> Any:
    data = {
        "name": "printer",
        "rec_type": REC_TYPE,
        "script": SCRIPT,
        "scopes": "SHARE:READ",
        "is_active": "true",
    }
    return console.submit(
        "/console/robots/new", "/console/robots", {**data, **fields}, follow_redirects=False
    )


def test_without_the_robot_runtime_the_pages_say_so(my_console: ConsoleUser, lake: Lake) -> None:
    lake.documents.kinds.pop("robo", None)  # a server whose robot runtime is not installed
    page = my_console.get("/console/robots")
    assert page.status_code == 200
    assert by_testid(page.text, "robots-unavailable") == [
        "Robots are not available on this server yet: its robot runtime is not installed."
    ]
    assert "New robot" not in page.text
    new = my_console.get("/console/robots/new")
    assert new.status_code == 503
    assert "Robots are not available on this server yet." in message(new.text)
    posted = my_console.submit("/console/rules", "/console/robots", {"rec_type": REC_TYPE, "script": SCRIPT})
    assert posted.status_code == 503


def test_create_list_and_edit(my_console: ConsoleUser, me: Tenant) -> None:
    assert "No robots yet" in my_console.get("/console/robots").text
    form = my_console.get("/console/robots/new")
    assert "function main(text, auth)" in field(form.text, "script")

    created = _create(my_console, delay="1000", interval="60000")
    assert created.status_code == 303, created.text
    (robot,) = _robots(me)
    assert created.headers["location"] == f"/console/robots/{robot['id']}?notice=created"
    assert robot["recType"] == REC_TYPE
    assert robot["data"]["script"] == SCRIPT
    assert robot["data"]["scopes"] == ["SHARE:READ"]
    assert robot["data"]["schedule"] == {"delay": 1000, "interval": 60000}
    assert robot["data"]["isActive"] is True

    page = my_console.get(created.headers["location"])
    assert message(page.text) == "The robot is created."
    assert field(page.text, "interval") == "60000"
    assert field(page.text, "scopes") == "SHARE:READ"
    assert by_testid(page.text, "robot-log") == [
        "Nothing logged yet: the robot has not run, or printed nothing."
    ]

    listed = my_console.get("/console/robots")
    row = listed.text.split(f'id="doc-{robot["id"]}"')[1].split("</tr>")[0]
    assert "every 60000 ms, first after 1000 ms" in row
    assert "SHARE:READ" in row

    path = f"/console/robots/{robot['id']}"
    edited = {"name": "renamed", "script": SCRIPT, "scopes": "SHARE:READ, SHARE:WRITE", "is_active": "true"}
    assert my_console.submit(path, path, edited, follow_redirects=False).status_code == 303
    (robot,) = _robots(me)
    assert robot["name"] == "renamed"
    assert robot["data"]["scopes"] == ["SHARE:READ", "SHARE:WRITE"]
    assert "schedule" not in robot["data"]  # emptied: runs on each new record


def test_the_robots_log(my_console: ConsoleUser, me: Tenant, lake: Lake) -> None:
    starter = field(my_console.get("/console/robots/new").text, "script")  # what the form offers
    warm = """var lib = require("./libs/helpers");
function main(text, auth) {
  var record = lib.parseMsg(text).objs[0];
  print("<seen> " + record.data.t);
  if (record.data.t > 1) throw new Error("too warm");
}"""
    assert _create(my_console, name="starter", script=starter).status_code == 303
    assert _create(my_console, name="warm", script=warm).status_code == 303
    ids = {r["name"]: r["id"] for r in _robots(me)}
    posted = [me.post(REC_TYPE, {"t": t}).json()["objs"][0]["id"] for t in (1, 2)]
    Worker(lake).drain()
    pattern = r'<tr data-testid="robot-log-line" class="level-(\w+)">.*?<pre class="log">([^<]*)</pre>'

    page = my_console.get(f"/console/robots/{ids['starter']}")
    lines = [(level, html.unescape(text)) for level, text in re.findall(pattern, page.text, re.S)]
    assert sorted(lines) == [("info", f"new record {i} of {REC_TYPE}") for i in sorted(posted)]

    page = my_console.get(f"/console/robots/{ids['warm']}")
    lines = [(level, html.unescape(text)) for level, text in re.findall(pattern, page.text, re.S)]
    assert ("info", "<seen> 1") in lines
    assert ("info", "<seen> 2") in lines
    assert any(level == "error" and "too warm" in text for level, text in lines)
    assert "&lt;seen&gt; 1" in page.text  # escaped: a robot's output is data, never markup
    assert f'href="/console/data/{REC_TYPE}/{posted[0]}"' in page.text  # the record each run was for


def test_invalid_robots_show_the_services_message_and_keep_the_form(
    my_console: ConsoleUser, me: Tenant
) -> None:
    for fields, fragment in (
        ({"rec_type": "bad..type"}, "recType"),
        ({"script": "   "}, "data.script must hold the robot's JavaScript"),
        ({"script": "function nope() {}"}, "defines no main(text, auth)"),
        ({"script": "function main(text, auth) {\n  print(;\n}"}, "Unexpected token ';' (line 2, column 9)"),
        ({"scopes": "EVERYTHING"}, "data.scopes"),
        ({"delay": "5"}, "data.schedule.interval is required"),
        ({"interval": "10"}, "data.schedule.interval must be between 1000"),
        ({"interval": "soon"}, "data.schedule.interval must be a whole number"),
    ):
        refused = _create(my_console, **fields)
        assert refused.status_code == 400, fields
        assert fragment in message(refused.text), fields
        assert field(refused.text, "script") == fields.get("script", SCRIPT)
        assert field(refused.text, "name") == "printer"
    assert _robots(me) == []
