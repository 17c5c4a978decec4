"""Detection by shape: each documented body is claimed by its own format and by no other, generic JSON by
none, and no body of a known shape makes a parser raise, however its fields are broken."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from sharelake import ingest
from sharelake.ingest import fields
from tests.ingest.vectors import PARSERS, all_fixtures, load

GENERIC: list[dict[str, Any]] = [
    {},
    {"hello": "world"},
    {"temperature": 21.5},
    {"data": "abc"},
    {"Test": "Data"},
    {"port": 1, "data": "0102"},
    {"payload": "AQID", "port": 2},
    {"devEui": "0004A30B001C0530", "temperature": 21.5},
    {"dev_eui": "0004A30B001C0530", "fcnt": 3},
    {"EUI": "0102030405060708", "value": 1},
    {"cmd": "reboot"},
    {"event": "up", "data": "qg=="},
    {"DevEUI_uplink": "not an object"},
    {"DevEUI": "0018B20000000B20", "FPort": "1"},
    {"end_device_ids": "dev1"},
    {"deviceInfo": ["a"]},
    {"endDevice": "x", "fPort": 2},
    {"sensor": {"DevEUI_uplink": {}}, "other": 1},
]


def owner(fixture: str) -> str:
    name = fixture.split("/")[-1]
    for network in ("chirpstack_v3", "chirpstack_v4", "ttn_v2"):
        if name.startswith(network):
            return {"chirpstack_v3": "chirpstack-v3", "chirpstack_v4": "chirpstack", "ttn_v2": "ttn-v2"}[
                network
            ]
    return name.split("_")[0].removesuffix(".json")


def test_registry_order_puts_wrapped_shapes_first() -> None:
    assert ingest.formats() == [
        "thingpark",
        "tts",
        "chirpstack",
        "chirpstack-v3",
        "kerlink",
        "ttn-v2",
        "helium",
        "loriot",
        "senet",
    ]


@pytest.mark.parametrize("fixture", all_fixtures())
def test_each_fixture_is_claimed_by_its_own_format_only(fixture: str) -> None:
    body = load(fixture)
    claimed = [name for name, parser in PARSERS.items() if parser(body, {}) is not None]
    assert claimed == [owner(fixture)]


@pytest.mark.parametrize("body", GENERIC, ids=[str(b)[:40] for b in GENERIC])
def test_generic_json_is_not_a_network_format(body: dict[str, Any]) -> None:
    assert ingest.parse(body, {}) is None
    assert ingest.parse(body, {"event": "up"}) is None


ODD_VALUES: list[Any] = [None, "", "zz", -1, 1.5, True, [], {}, [1, {"a": None}], "9" * 40, 10**30]


def leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into a JSON value, containers included (replacing a container breaks its shape too)."""
    if path:
        yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from leaves(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from leaves(child, (*path, index))


def replaced(body: dict[str, Any], path: tuple[Any, ...], new: Any) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    target: Any = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return changed


@pytest.mark.parametrize("fixture", all_fixtures())
def test_broken_fields_never_raise(fixture: str) -> None:
    body = load(fixture)
    parser = PARSERS[owner(fixture)]
    for path in leaves(body):
        for odd in ODD_VALUES:
            broken = replaced(body, path, odd)
            for query in ({}, {"event": "up"}):
                result = parser(broken, query)
                if result is not None:
                    # Whatever was read is of the normalised kinds, never garbage passed through.
                    eui = result.dev_eui
                    assert eui is None or (len(eui) == 16 and fields.is_hex(eui) and eui == eui.upper())
                    assert result.f_port is None or 0 <= result.f_port <= 255
                    assert result.f_cnt is None or 0 <= result.f_cnt < 2**32
                    assert result.payload is None or isinstance(result.payload, bytes)
                    assert all(isinstance(g.id, str) and g.id for g in result.gateways)
                    assert all(isinstance(p, str) and p for p in result.problems)
                    result.to_json()
                    result.frame_key()
