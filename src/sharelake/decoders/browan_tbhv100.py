"""Browan TBHV100/TBHV110 (Tabs Healthy Home IAQ sensor): eCO2, VOC, IAQ, temperature, humidity, battery.

Layout from Browan's TBHV110 manual §4.1.2 (fPort 103, 11 bytes, multi-byte values little-endian).
"""

from __future__ import annotations

from datetime import datetime

from sharelake.decoders.registry import DecodeResult, register

_PORT = 103
_SIZE = 11


@register("browan-tbhv100")
@register("browan-tbhv110")
def decode(payload: bytes, f_port: int, recv_time: datetime) -> DecodeResult:
    if f_port != _PORT:
        return DecodeResult.failed(f"unsupported fPort {f_port}: the TBHV100 reports on fPort {_PORT}")
    if len(payload) < _SIZE:
        return DecodeResult.failed(f"payload of {len(payload)} bytes is too short: the TBHV100 sends {_SIZE}")
    status = payload[0]
    data = {
        "status": status & 0x01,  # 1: a change triggered this uplink, 0: keep-alive
        "temperatureChanged": (status >> 4) & 0x01,
        "humidityChanged": (status >> 5) & 0x01,
        "iaqChanged": (status >> 6) & 0x01,
        "battery": (25 + (payload[1] & 0x0F)) / 10,
        "temperatureBoard": (payload[2] & 0x7F) - 32,
        "humidity": payload[3] & 0x7F,
        "eco2": int.from_bytes(payload[4:6], "little"),
        "voc": int.from_bytes(payload[6:8], "little"),
        "iaq": int.from_bytes(payload[8:10], "little"),
        "temperature": (payload[10] & 0x7F) - 32,
    }
    warnings = [f"{len(payload) - _SIZE} trailing bytes ignored"] if len(payload) > _SIZE else []
    return DecodeResult(data=data, warnings=warnings)
