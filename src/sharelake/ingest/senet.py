"""Senet "Forward to HTTP" notifications (`devEui`, `pdu`, `seqno`, `joinId`) and the legacy capitalised form.

The payload is hex, and the frame counter restarts at each join: `joinId` tells the joins apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sharelake.ingest import fields
from sharelake.ingest.registry import register
from sharelake.ingest.uplink import Gateway, Uplink

NETWORK = "senet"


@register(NETWORK)
def parse(body: Mapping[str, Any], query: Mapping[str, str]) -> Uplink | None:
    if "pdu" in body and "devEui" in body:
        return _read({role: (name, body.get(name)) for role, name in _CURRENT.items()})
    if "PDU" in body and "EUI" in body:
        # The legacy form capitalised its names, not always alike (SeqNo, TXTime, GWEUI…): match them
        # without case, and keep the names as sent for the problem sentences.
        lowered = {str(key).lower(): (str(key), value) for key, value in body.items()}
        return _read({role: lowered.get(name, (name, None)) for role, name in _LEGACY.items()})
    return None


_CURRENT = {
    "device": "devEui",
    "payload": "pdu",
    "port": "port",
    "counter": "seqno",
    "time": "txtime",
    "gateway": "gwEui",
    "rssi": "rssi",
    "snr": "snr",
    "join": "joinId",
}
_LEGACY = {
    "device": "eui",
    "payload": "pdu",
    "port": "port",
    "counter": "seqno",
    "time": "txtime",
    "gateway": "gweui",
    "rssi": "rssi",
    "snr": "snr",
    "join": "joinid",
}


def _read(values: dict[str, tuple[str, Any]]) -> Uplink:
    problems: list[str] = []
    time_name, time_value = values["time"]
    if isinstance(time_value, int | float) and not isinstance(time_value, bool):
        received_at = fields.epoch_instant(time_value, time_name, problems)
    else:
        received_at = fields.iso_instant(time_value, time_name, problems)
    gateways: list[Gateway] = []
    gateway_name, raw_gateway = values["gateway"]
    gateway_id = fields.gateway_eui(raw_gateway)
    if gateway_id is None and raw_gateway is not None:
        problems.append(f"{gateway_name} {fields.shown(raw_gateway)} is not a gateway EUI")
    fields.add_gateway(
        gateways,
        gateway_id,
        fields.number(values["rssi"][1], values["rssi"][0], problems),
        fields.number(values["snr"][1], values["snr"][0], problems),
    )
    device_name, device = values["device"]
    port_name, port = values["port"]
    counter_name, counter = values["counter"]
    payload_name, payload = values["payload"]
    join_name, join_id = values["join"]
    return Uplink(
        network=NETWORK,
        dev_eui=fields.eui(device, device_name, problems),
        f_port=fields.f_port(port, port_name, problems),
        f_cnt=fields.integer(counter, counter_name, problems),
        payload=fields.hex_bytes(payload, payload_name, problems),
        received_at=received_at,
        gateways=gateways,
        session=_session(join_id, join_name, problems),
        problems=problems,
    )


def _session(value: Any, name: str, problems: list[str]) -> str | None:
    # joinId increments at each join and the frame counter restarts with it, so (joinId, seqno) names
    # a frame where seqno alone does not.
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    problems.append(f"{name} {fields.shown(value)} is not a join id, so frames of different joins may merge")
    return None
