"""Dragino LHT65/LHT65N temperature and humidity sensor: the periodic uplink and the datalog reply.

Layout from Dragino's LHT65 user manual §2.4 (fPort 2) and the LHT65N datalog format (fPort 3); field names
follow Dragino's own decoder so dashboards built on it keep working.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sharelake.decoders.registry import DecodeResult, register

_UPLINK_PORT = 2
_DATALOG_PORT = 3
_ENTRY = 11  # one datalog record
_NO_PROBE = 0x7FFF  # what the DS18B20 channel reads with no probe plugged in

# Dragino's decoder names the probe in `Ext_sensor` for 0 and 1, and the work mode in `Work_mode` otherwise.
_EXT_SENSORS = {0: "No external sensor", 1: "Temperature Sensor"}
_WORK_MODES = {
    4: "Interrupt Sensor send",
    5: "Illumination Sensor",
    6: "ADC Sensor",
    7: "Interrupt Sensor count",
}


def _s16(payload: bytes, at: int) -> int:
    return int.from_bytes(payload[at : at + 2], "big", signed=True)


def _u16(payload: bytes, at: int) -> int:
    return int.from_bytes(payload[at : at + 2], "big")


def _external(ext: int, payload: bytes, at: int, data: dict[str, Any], warnings: list[str]) -> None:
    """The four bytes after the Ext byte; their meaning depends on the probe type."""
    if ext == 1:
        raw = _s16(payload, at)
        data["TempC_DS"] = raw / 100
        if raw == _NO_PROBE:
            warnings.append("external temperature probe not connected (reads 327.67)")
    elif ext == 4:
        data["Exti_pin_level"] = "High" if payload[at] else "Low"
        data["Exti_status"] = "True" if payload[at + 1] else "False"
    elif ext == 5:
        data["ILL_lx"] = _u16(payload, at)
    elif ext == 6:
        data["ADC_V"] = _u16(payload, at) / 1000
    elif ext == 7:
        data["Exit_count"] = _u16(payload, at)  # sic: Dragino's field name
    elif ext != 0:
        warnings.append(f"external sensor type {ext} is not decoded")


def _uplink(payload: bytes) -> DecodeResult:
    if len(payload) < 7:
        return DecodeResult.failed(f"payload of {len(payload)} bytes is too short: the LHT65 sends 11")
    bat = _u16(payload, 0)
    ext = payload[6] & 0x0F
    data: dict[str, Any] = {
        "BatV": (bat & 0x3FFF) / 1000,
        "Bat_status": bat >> 14,  # 0 ultra low (<= 2.50 V), 1 low, 2 OK, 3 good (>= 2.65 V)
        "TempC_SHT": _s16(payload, 2) / 100,
        "Hum_SHT": (_u16(payload, 4) & 0x0FFF) / 10,  # the top bits are not humidity
    }
    if ext in _WORK_MODES:
        data["Work_mode"] = _WORK_MODES[ext]
    else:
        data["Ext_sensor"] = _EXT_SENSORS.get(ext, f"Unknown ({ext})")
    warnings: list[str] = []
    if ext != 0:
        if len(payload) < 11:
            return DecodeResult.failed(f"payload of {len(payload)} bytes has no room for its external sensor")
        _external(ext, payload, 7, data, warnings)
    return DecodeResult(data=data, warnings=warnings)


def _datalog(payload: bytes) -> DecodeResult:
    if not payload or len(payload) % _ENTRY:
        return DecodeResult.failed(
            f"a datalog reply is whole {_ENTRY}-byte records; got {len(payload)} bytes"
        )
    entries: list[dict[str, Any]] = []
    warnings: list[str] = []
    for at in range(0, len(payload), _ENTRY):
        record = payload[at : at + _ENTRY]
        if not any(record):
            continue  # the device pads a reply with zeros when it has nothing for the asked period
        flags = record[6]
        entry: dict[str, Any] = {
            "TempC_SHT": _s16(record, 2) / 100,
            "Hum_SHT": (_u16(record, 4) & 0x0FFF) / 10,
            "Poll_message_flag": (flags >> 6) & 0x01,
            "Ext": flags & 0x0F,
            "Timestamp": int.from_bytes(record[7:11], "big"),
        }
        if flags & 0x0F == 1:
            entry["TempC_DS"] = _s16(record, 0) / 100
        entries.append(entry)
    return DecodeResult(data={"datalog": entries}, warnings=warnings)


@register("dragino-lht65")
def decode(payload: bytes, f_port: int, recv_time: datetime) -> DecodeResult:
    if f_port == _UPLINK_PORT:
        return _uplink(payload)
    if f_port == _DATALOG_PORT:
        return _datalog(payload)
    return DecodeResult.failed(
        f"unsupported fPort {f_port}: the LHT65 reports on fPort 2 (and 3 for datalog)"
    )
