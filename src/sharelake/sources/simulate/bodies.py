"""Each network server's JSON for a simulated frame: one builder per network, in `NETWORKS`.

Field names, encodings and omissions follow each network server's documented payloads (the fixtures in
tests/ingest/fixtures show the same shapes); a test parses every body with `sharelake.ingest.parse`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sharelake.sources.simulate.radio import (
    CHANNEL_INDEX,
    LPP,
    Frame,
    Gateway,
    Radio,
    Reception,
    b64,
    data_rate,
    hz,
    iso,
    keyed,
)

# A builder gets the world (for random ids), the frame, the gateways this delivery names, and whether it is
# the frame's second delivery.
Builder = Callable[[Radio, Frame, Sequence[Reception], bool], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Network:
    name: str
    build: Builder
    gateway_id: Callable[[Gateway], str]  # the id sharelake reports for a gateway in this format
    split: str = "multi"  # how gateways spread over deliveries: multi | single (Senet) | loriot
    query: str = ""  # what the network server appends to the URL
    bare_token: bool = False  # The Things Stack's webhook sends the token without "Bearer "


_APP = "sharelake-sim"


def _tts(radio: Radio, frame: Frame, heard: Sequence[Reception], repeat: bool) -> dict[str, Any]:
    device, at = frame.device, frame.received_at
    channel = CHANNEL_INDEX[frame.frequency]
    message: dict[str, Any] = {
        "session_key_id": device.session,
        "f_port": frame.f_port,
        "f_cnt": frame.f_cnt,
        "frm_payload": b64(frame.payload),
        "decoded_payload": keyed(frame),
        "rx_metadata": [
            {
                "gateway_ids": {"gateway_id": r.gateway.name, "eui": r.gateway.eui},
                "timestamp": (at * 1000 + i * 7919) & 0xFFFFFFFF,
                "rssi": r.rssi,
                "channel_rssi": r.rssi,
                "snr": r.snr,
                "channel_index": channel,
                "received_at": iso(at - 20, 9),
            }
            for i, r in enumerate(heard)
        ],
        "settings": {
            "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": frame.sf, "coding_rate": "4/5"}},
            "frequency": str(hz(frame)),
        },
        "received_at": iso(at, 9),
        "consumed_airtime": "0.061696s",
    }
    if not frame.f_cnt:
        del message["f_cnt"]  # The Things Stack leaves zero values out
    return {
        "end_device_ids": {
            "device_id": device.name,
            "application_ids": {"application_id": _APP},
            "dev_eui": device.dev_eui,
            "dev_addr": device.dev_addr,
        },
        "correlation_ids": [f"as:up:{radio.ulid()}", f"ns:uplink:{radio.ulid()}"],
        "received_at": iso(at + 15, 9),
        "uplink_message": message,
    }


def _chirpstack(radio: Radio, frame: Frame, heard: Sequence[Reception], repeat: bool) -> dict[str, Any]:
    device, at = frame.device, frame.received_at
    decoded: dict[str, dict[str, float]] = {}
    for channel, kind, value in frame.measures:
        decoded.setdefault(LPP[kind][3], {})[str(channel)] = value
    body: dict[str, Any] = {
        "deduplicationId": radio.uuid(),
        "time": iso(at, 9, "+00:00"),
        "deviceInfo": {
            "tenantId": radio.tenant,
            "tenantName": "ChirpStack",
            "applicationId": radio.application,
            "applicationName": _APP,
            "deviceProfileName": "Cayenne LPP",
            "deviceName": device.name,
            "devEui": device.dev_eui.lower(),
            "deviceClassEnabled": "CLASS_A",
            "tags": {},
        },
        "devAddr": device.dev_addr.lower(),
        "adr": True,
        "dr": 12 - frame.sf,
        "fCnt": frame.f_cnt,
        "fPort": frame.f_port,
        "confirmed": False,
        "data": b64(frame.payload),
        "object": decoded,
        "rxInfo": [
            {
                "gatewayId": r.gateway.eui.lower(),
                "uplinkId": radio.rng.getrandbits(32),
                "nsTime": iso(at - 30, 9, "+00:00"),
                "rssi": r.rssi,
                "snr": r.snr,
                "channel": CHANNEL_INDEX[frame.frequency],
                "context": b64(radio.rng.getrandbits(32).to_bytes(4, "big")),
                "metadata": {"region_config_id": "eu868", "region_common_name": "EU868"},
                "crcStatus": "CRC_OK",
            }
            for r in heard
        ],
        "txInfo": {
            "frequency": hz(frame),
            "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": frame.sf, "codeRate": "CR_4_5"}},
        },
    }
    if not frame.f_cnt:
        del body["fCnt"]  # protobuf JSON leaves zero values out
    return body


def _senet(radio: Radio, frame: Frame, heard: Sequence[Reception], repeat: bool) -> dict[str, Any]:
    (r,) = heard
    channel = CHANNEL_INDEX[frame.frequency]
    return {
        "ack": False,
        "channel": channel,
        "confirmed": False,
        "datarate": max(0, 10 - frame.sf),  # US915: DR0 is SF10 … DR3 is SF7
        "devClass": "A",
        "devEui": frame.device.dev_eui,
        "freq": round(902.3 + 0.2 * channel, 1),  # Senet runs US915
        "gwEui": r.gateway.eui,
        "joinId": frame.device.join_id,
        "msgType": "Data",
        "pdu": frame.payload.hex(),
        "port": frame.f_port,
        "rssi": r.rssi,
        "seqno": frame.f_cnt,
        "snr": r.snr,
        "txtime": iso(frame.received_at),
    }


def _ttn_v2(radio: Radio, frame: Frame, heard: Sequence[Reception], repeat: bool) -> dict[str, Any]:
    device, at = frame.device, frame.received_at
    return {
        "app_id": _APP,
        "dev_id": device.name,
        "hardware_serial": device.dev_eui,
        "port": frame.f_port,
        "counter": frame.f_cnt,
        "is_retry": repeat,
        "confirmed": False,
        "payload_raw": b64(frame.payload),
        "payload_fields": keyed(frame),
        "metadata": {
            "time": iso(at, 9),
            "frequency": frame.frequency,
            "modulation": "LORA",
            "data_rate": data_rate(frame),
            "coding_rate": "4/5",
            "gateways": [
                {
                    "gtw_id": f"eui-{r.gateway.eui.lower()}",
                    "timestamp": (at * 1000 + i * 7919) & 0xFFFFFFFF,
                    "time": iso(at - 20, 9),
                    "channel": CHANNEL_INDEX[frame.frequency],
                    "rssi": r.rssi,
                    "snr": r.snr,
                    "rf_chain": 0,
                }
                for i, r in enumerate(heard)
            ],
        },
    }


_HELIUM_UNITS = {0x67: "celcius", 0x68: "percent", 0x73: "hPa", 0x65: "lux"}


def _helium(radio: Radio, frame: Frame, heard: Sequence[Reception], repeat: bool) -> dict[str, Any]:
    device, at = frame.device, frame.received_at
    return {
        "app_eui": "6081F9" + device.dev_eui[6:],
        "dev_eui": device.dev_eui,
        "devaddr": device.dev_addr,
        "fcnt": frame.f_cnt,
        "hotspots": [
            {
                "channel": CHANNEL_INDEX[frame.frequency],
                "frequency": frame.frequency,
                "hold_time": 0,
                "id": r.gateway.hotspot,
                "name": r.gateway.hotspot_name,
                "reported_at": at + i,
                "rssi": r.rssi,
                "snr": r.snr,
                "spreading": data_rate(frame),
                "status": "success",
            }
            for i, r in enumerate(heard)
        ],
        "id": device.helium_id,
        "metadata": {"labels": [], "multi_buy": 1},
        "name": device.name,
        "payload": b64(frame.payload),
        "payload_size": len(frame.payload),
        "port": frame.f_port,
        "reported_at": at,
        "type": "uplink",
        "uuid": radio.uuid(),
        "decoded": {
            "payload": [
                {
                    "channel": channel,
                    "name": LPP[kind][4],
                    "type": kind,
                    "unit": _HELIUM_UNITS.get(kind, ""),
                    "value": value,
                }
                for channel, kind, value in frame.measures
            ],
            "status": "success",
        },
    }


def _loriot(radio: Radio, frame: Frame, heard: Sequence[Reception], repeat: bool) -> dict[str, Any]:
    at = frame.received_at
    body: dict[str, Any] = {
        "cmd": "gw" if repeat else "rx",
        "EUI": frame.device.dev_eui,
        "ts": at,
        "ack": False,
        "bat": 254,
        "fcnt": frame.f_cnt,
        "port": frame.f_port,
        "freq": hz(frame),
        "dr": f"SF{frame.sf} BW125 4/5",
        "data": frame.payload.hex(),
    }
    if repeat:
        body["gws"] = [
            {"rssi": r.rssi, "snr": r.snr, "ts": at + i, "gweui": r.gateway.eui, "ant": 0}
            for i, r in enumerate(heard)
        ]
    else:
        best = heard[0]
        body.update(rssi=best.rssi, snr=best.snr, gweui=best.gateway.eui)
    return body


def _esp(r: Reception) -> str:
    # ThingPark's estimated signal power: RSSI less the noise share that SNR reveals.
    return f"{r.rssi - 10 * math.log10(1 + 10 ** (-r.snr / 10)):.6f}"


def _thingpark(radio: Radio, frame: Frame, heard: Sequence[Reception], repeat: bool) -> dict[str, Any]:
    device, best = frame.device, heard[0]
    return {
        "DevEUI_uplink": {
            "Time": iso(frame.received_at, 3, "+00:00"),
            "DevEUI": device.dev_eui,
            "FPort": str(frame.f_port),
            "FCntUp": str(frame.f_cnt),
            "ADRbit": "1",
            "MType": "2",
            "FCntDn": str(device.f_cnt // 10),
            "payload_hex": frame.payload.hex(),
            "mic_hex": f"{radio.rng.getrandbits(32):08x}",
            "Lrcid": "00000201",
            "LrrRSSI": f"{best.rssi:.6f}",
            "LrrSNR": f"{best.snr:.6f}",
            "LrrESP": _esp(best),
            "SpFact": str(frame.sf),
            "SubBand": "G1",
            "Channel": f"LC{CHANNEL_INDEX[frame.frequency] + 1}",
            "DevLrrCnt": str(len(heard)),
            "Lrrid": best.gateway.lrrid,
            "Late": "0",
            "Lrrs": {
                "Lrr": [
                    {
                        "Lrrid": r.gateway.lrrid,
                        "Chain": "0",
                        "LrrRSSI": f"{r.rssi:.6f}",
                        "LrrSNR": f"{r.snr:.6f}",
                        "LrrESP": _esp(r),
                    }
                    for r in heard
                ]
            },
            "CustomerID": "1100000001",
            "CustomerData": {"alr": {"pro": "LORA/Generic", "ver": "1"}, "name": device.name},
            "ModelCfg": "0",
            "DevAddr": device.dev_addr,
            "TxPower": 14.0,
            "NbTrans": 1,
            "Frequency": frame.frequency,
            "DynamicClass": "A",
        }
    }


def _kerlink(radio: Radio, frame: Frame, heard: Sequence[Reception], repeat: bool) -> dict[str, Any]:
    device, at = frame.device, frame.received_at
    return {
        "id": f"{radio.rng.getrandbits(96):024x}",
        "endDevice": {"devEui": device.dev_eui, "devAddr": device.dev_addr, "cluster": {"id": 1}},
        "fPort": frame.f_port,
        "fCntDown": device.f_cnt // 10,
        "fCntUp": frame.f_cnt,
        "adr": True,
        "confirmed": False,
        "encrypted": False,
        "payload": frame.payload.hex(),
        "encodingType": "HEXA",
        "recvTime": at,
        "gwRecvTime": at - 8,
        "classB": False,
        "delayed": False,
        "ulFrequency": frame.frequency,
        "modulation": "LORA",
        "dataRate": data_rate(frame),
        "codingRate": "4/5",
        "gwCnt": len(heard),
        "gwInfo": [
            {
                "gwEui": r.gateway.eui,
                "rfRegion": "EU868",
                "rssi": r.rssi,
                "snr": r.snr,
                "channel": CHANNEL_INDEX[frame.frequency],
                "radioId": 0,
            }
            for r in heard
        ],
    }


def _eui(gateway: Gateway) -> str:
    return gateway.eui


NETWORKS: dict[str, Network] = {
    n.name: n
    for n in (
        Network("tts", _tts, _eui, bare_token=True),
        Network("senet", _senet, _eui, split="single"),
        Network("chirpstack", _chirpstack, _eui, query="event=up"),
        Network("ttn-v2", _ttn_v2, _eui),
        Network("helium", _helium, lambda g: g.hotspot),
        Network("loriot", _loriot, _eui, split="loriot"),
        Network("thingpark", _thingpark, lambda g: g.lrrid),
        Network("kerlink", _kerlink, _eui),
    )
}
