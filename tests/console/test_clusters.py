"""The Device clusters pages: create, edit (devices one a line), Test decode, Replay, and errors."""

from __future__ import annotations

import json
import re
from typing import Any

from sharelake import decoders
from sharelake.services.lake import Lake
from sharelake.worker import Worker
from tests.console.support import ConsoleUser, by_testid, field, message
from tests.helpers import Tenant
from tests.services.test_clusters import DEV, OTHER, tts

PACKED = "io.lab.packed"
UNPACKED = "io.lab.unpacked"
DEVICES = f"{DEV.lower()};floor 2, room 201\r\n\r\n{OTHER}\r\n"  # as a browser posts a textarea


def _clusters(me: Tenant) -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = me.get("/device/*").json()["objs"]
    return objs


def _create(console: ConsoleUser, **fields: str) -> Any:
    data = {
        "name": "lab sensors",
        "rec_type": PACKED,
        "target_rec_type": UNPACKED,
        "unpacker": "cayenne-lpp",
        "location": "building a, lab",
        "devices": DEVICES,
        "is_active": "true",
        **fields,
    }
    return console.submit("/console/clusters/new", "/console/clusters", data, follow_redirects=False)


def _made(console: ConsoleUser, me: Tenant, **fields: str) -> dict[str, Any]:
    assert _create(console, **fields).status_code == 303
    (cluster,) = _clusters(me)
    return cluster


def _decoded(page: str) -> Any:
    (text,) = by_testid(page, "decode-result")
    return json.loads(text)


def test_create_list_and_edit(my_console: ConsoleUser, me: Tenant) -> None:
    assert "No device clusters yet" in my_console.get("/console/clusters").text
    form = my_console.get("/console/clusters/new")
    options = re.findall(r"<option(?: selected)?>([^<]+)</option>", form.text)
    assert options == [*decoders.names(), "javascript"]
    assert "<option selected>cayenne-lpp</option>" in form.text

    created = _create(my_console)
    assert created.status_code == 303
    (cluster,) = _clusters(me)
    assert created.headers["location"] == f"/console/clusters/{cluster['id']}?notice=created"
    assert cluster["recType"] == PACKED
    assert cluster["data"] == {
        "devices": [{"id": DEV.lower(), "meta": {"location": ["floor 2", "room 201"]}}, {"id": OTHER}],
        "meta": {"unpacker": "cayenne-lpp", "location": ["building a", "lab"]},
        "targetRecType": UNPACKED,
        "isActive": True,
    }
    page = my_console.get(created.headers["location"])
    assert message(page.text) == "The device cluster is created."
    assert field(page.text, "devices") == f"{DEV.lower()};floor 2,room 201\n{OTHER}"
    assert field(page.text, "location") == "building a, lab"
    assert ">Test decode</button>" in page.text
    assert ">Replay</button>" in page.text

    listed = my_console.get("/console/clusters")
    row = listed.text.split(f'id="doc-{cluster["id"]}"')[1].split("</tr>")[0]
    assert f"<code>{PACKED}</code> → <code>{UNPACKED}</code>" in row
    assert '<td class="num">2</td>' in row
    assert ">active</span>" in row


def test_an_edit_keeps_what_the_form_does_not_show(my_console: ConsoleUser, me: Tenant) -> None:
    body = {
        "name": "from the API",
        "data": {
            "devices": [{"id": DEV, "meta": {"location": "floor 1", "model": "LHT65"}, "label": "d1"}],
            "meta": {"unpacker": "cayenne-lpp", "vendor": "acme"},
            "targetRecType": UNPACKED,
            "note": "kept",
        },
    }
    made = me.client.post(f"/device/{PACKED}", json=body, headers=me.headers).json()["objs"][0]
    path = f"/console/clusters/{made['id']}"
    form = {
        "name": "renamed",
        "target_rec_type": "io.lab.decoded",
        "unpacker": "cayenne-lpp",
        "devices": f"{DEV};floor 3\n{OTHER}",
        "is_active": "true",
    }
    saved = my_console.submit(path, path, form, follow_redirects=False)
    assert saved.status_code == 303
    assert saved.headers["location"] == f"{path}?notice=saved"
    (cluster,) = _clusters(me)
    assert cluster["name"] == "renamed"
    assert cluster["data"] == {
        "devices": [
            {"id": DEV, "meta": {"location": ["floor 3"], "model": "LHT65"}, "label": "d1"},
            {"id": OTHER},
        ],
        "meta": {"unpacker": "cayenne-lpp", "vendor": "acme"},
        "targetRecType": "io.lab.decoded",
        "note": "kept",
        "isActive": True,
    }


def test_test_decode(my_console: ConsoleUser, me: Tenant, lake: Lake) -> None:
    cluster = _made(my_console, me)
    path = f"/console/clusters/{cluster['id']}"
    decoded = my_console.submit(path, f"{path}/test", {"f_port": "2", "hex": "01 67 FF D7"})
    assert decoded.status_code == 200
    assert _decoded(decoded.text) == {"temperature_1": -4.1}
    assert by_testid(decoded.text, "decode-error") == []
    assert field(decoded.text, "hex") == "01 67 FF D7"
    assert me.get(f"/share/{UNPACKED}").json()["meta"]["totalCount"] == 0  # nothing written

    odd = my_console.submit(path, f"{path}/test", {"f_port": "2", "hex": "0167"})
    assert odd.status_code == 200
    assert by_testid(odd.text, "decode-error") or by_testid(odd.text, "decode-warning")


def test_test_decode_errors(my_console: ConsoleUser, me: Tenant) -> None:
    cluster = _made(my_console, me)
    path = f"/console/clusters/{cluster['id']}"
    for form, fragment in (
        ({"f_port": "2", "hex": "zz"}, "payloadHex must be the payload in hex"),
        ({"f_port": "300", "hex": "0167FFD7"}, "fPort must be a whole number"),
        ({"f_port": "two", "hex": "0167FFD7"}, "fPort must be a whole number"),
    ):
        refused = my_console.submit(path, f"{path}/test", form)
        assert refused.status_code == 400, form
        assert fragment in message(refused.text), form
        assert field(refused.text, "hex") == form["hex"]
        assert field(refused.text, "f_port") == form["f_port"]
        assert by_testid(refused.text, "decode-result") == []


def test_a_javascript_codec_and_its_errors(my_console: ConsoleUser, me: Tenant) -> None:
    codec = 'function decodeUplink(input) { return input.bytes.length < 2 ? {errors: ["too short"]} : {data: {n: input.bytes[0] << 8 | input.bytes[1]}}; }'
    cluster = _made(my_console, me, unpacker="javascript", codec=codec)
    assert cluster["data"]["meta"]["codec"] == codec
    path = f"/console/clusters/{cluster['id']}"
    assert field(my_console.get(path).text, "codec") == codec
    decoded = my_console.submit(path, f"{path}/test", {"f_port": "1", "hex": "00D2"})
    assert _decoded(decoded.text) == {"n": 210}
    short = my_console.submit(path, f"{path}/test", {"f_port": "1", "hex": "00"})
    assert by_testid(short.text, "decode-error") == ["Error: too short"]


def test_a_codec_that_does_not_compile_is_shown_on_the_form(my_console: ConsoleUser, me: Tenant) -> None:
    broken = "function decodeUplink(input) {\n  return {data: {}};\n}\n}"
    refused = _create(my_console, unpacker="javascript", codec=broken)
    assert refused.status_code == 400
    assert "SyntaxError: Unexpected token '}' (line 4, column 1)" in message(refused.text)
    assert field(refused.text, "codec") == broken  # kept, to be fixed where it is
    assert _clusters(me) == []
    good = "function decodeUplink(input) { console.log('saw', input.bytes.length); return {data: {}}; }"
    cluster = _made(my_console, me, unpacker="javascript", codec=good)
    path = f"/console/clusters/{cluster['id']}"
    form = {
        "name": "lab sensors",
        "target_rec_type": UNPACKED,
        "unpacker": "javascript",
        "codec": "var x = 1;",
        "devices": DEVICES,
        "is_active": "true",
    }
    edited = my_console.submit(path, path, form)
    assert edited.status_code == 400
    assert "defines neither decodeUplink(input) nor Decoder(bytes, fPort)" in message(edited.text)
    assert _clusters(me)[0]["data"]["meta"]["codec"] == good
    decoded = my_console.submit(path, f"{path}/test", {"f_port": "1", "hex": "0102"})
    assert by_testid(decoded.text, "decode-console") == ["saw 2"]
    assert len(by_testid(decoded.text, "decode-ms")) == 1


def test_replay(my_console: ConsoleUser, me: Tenant, lake: Lake) -> None:
    assert me.post(PACKED, [tts("0167FFD7", 1), tts("0167FFD7", 2, OTHER)]).status_code == 200
    cluster = _made(my_console, me)  # after the records: only a replay decodes them
    Worker(lake).drain()
    assert me.get(f"/share/{UNPACKED}").json()["meta"]["totalCount"] == 0
    path = f"/console/clusters/{cluster['id']}"
    replayed = my_console.submit(path, f"{path}/replay", {"from": "", "to": ""}, follow_redirects=False)
    assert replayed.status_code == 303
    page = my_console.get(replayed.headers["location"])
    assert message(page.text) == "2 stored records queued to be decoded again."
    Worker(lake).drain()
    objs = me.get(f"/share/{UNPACKED}").json()["objs"]
    assert [o["data"]["temperature_1"] for o in objs] == [-4.1, -4.1]

    none = my_console.submit(path, f"{path}/replay", {"from": "2000-01-01T00:00", "to": "2000-01-02T00:00"})
    assert message(none.text) == "0 stored records queued to be decoded again."


def test_replay_with_a_bad_time_says_so(my_console: ConsoleUser, me: Tenant) -> None:
    cluster = _made(my_console, me)
    path = f"/console/clusters/{cluster['id']}"
    refused = my_console.submit(path, f"{path}/replay", {"from": "yesterday"})
    assert refused.status_code == 400
    assert "From='yesterday' is not a time" in message(refused.text)


def test_invalid_clusters_show_the_services_message_and_keep_the_form(
    my_console: ConsoleUser, me: Tenant
) -> None:
    for fields, fragment in (
        ({"unpacker": "no-such-decoder"}, "no decoder named"),
        ({"unpacker": "javascript"}, "codec"),
        ({"target_rec_type": ""}, "recType"),
        ({"rec_type": "bad..type"}, "recType"),
        ({"devices": f"{DEV}\n{DEV.lower()};lab"}, "data.devices[1].id"),
    ):
        refused = _create(my_console, **fields)
        assert refused.status_code == 400, fields
        assert fragment in message(refused.text), fields
        assert field(refused.text, "name") == "lab sensors"
        assert field(refused.text, "devices") == fields.get("devices", DEVICES)
    assert _clusters(me) == []


def test_an_invalid_edit_changes_nothing(my_console: ConsoleUser, me: Tenant) -> None:
    before = _made(my_console, me)
    path = f"/console/clusters/{before['id']}"
    devices = f"{DEV}\n{DEV.lower()}"  # one device twice
    form = {"name": "x", "unpacker": "cayenne-lpp", "target_rec_type": UNPACKED, "devices": devices}
    refused = my_console.submit(path, path, form)
    assert refused.status_code == 400
    assert "is the same DevEUI as data.devices[0]" in message(refused.text)
    assert field(refused.text, "devices") == devices
    assert _clusters(me) == [before]
