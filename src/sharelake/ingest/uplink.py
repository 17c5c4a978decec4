"""The normalised uplink every network-server format is reduced to."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from sharelake.domain.clock import to_iso


@dataclass(slots=True)
class Gateway:
    id: str
    rssi: float | None = None
    snr: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "rssi": self.rssi, "snr": self.snr}


@dataclass(slots=True)
class Uplink:
    """What sharelake understood of a network server's message.

    `message_type` is `uplink` for device data; other messages (joins, downlink events, location
    fixes) keep their own type and are not de-duplicated. `session` tells join sessions apart where
    the format says (Senet's `joinId`): frame counters restart at each join.
    """

    network: str
    message_type: str = "uplink"
    dev_eui: str | None = None
    f_port: int | None = None
    f_cnt: int | None = None
    payload: bytes | None = None
    received_at: int | None = None  # epoch ms, the network server's receive time
    gateways: list[Gateway] = field(default_factory=list)
    decoded: Any = None
    session: str | None = None
    simulated: bool = False
    problems: list[str] = field(default_factory=list)

    def frame_key(self) -> str | None:
        """Identity of the radio frame, for de-duplication; None when it cannot be told."""
        if self.message_type != "uplink" or self.dev_eui is None or self.f_cnt is None:
            return None
        payload = self.payload.hex() if self.payload is not None else ""
        raw = f"{self.dev_eui}|{self.session or ''}|{self.f_cnt}|{self.f_port}|{payload}"
        return hashlib.sha256(raw.encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "network": self.network,
            "type": self.message_type,
            "devEui": self.dev_eui,
            "fPort": self.f_port,
            "fCnt": self.f_cnt,
            "payloadHex": self.payload.hex().upper() if self.payload is not None else None,
            "receivedAt": to_iso(self.received_at) if self.received_at is not None else None,
            "gateways": [g.to_json() for g in self.gateways],
        }
        if self.decoded is not None:
            out["decoded"] = self.decoded
        if self.session is not None:
            out["session"] = self.session
        if self.simulated:
            out["simulated"] = True
        if self.problems:
            out["problems"] = list(self.problems)
        return out
