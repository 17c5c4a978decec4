"""Helium Console HTTP integration (`dev_eui`, `fcnt`, `payload` base64, `hotspots[]`).

Hotspots have no EUI in this format: a gateway is named by its Helium hotspot address.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sharelake.ingest import fields
from sharelake.ingest.registry import register
from sharelake.ingest.uplink import Gateway, Uplink

NETWORK = "helium"


@register(NETWORK)
def parse(body: Mapping[str, Any], query: Mapping[str, str]) -> Uplink | None:
    if "dev_eui" not in body or ("hotspots" not in body and "reported_at" not in body):
        return None
    problems: list[str] = []
    dev_eui = fields.eui(body.get("dev_eui"), "dev_eui", problems)
    received_at = fields.epoch_instant(body.get("reported_at"), "reported_at", problems)
    kind = body.get("type")
    if kind is not None and kind != "uplink":
        # Console integrations can also forward joins and downlink acks, tagged with `type`.
        return Uplink(
            network=NETWORK,
            message_type=fields.message_type(kind),
            dev_eui=dev_eui,
            received_at=received_at,
            problems=problems,
        )
    return Uplink(
        network=NETWORK,
        dev_eui=dev_eui,
        f_port=fields.f_port(body.get("port"), "port", problems),
        f_cnt=fields.integer(body.get("fcnt"), "fcnt", problems),
        payload=fields.base64_bytes(body.get("payload"), "payload", problems),
        received_at=received_at,
        gateways=_gateways(body.get("hotspots"), problems),
        decoded=_decoded(body.get("decoded")),
        problems=problems,
    )


def _decoded(value: Any) -> Any:
    # A Console function decoder's output arrives as {"payload": {...}, "status": "success"}.
    if isinstance(value, dict) and "payload" in value:
        return fields.decoded(value.get("payload"))
    return fields.decoded(value)


def _gateways(hotspots: Any, problems: list[str]) -> list[Gateway]:
    gateways: list[Gateway] = []
    if not isinstance(hotspots, list):
        return gateways
    for index, hotspot in enumerate(hotspots):
        if not isinstance(hotspot, dict):
            continue
        where = f"hotspots[{index}]"
        fields.add_gateway(
            gateways,
            fields.text(hotspot.get("id")) or fields.text(hotspot.get("name")),
            fields.number(hotspot.get("rssi"), f"{where}.rssi", problems),
            fields.number(hotspot.get("snr"), f"{where}.snr", problems),
        )
    return gateways
