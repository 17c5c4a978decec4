"""The Things Network v2 HTTP integration (`hardware_serial`, `payload_raw`), still sent by old setups.

Its payload is base64 and its gateways are named `eui-<hex>` when they are packet forwarders.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sharelake.ingest import fields
from sharelake.ingest.registry import register
from sharelake.ingest.uplink import Gateway, Uplink

NETWORK = "ttn-v2"


@register(NETWORK)
def parse(body: Mapping[str, Any], query: Mapping[str, str]) -> Uplink | None:
    if "hardware_serial" not in body or "dev_id" not in body:
        return None
    problems: list[str] = []
    if "counter" not in body:
        problems.append("counter is missing, so the frame counter is unknown")
    metadata = body.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    return Uplink(
        network=NETWORK,
        dev_eui=fields.eui(body.get("hardware_serial"), "hardware_serial", problems),
        f_port=fields.f_port(body.get("port"), "port", problems),
        f_cnt=fields.integer(body.get("counter"), "counter", problems),
        payload=fields.base64_bytes(body.get("payload_raw"), "payload_raw", problems),
        # metadata.time is the network server's receive time; each gateway's own time may be missing.
        received_at=fields.iso_instant(metadata.get("time"), "metadata.time", problems),
        gateways=_gateways(metadata.get("gateways"), problems),
        decoded=fields.decoded(body.get("payload_fields")),
        problems=problems,
    )


def _gateways(listed: Any, problems: list[str]) -> list[Gateway]:
    gateways: list[Gateway] = []
    if not isinstance(listed, list):
        return gateways
    for index, gateway in enumerate(listed):
        if not isinstance(gateway, dict):
            continue
        where = f"metadata.gateways[{index}]"
        gtw_id = gateway.get("gtw_id")
        fields.add_gateway(
            gateways,
            fields.gateway_eui(gateway.get("gtw_eui")) or fields.gateway_eui(gtw_id) or fields.text(gtw_id),
            fields.number(gateway.get("rssi"), f"{where}.rssi", problems),
            fields.number(gateway.get("snr"), f"{where}.snr", problems),
        )
    return gateways
