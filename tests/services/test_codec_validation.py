"""Codecs and robot scripts are checked when saved, and a codec can be tried on a payload (DESIGN §11).

Through the HTTP API on both backends: a refused save stores nothing, and a test decode writes nothing.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from sqlalchemy import func, select

from sharelake.services.lake import Lake
from sharelake.storage.tables import audit, documents, outbox, records
from tests.helpers import Tenant

DEV = "A84041C4A1B2C3D4"
GOOD = """// a device-repository style codec
function decodeUplink(input) {
  console.log("port", input.fPort, "bytes", input.bytes.length);
  if (input.bytes.length < 2) return {errors: ["too short"]};
  return {data: {celsius: ((input.bytes[0] << 8) | input.bytes[1]) / 10, hour: input.recvTime.getUTCHours()},
          warnings: input.fPort === 9 ? ["port 9 is odd"] : []};
}
"""
# Line 3 closes the function; line 4's brace has nothing to close.
BROKEN = """function decodeUplink(input) {
  return {data: {}};
}
}
"""


def cluster_data(codec: str | None = GOOD, unpacker: str = "javascript") -> dict[str, Any]:
    meta: dict[str, Any] = {"unpacker": unpacker}
    if codec is not None:
        meta["codec"] = codec
    return {"devices": [{"id": DEV}], "meta": meta, "targetRecType": "io.codec.unpacked"}


def create(tenant: Tenant, data: dict[str, Any]) -> Any:
    return tenant.client.post(
        "/device/io.codec.packed", json={"name": "lab", "data": data}, headers=tenant.headers
    )


def counts(lake: Lake) -> tuple[int, ...]:
    """Rows of everything a request could write: records, documents, events, audit entries."""
    with lake.engine.connect() as conn:
        return tuple(
            int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for table in (records, documents, outbox, audit)
        )


def refused(response: Any, code: str) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    message: str = error["message"]
    return message


# -- validation when saved ------------------------------------------------------------------------
def test_a_codec_that_does_not_compile_is_refused_with_its_line_and_column(
    tenant: Tenant, lake: Lake
) -> None:
    before = counts(lake)
    message = refused(create(tenant, cluster_data(BROKEN)), "invalid_codec")
    assert "SyntaxError: Unexpected token '}' (line 4, column 1)" in message
    assert message.startswith("data.meta.codec:")
    assert counts(lake) == before
    assert tenant.get("/device/io.codec.packed").json()["objs"] == []


def test_a_column_is_counted_within_its_line(tenant: Tenant) -> None:
    codec = "function decodeUplink(input) {\n  var x = ;\n  return {data: {}};\n}"
    message = refused(create(tenant, cluster_data(codec)), "invalid_codec")
    assert message.endswith("SyntaxError: Unexpected token ';' (line 2, column 11)")


def test_a_broken_codec_is_refused_on_update_and_the_stored_one_is_kept(tenant: Tenant, lake: Lake) -> None:
    made = create(tenant, cluster_data())
    assert made.status_code == 200, made.text
    doc = made.json()["objs"][0]
    before = counts(lake)
    data = copy.deepcopy(doc["data"])
    data["meta"]["codec"] = BROKEN
    path = f"/device/io.codec.packed/{doc['id']}"
    message = refused(tenant.client.put(path, json={"data": data}, headers=tenant.headers), "invalid_codec")
    assert "(line 4, column 1)" in message
    assert counts(lake) == before
    stored = tenant.get(path).json()["objs"][0]
    assert stored["data"]["meta"]["codec"] == GOOD
    assert stored["updateDate"] == doc["updateDate"]


@pytest.mark.parametrize(
    ("codec", "fragment"),
    [
        ("var x = 1;", "defines neither decodeUplink(input) nor Decoder(bytes, fPort)"),
        ("function decode(input) { return {data: {}}; }", "defines neither decodeUplink"),
        ("var decodeUplink = 5;", "defines neither decodeUplink"),
        ("throw new Error('no config');\nfunction decodeUplink() {}", "Error: no config"),
        ("while (true) {}\nfunction decodeUplink() {}", "time limit"),
        ("let x = 1;\nlet x = 2;\nfunction decodeUplink() {}", "(line 2, column 5)"),
    ],
)
def test_a_codec_that_cannot_decode_is_refused(tenant: Tenant, lake: Lake, codec: str, fragment: str) -> None:
    before = counts(lake)
    assert fragment in refused(create(tenant, cluster_data(codec)), "invalid_codec")
    assert counts(lake) == before


@pytest.mark.parametrize(
    "codec",
    [
        GOOD,
        "function Decoder(bytes, port) { return {n: bytes.length}; }",  # the old entry point
        "const decodeUplink = (input) => ({data: {}});",  # a script-scope binding, not a global property
    ],
)
def test_a_codec_that_loads_is_accepted(tenant: Tenant, codec: str) -> None:
    made = create(tenant, cluster_data(codec))
    assert made.status_code == 200, made.text
    assert made.json()["objs"][0]["data"]["meta"]["codec"] == codec


def test_other_unpackers_are_not_compiled(tenant: Tenant) -> None:
    assert create(tenant, cluster_data(None, unpacker="cayenne-lpp")).status_code == 200
    assert refused(create(tenant, cluster_data(None)), "invalid_cluster")  # javascript without a codec


# -- robots ---------------------------------------------------------------------------------------
def robot(tenant: Tenant, script: str) -> Any:
    body = {"name": "r", "data": {"script": script}}
    return tenant.client.post("/robo/io.codec.robot", json=body, headers=tenant.headers)


def test_a_robot_that_does_not_compile_is_refused_with_its_line_and_column(
    tenant: Tenant, lake: Lake
) -> None:
    script = "var lib = require('./libs/helpers');\nfunction main(text, auth) {\n  lib.print(;\n}\n"
    before = counts(lake)
    message = refused(robot(tenant, script), "invalid_robot")
    assert message == "data.script: syntax error: SyntaxError: Unexpected token ';' (line 3, column 13)"
    assert counts(lake) == before
    assert tenant.get("/robo/io.codec.robot").json()["objs"] == []


def test_a_robot_without_main_is_refused_and_one_requiring_the_helpers_is_kept(tenant: Tenant) -> None:
    assert "no main(text, auth)" in refused(robot(tenant, "var x = 1;"), "invalid_robot")
    script = "var lib = require('./libs/helpers');\nfunction main(text, auth) { lib.print('hi'); }"
    made = robot(tenant, script)
    assert made.status_code == 200, made.text


# -- test decode --------------------------------------------------------------------------------
def test_decode_a_stored_cluster_with_hex_and_base64(tenant: Tenant, lake: Lake) -> None:
    doc = create(tenant, cluster_data()).json()["objs"][0]
    path = f"/device/io.codec.packed/{doc['id']}/test"
    before = counts(lake)
    for body in (
        {"payloadHex": "00 d2", "fPort": 3, "recvTime": "2026-11-22T10:00:00Z"},
        {
            "payloadBase64": base64.b64encode(bytes([0, 0xD2])).decode(),
            "fPort": 3,
            "recvTime": "2026-11-22T10:00:00Z",
        },
        {"bytes": "00D2", "fPort": 3, "recvTime": "2026-11-22T10:00:00Z"},  # the older name of payloadHex
    ):
        answer = tenant.client.post(path, json=body, headers=tenant.headers)
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert set(result) == {
            "data",
            "warnings",
            "errors",
            "console",
            "ms",
        }  # the object itself, no envelope
        assert result["data"] == {"celsius": 21.0, "hour": 10}
        assert result["warnings"] == []
        assert result["errors"] == []
        assert result["console"] == ["port 3 bytes 2"]  # this decode's lines only
        assert isinstance(result["ms"], int | float)
        assert 0 <= result["ms"] < 5000
    assert counts(lake) == before


def test_decode_unsaved_cluster_data(tenant: Tenant, lake: Lake) -> None:
    before = counts(lake)
    body = {"data": cluster_data(), "payloadBase64": "ANI=", "fPort": 9, "recvTime": "2026-11-22T07:00:00Z"}
    answer = tenant.client.post("/device/test", json=body, headers=tenant.headers)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["data"] == {"celsius": 21.0, "hour": 7}
    assert result["warnings"] == ["port 9 is odd"]
    assert result["console"] == ["port 9 bytes 2"]
    lpp = {"data": cluster_data(None, unpacker="cayenne-lpp"), "payloadHex": "0167FFD7", "fPort": 1}
    decoded = tenant.client.post("/device/test", json=lpp, headers=tenant.headers).json()
    assert decoded["data"] == {"temperature_1": -4.1}
    assert decoded["console"] == []
    assert counts(lake) == before
    assert tenant.get("/device/test").json()["objs"] == []  # no cluster of recType `test` was made


def test_a_codec_that_fails_is_a_result_not_a_client_error(tenant: Tenant) -> None:
    throws = "function decodeUplink(input) { console.log('about to'); throw new Error('bad byte ' + input.bytes[0]); }"
    body = {"data": cluster_data(throws), "payloadHex": "07", "fPort": 1}
    answer = tenant.client.post("/device/test", json=body, headers=tenant.headers)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["data"] == {}
    assert len(result["errors"]) == 1
    assert "bad byte 7" in result["errors"][0]
    assert result["console"] == ["about to"]
    short = tenant.client.post(
        "/device/test", json={"data": cluster_data(), "payloadHex": "07", "fPort": 1}, headers=tenant.headers
    )
    assert short.status_code == 200
    assert short.json()["errors"] == ["too short"]
    loops = {"data": cluster_data("function decodeUplink() { for (;;) {} }"), "payloadHex": "07", "fPort": 1}
    slow = tenant.client.post("/device/test", json=loops, headers=tenant.headers)
    assert slow.status_code == 200
    assert "time limit" in slow.json()["errors"][0]


def test_a_broken_codec_is_refused_by_both_test_routes(tenant: Tenant, lake: Lake) -> None:
    body = {"data": cluster_data(BROKEN), "payloadHex": "00", "fPort": 1}
    message = refused(tenant.client.post("/device/test", json=body, headers=tenant.headers), "invalid_codec")
    assert "(line 4, column 1)" in message
    # One stored before codecs were checked: its test decode says what is wrong with it.
    doc = create(tenant, cluster_data()).json()["objs"][0]
    with lake.engine.begin() as conn:
        stored = conn.execute(select(documents.c.data).where(documents.c.id == doc["id"])).scalar_one()
        conn.execute(
            documents.update()
            .where(documents.c.id == doc["id"])
            .values(data=stored.replace("decodeUplink", "decode"))
        )
    path = f"/device/io.codec.packed/{doc['id']}/test"
    answer = tenant.client.post(path, json={"payloadHex": "00", "fPort": 1}, headers=tenant.headers)
    assert "defines neither decodeUplink" in refused(answer, "invalid_codec")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"payloadHex": "zz", "fPort": 1}, "payloadHex must be the payload in hex"),
        ({"payloadHex": "123", "fPort": 1}, "payloadHex must be the payload in hex"),
        ({"payloadBase64": "A*==", "fPort": 1}, "payloadBase64 must be the payload in base64"),
        ({"payloadBase64": "AAA", "fPort": 1}, "payloadBase64 must be the payload in base64"),
        ({"payloadHex": 12, "fPort": 1}, "payloadHex must be a string"),
        ({"fPort": 1}, "got neither"),
        ({"payloadHex": "00", "payloadBase64": "AA==", "fPort": 1}, "got payloadHex and payloadBase64"),
        ({"payloadHex": "00"}, "fPort must be a whole number"),
        ({"payloadHex": "00", "fPort": 256}, "fPort must be a whole number"),
        ({"payloadHex": "00", "fPort": -1}, "fPort must be a whole number"),
        ({"payloadHex": "00", "fPort": "2"}, "fPort must be a whole number"),
        ({"payloadHex": "00", "fPort": True}, "fPort must be a whole number"),
        ({"payloadHex": "00", "fPort": 1.5}, "fPort must be a whole number"),
        ({"payloadHex": "00", "fPort": 1, "recvTime": "soon"}, "recvTime"),
        ({"payloadHex": "00", "fPort": 1, "recvTime": {}}, "recvTime"),
    ],
)
def test_bad_test_input_is_400_on_both_routes(
    tenant: Tenant, lake: Lake, body: dict[str, Any], fragment: str
) -> None:
    doc = create(tenant, cluster_data()).json()["objs"][0]
    before = counts(lake)
    stored = tenant.client.post(
        f"/device/io.codec.packed/{doc['id']}/test", json=body, headers=tenant.headers
    )
    assert stored.status_code == 400, stored.text
    assert fragment in stored.json()["error"]["message"]
    unsaved = tenant.client.post(
        "/device/test", json={"data": cluster_data(), **body}, headers=tenant.headers
    )
    assert unsaved.status_code == 400, unsaved.text
    assert fragment in unsaved.json()["error"]["message"]
    assert counts(lake) == before


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{", "invalid_json"),
        (b"[1]", "invalid_body"),
        (b'{"payloadHex": "00", "fPort": 1}', "invalid_cluster"),  # no data
        (b'{"data": {"meta": {}}, "payloadHex": "00", "fPort": 1}', "invalid_cluster"),
        (b'{"data": {"meta": {"unpacker": "nope"}}, "payloadHex": "00", "fPort": 1}', "invalid_cluster"),
    ],
)
def test_bad_unsaved_test_bodies_are_400(tenant: Tenant, body: bytes, code: str) -> None:
    headers = {**tenant.headers, "Content-Type": "application/json"}
    answer = tenant.client.post("/device/test", content=body, headers=headers)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == code


def test_the_test_routes_need_device_read(tenant: Tenant) -> None:
    token = tenant.grant(scope="SHARE:READ")["access_token"]
    body = {"data": cluster_data(), "payloadHex": "00D2", "fPort": 1}
    answer = tenant.client.post("/device/test", json=body, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 403, answer.text
    assert tenant.client.post("/device/test", json=body).status_code == 401
