"""LORIOT application output messages: `cmd: "rx"` (uplink), `cmd: "gw"` (the same uplink with `gws[]`), others.

The payload is hex; `ts` is the server time in epoch milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sharelake.ingest import fields
from sharelake.ingest.registry import register
from sharelake.ingest.uplink import Gateway, Uplink

NETWORK = "loriot"
_UPLINKS = frozenset({"rx", "gw"})


@register(NETWORK)
def parse(body: Mapping[str, Any], query: Mapping[str, str]) -> Uplink | None:
    cmd = body.get("cmd")
    if not isinstance(cmd, str) or "EUI" not in body:
        return None
    problems: list[str] = []
    dev_eui = fields.eui(body.get("EUI"), "EUI", problems)
    received_at = fields.epoch_instant(body.get("ts"), "ts", problems)
    if cmd not in _UPLINKS:
        return Uplink(
            network=NETWORK,
            message_type=fields.message_type(cmd),
            dev_eui=dev_eui,
            received_at=received_at,
            problems=problems,
        )
    payload = fields.hex_bytes(body.get("data"), "data", problems)
    if payload is None and "data" not in body and "encdata" in body:
        # LORIOT sends `encdata` when it holds no AppSKey for the device: the bytes are still encrypted.
        problems.append("only encdata was sent: the payload is encrypted (give LORIOT the AppSKey)")
    # `gw` messages repeat the frame of an `rx` with every gateway that heard it: the same frame key, so
    # the second one merges its gateways into the first record.
    return Uplink(
        network=NETWORK,
        dev_eui=dev_eui,
        f_port=fields.f_port(body.get("port"), "port", problems),
        f_cnt=fields.integer(body.get("fcnt"), "fcnt", problems),
        payload=payload,
        received_at=received_at,
        gateways=_gateways(body, problems),
        decoded=fields.decoded(body.get("decoded")),
        problems=problems,
    )


def _gateways(body: Mapping[str, Any], problems: list[str]) -> list[Gateway]:
    gateways: list[Gateway] = []
    listed = body.get("gws")
    if not isinstance(listed, list):
        # At radio verbosity an `rx` carries the best gateway's figures flat.
        listed = [body] if "gweui" in body else []
    for index, gateway in enumerate(listed):
        if not isinstance(gateway, dict):
            continue
        where = f"gws[{index}]"
        raw_id = gateway.get("gweui")
        gateway_id = fields.gateway_eui(raw_id)
        if gateway_id is None and raw_id is not None:
            problems.append(f"{where}.gweui {fields.shown(raw_id)} is not a gateway EUI")
        fields.add_gateway(
            gateways,
            gateway_id,
            fields.number(gateway.get("rssi"), f"{where}.rssi", problems),
            fields.number(gateway.get("snr"), f"{where}.snr", problems),
        )
    return gateways
