"""ChirpStack HTTP integration events: v4 (`deviceInfo`, hex EUIs) and v3 (`devEUI`, EUIs possibly base64).

Both put the event type in the URL (`?event=up`); a body without it is typed by its shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from sharelake.ingest import fields
from sharelake.ingest.registry import register
from sharelake.ingest.uplink import Gateway, Uplink

NETWORK = "chirpstack"
NETWORK_V3 = "chirpstack-v3"

_EVENTS = frozenset({"up", "join", "ack", "txack", "status", "log", "location", "integration", "error"})
# Keys that only one event type has, to type a body that came without `?event=` (e.g. over MQTT).
_V4_SHAPES = (
    ("margin", "status"),
    ("acknowledged", "ack"),
    ("downlinkId", "txack"),
    ("level", "log"),
    ("integrationName", "integration"),
    ("location", "location"),
    ("devAddr", "join"),
)
_V3_SHAPES = (
    ("margin", "status"),
    ("acknowledged", "ack"),
    ("error", "error"),
    ("location", "location"),
    ("gatewayID", "txack"),
    ("devAddr", "join"),
)
_UP_KEYS = ("rxInfo", "fPort", "fCnt", "data")


def _event(body: Mapping[str, Any], query: Mapping[str, str], shapes: tuple[tuple[str, str], ...]) -> str:
    given = query.get("event")
    if given:
        return given if given in _EVENTS else fields.message_type(given)
    if any(key in body for key in _UP_KEYS):
        return "up"
    for key, event in shapes:
        if key in body:
            return event
    return "unknown"


@register(NETWORK)
def parse_v4(body: Mapping[str, Any], query: Mapping[str, str]) -> Uplink | None:
    info = body.get("deviceInfo")
    if not isinstance(info, dict):
        return None
    problems: list[str] = []
    dev_eui = fields.eui(info.get("devEui"), "deviceInfo.devEui", problems)
    received_at = fields.iso_instant(body.get("time"), "time", problems)
    event = _event(body, query, _V4_SHAPES)
    if event != "up":
        return Uplink(
            network=NETWORK, message_type=event, dev_eui=dev_eui, received_at=received_at, problems=problems
        )
    # ChirpStack v4 writes protobuf JSON that leaves out zero values: no fCnt is frame 0, no fPort is
    # port 0 and no data is an empty payload.
    raw = body.get("data")
    return Uplink(
        network=NETWORK,
        dev_eui=dev_eui,
        f_port=fields.f_port(body.get("fPort"), "fPort", problems, default=0),
        f_cnt=fields.integer(body.get("fCnt"), "fCnt", problems, default=0),
        payload=b"" if raw is None else fields.base64_bytes(raw, "data", problems),
        received_at=received_at if received_at is not None else _earliest_rx_time(body, "nsTime", problems),
        gateways=_gateways(body.get("rxInfo"), "gatewayId", "snr", problems, base64_ok=False),
        decoded=fields.decoded(body.get("object")),
        # deduplicationId names one delivery, not a join session; ChirpStack has no session id to offer.
        problems=problems,
    )


@register(NETWORK_V3)
def parse_v3(body: Mapping[str, Any], query: Mapping[str, str]) -> Uplink | None:
    if "devEUI" not in body or "applicationID" not in body:
        return None
    problems: list[str] = []
    # The protobuf JSON marshaler writes EUIs as base64 bytes, the legacy "JSON v3" one as hex.
    dev_eui = fields.eui(body.get("devEUI"), "devEUI", problems, base64_ok=True)
    event = _event(body, query, _V3_SHAPES)
    published = fields.iso_instant(body.get("publishedAt"), "publishedAt", problems)
    if event != "up":
        return Uplink(
            network=NETWORK_V3, message_type=event, dev_eui=dev_eui, received_at=published, problems=problems
        )
    f_cnt = fields.integer(body.get("fCnt"), "fCnt", problems)
    if "fCnt" not in body:
        problems.append("fCnt is missing, so the frame counter is unknown")
    raw = body.get("data")
    return Uplink(
        network=NETWORK_V3,
        dev_eui=dev_eui,
        f_port=fields.f_port(body.get("fPort"), "fPort", problems),
        f_cnt=f_cnt,
        payload=None if raw is None else fields.base64_bytes(raw, "data", problems),
        # v3 has no server time on the event before publishedAt (v3.11): the earliest gateway time.
        received_at=published if published is not None else _earliest_rx_time(body, "time", problems),
        gateways=_gateways(body.get("rxInfo"), "gatewayID", "loRaSNR", problems, base64_ok=True),
        decoded=_v3_object(body, problems),
        problems=problems,
    )


def _v3_object(body: Mapping[str, Any], problems: list[str]) -> Any:
    # The protobuf JSON marshaler sends the codec output as a JSON string, the legacy one as an object.
    text = body.get("objectJSON")
    if isinstance(text, str) and text:
        try:
            return fields.decoded(orjson.loads(text))
        except orjson.JSONDecodeError:
            problems.append(f"objectJSON {fields.shown(text)} is not JSON, so the decoded object is unknown")
            return None
    return fields.decoded(body.get("object"))


def _gateways(
    rx_info: Any, id_key: str, snr_key: str, problems: list[str], *, base64_ok: bool
) -> list[Gateway]:
    gateways: list[Gateway] = []
    if not isinstance(rx_info, list):
        return gateways
    for index, rx in enumerate(rx_info):
        if not isinstance(rx, dict):
            continue
        where = f"rxInfo[{index}]"
        raw_id = rx.get(id_key)
        gateway_id = fields.gateway_eui(raw_id)
        if gateway_id is None and raw_id is not None:
            gateway_id = fields.eui(raw_id, f"{where}.{id_key}", problems, base64_ok=base64_ok)
        fields.add_gateway(
            gateways,
            gateway_id,
            fields.number(rx.get("rssi"), f"{where}.rssi", problems),
            fields.number(rx.get(snr_key), f"{where}.{snr_key}", problems),
        )
    return gateways


def _earliest_rx_time(body: Mapping[str, Any], key: str, problems: list[str]) -> int | None:
    rx_info = body.get("rxInfo")
    if not isinstance(rx_info, list):
        return None
    times = [
        fields.iso_instant(rx.get(key), f"rxInfo[].{key}", problems)
        for rx in rx_info
        if isinstance(rx, dict) and rx.get(key) is not None
    ]
    known = [t for t in times if t is not None]
    return min(known) if known else None
