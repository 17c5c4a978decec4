"""Actility ThingPark tunnel-interface messages (`{"DevEUI_uplink": {...}}` and the other `DevEUI_*` wrappers).

Numbers often arrive as strings, the payload is hex, and a gateway (LRR) is named by its ThingPark `Lrrid`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sharelake.ingest import fields
from sharelake.ingest.registry import register
from sharelake.ingest.uplink import Gateway, Uplink

NETWORK = "thingpark"
_UPLINK = "DevEUI_uplink"
_PREFIX = "DevEUI_"


@register(NETWORK)
def parse(body: Mapping[str, Any], query: Mapping[str, str]) -> Uplink | None:
    message = body.get(_UPLINK)
    if isinstance(message, dict):
        return _uplink(message)
    # Other messages (DevEUI_notification, DevEUI_downlink_Sent, DevEUI_location…) are one wrapper too.
    if len(body) != 1:
        return None
    key = next(iter(body))
    message = body[key]
    if not (isinstance(key, str) and key.startswith(_PREFIX) and isinstance(message, dict)):
        return None
    problems: list[str] = []
    return Uplink(
        network=NETWORK,
        message_type=fields.message_type(key[len(_PREFIX) :]),
        dev_eui=fields.eui(message.get("DevEUI"), f"{key}.DevEUI", problems),
        received_at=fields.iso_instant(message.get("Time"), f"{key}.Time", problems),
        problems=problems,
    )


def _uplink(message: dict[str, Any]) -> Uplink:
    problems: list[str] = []
    where = _UPLINK
    return Uplink(
        network=NETWORK,
        dev_eui=fields.eui(message.get("DevEUI"), f"{where}.DevEUI", problems),
        f_port=fields.f_port(message.get("FPort"), f"{where}.FPort", problems),
        f_cnt=fields.integer(message.get("FCntUp"), f"{where}.FCntUp", problems),
        payload=fields.hex_bytes(message.get("payload_hex"), f"{where}.payload_hex", problems),
        # Time is when the ThingPark core network received the frame, with its zone offset.
        received_at=fields.iso_instant(message.get("Time"), f"{where}.Time", problems),
        gateways=_gateways(message, problems),
        # ThingPark X drivers put their decoded output in `payload` beside the raw `payload_hex`.
        decoded=fields.decoded(message.get("payload")),
        problems=problems,
    )


def _gateways(message: dict[str, Any], problems: list[str]) -> list[Gateway]:
    gateways: list[Gateway] = []
    lrrs = message.get("Lrrs")
    listed = lrrs.get("Lrr") if isinstance(lrrs, dict) else None
    if isinstance(listed, dict):  # one LRR may come as an object rather than a list of one
        listed = [listed]
    if not isinstance(listed, list):
        # Without the Lrrs list, the best LRR is given flat on the message.
        listed = [message] if "Lrrid" in message else []
    for index, lrr in enumerate(listed):
        if not isinstance(lrr, dict):
            continue
        where = f"{_UPLINK}.Lrrs.Lrr[{index}]"
        fields.add_gateway(
            gateways,
            fields.text(lrr.get("Lrrid")),
            fields.number(lrr.get("LrrRSSI"), f"{where}.LrrRSSI", problems),
            fields.number(lrr.get("LrrSNR"), f"{where}.LrrSNR", problems),
        )
    return gateways
