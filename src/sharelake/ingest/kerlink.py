"""Kerlink Wanesy Management Center (WMC) HTTP push of uplinks (`/dataUp`: `endDevice.devEui`, `gwInfo[]`).

The payload's encoding is named beside it (`encodingType`, HEXA by default); `recvTime` is epoch ms.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sharelake.ingest import fields
from sharelake.ingest.registry import register
from sharelake.ingest.uplink import Gateway, Uplink

NETWORK = "kerlink"
_UPLINK_KEYS = ("fCntUp", "gwInfo", "payload", "recvTime")


@register(NETWORK)
def parse(body: Mapping[str, Any], query: Mapping[str, str]) -> Uplink | None:
    device = body.get("endDevice")
    if not isinstance(device, dict):
        return None
    problems: list[str] = []
    dev_eui = fields.eui(device.get("devEui"), "endDevice.devEui", problems)
    if not any(key in body for key in _UPLINK_KEYS):
        # WMC pushes downlink status events (`/dataDownEvent`) to the same base URL.
        return Uplink(network=NETWORK, message_type="downlink_event", dev_eui=dev_eui, problems=problems)
    return Uplink(
        network=NETWORK,
        dev_eui=dev_eui,
        f_port=fields.f_port(body.get("fPort"), "fPort", problems),
        f_cnt=fields.integer(body.get("fCntUp"), "fCntUp", problems),
        payload=_payload(body, problems),
        received_at=fields.epoch_instant(body.get("recvTime"), "recvTime", problems),
        gateways=_gateways(body.get("gwInfo"), problems),
        problems=problems,
    )


def _payload(body: Mapping[str, Any], problems: list[str]) -> bytes | None:
    raw = body.get("payload")
    if raw is None:
        return None
    if body.get("encrypted") is True:
        problems.append("the payload is still encrypted (WMC holds no AppSKey for this device)")
        return None
    encoding = body.get("encodingType", body.get("encodedType"))
    # WMC writes HEXA unless the push is configured otherwise; the name says which, never the look.
    if encoding is None or (isinstance(encoding, str) and encoding.upper() in ("HEXA", "HEX")):
        return fields.hex_bytes(raw, "payload", problems)
    if isinstance(encoding, str) and encoding.upper() == "BASE64":
        return fields.base64_bytes(raw, "payload", problems)
    problems.append(f"encodingType {fields.shown(encoding)} is unknown, so the payload bytes are unknown")
    return None


def _gateways(listed: Any, problems: list[str]) -> list[Gateway]:
    gateways: list[Gateway] = []
    if not isinstance(listed, list):
        return gateways
    for index, gateway in enumerate(listed):
        if not isinstance(gateway, dict):
            continue
        where = f"gwInfo[{index}]"
        raw_id = gateway.get("gwEui")
        gateway_id = fields.gateway_eui(raw_id)
        if gateway_id is None and raw_id is not None:
            problems.append(f"{where}.gwEui {fields.shown(raw_id)} is not a gateway EUI")
        fields.add_gateway(
            gateways,
            gateway_id,
            fields.number(gateway.get("rssi"), f"{where}.rssi", problems),
            fields.number(gateway.get("snr"), f"{where}.snr", problems),
        )
    return gateways
