"""The Things Stack (v3, The Things Network and Industries) webhook and MQTT messages.

One webhook URL can receive every message type; only uplinks (`uplink_message`, `uplink_normalized`) get a frame key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sharelake.ingest import fields
from sharelake.ingest.registry import register
from sharelake.ingest.uplink import Gateway, Uplink

NETWORK = "tts"

# `uplink_normalized` carries the same frame as `uplink_message` (one per normalized measurement), so it
# is an uplink too and de-duplicates into the first record.
_UPLINKS = ("uplink_message", "uplink_normalized")
_OTHERS = (
    "join_accept",
    "downlink_ack",
    "downlink_nack",
    "downlink_sent",
    "downlink_failed",
    "downlink_queued",
    "downlink_queue_invalidated",
    "location_solved",
    "service_data",
)


@register(NETWORK)
def parse(body: Mapping[str, Any], query: Mapping[str, str]) -> Uplink | None:
    ids = body.get("end_device_ids")
    if not isinstance(ids, dict):
        return None
    problems: list[str] = []
    dev_eui = fields.eui(ids.get("dev_eui"), "end_device_ids.dev_eui", problems)
    simulated = body.get("simulated") is True
    for key in _UPLINKS:
        message = body.get(key)
        if isinstance(message, dict):
            return _uplink(body, key, message, dev_eui, simulated, problems)
    for key in _OTHERS:
        message = body.get(key)
        if isinstance(message, dict):
            return _other(body, key, message, dev_eui, simulated, problems)
    return Uplink(
        network=NETWORK,
        message_type="unknown",
        dev_eui=dev_eui,
        received_at=fields.iso_instant(body.get("received_at"), "received_at", problems),
        simulated=simulated,
        problems=problems,
    )


def _uplink(
    body: Mapping[str, Any],
    key: str,
    message: dict[str, Any],
    dev_eui: str | None,
    simulated: bool,
    problems: list[str],
) -> Uplink:
    # The Things Stack omits zero values: no f_cnt is frame 0 (the first uplink after a join), no f_port
    # is port 0 (MAC commands only) and no frm_payload is an empty payload.
    f_port = fields.f_port(message.get("f_port"), f"{key}.f_port", problems, default=0)
    f_cnt = fields.integer(message.get("f_cnt"), f"{key}.f_cnt", problems, default=0)
    raw = message.get("frm_payload")
    payload = b"" if raw is None else fields.base64_bytes(raw, f"{key}.frm_payload", problems)
    if payload and isinstance(message.get("app_s_key"), dict):
        problems.append(
            "the payload is still encrypted (the device skips payload crypto and the AppSKey came with it)"
        )
        payload = None
    received = message.get("received_at")
    if received is None:
        received = body.get("received_at")
    own = message.get("decoded_payload" if key == "uplink_message" else "normalized_payload")
    session = message.get("session_key_id")
    return Uplink(
        network=NETWORK,
        dev_eui=dev_eui,
        f_port=f_port,
        f_cnt=f_cnt,
        payload=payload,
        received_at=fields.iso_instant(received, f"{key}.received_at", problems),
        gateways=_gateways(message.get("rx_metadata"), key, problems),
        decoded=fields.decoded(own),
        # The Join Server's id of the session keys: the Application Server copies it into both the
        # uplink_message and every uplink_normalized of a frame, and it changes at each join.
        session=session if isinstance(session, str) and session else None,
        simulated=simulated,
        problems=problems,
    )


def _other(
    body: Mapping[str, Any],
    key: str,
    message: dict[str, Any],
    dev_eui: str | None,
    simulated: bool,
    problems: list[str],
) -> Uplink:
    received = body.get("received_at")
    if received is None:
        received = message.get("received_at")
    session = message.get("session_key_id") if key == "join_accept" else None
    return Uplink(
        network=NETWORK,
        message_type=key,
        dev_eui=dev_eui,
        received_at=fields.iso_instant(received, "received_at", problems),
        session=session if isinstance(session, str) and session else None,
        simulated=simulated,
        problems=problems,
    )


def _gateways(rx_metadata: Any, key: str, problems: list[str]) -> list[Gateway]:
    gateways: list[Gateway] = []
    if not isinstance(rx_metadata, list):
        return gateways
    for index, rx in enumerate(rx_metadata):
        if not isinstance(rx, dict):
            continue
        where = f"{key}.rx_metadata[{index}]"
        ids = rx.get("gateway_ids")
        ids = ids if isinstance(ids, dict) else {}
        gateway_id = fields.gateway_eui(ids.get("eui")) or fields.gateway_eui(ids.get("gateway_id"))
        if gateway_id is None:
            # Uplinks from other networks arrive through Packet Broker under the id "packetbroker";
            # the forwarding gateway's EUI, when the other network shares it, is the real identity.
            forwarder = rx.get("packet_broker")
            if isinstance(forwarder, dict):
                gateway_id = fields.gateway_eui(forwarder.get("forwarder_gateway_eui"))
        if gateway_id is None:
            gateway_id = fields.text(ids.get("gateway_id"))
        rssi = rx.get("rssi")
        if rssi is None:
            rssi = rx.get("channel_rssi")
        fields.add_gateway(
            gateways,
            gateway_id,
            fields.number(rssi, f"{where}.rssi", problems),
            fields.number(rx.get("snr"), f"{where}.snr", problems),
        )
    return gateways
