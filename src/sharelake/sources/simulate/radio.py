"""The simulated world: devices with Cayenne LPP sensors, gateways in range of them, and the frames they hear.

Nothing here knows a network server's JSON (that is `bodies`); everything random comes from one seeded RNG.
"""

from __future__ import annotations

import base64
import random
import struct
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_ADJECTIVES = ("icy", "fiery", "cool", "brave", "quiet", "sunny", "witty", "lucky", "tiny", "bold")  # fmt: skip
_ANIMALS = ("hippo", "hornet", "otter", "falcon", "lynx", "gecko", "heron", "bison", "koala", "newt")  # fmt: skip
CHANNELS = (868.1, 868.3, 868.5, 867.1, 867.3, 867.5, 867.7, 867.9)  # EU868 uplink channels, MHz
CHANNEL_INDEX = {f: i for i, f in enumerate(CHANNELS)}

# Cayenne LPP types used: (struct format, divisor, The Things Stack key, ChirpStack key, Helium name)
LPP = {
    0x00: (">B", 1, "digital_in", "digitalInput", "digital_in"),
    0x02: (">h", 100, "analog_in", "analogInput", "analog_in"),
    0x65: (">H", 1, "luminosity", "illuminanceSensor", "luminosity"),
    0x67: (">h", 10, "temperature", "temperatureSensor", "temperature"),
    0x68: (">B", 2, "relative_humidity", "humiditySensor", "humidity"),
    0x73: (">H", 10, "barometric_pressure", "barometer", "barometer"),
}


@dataclass(frozen=True, slots=True)
class Gateway:
    eui: str  # 16 upper-case hex digits
    name: str  # a network's own gateway id (The Things Stack)
    hotspot: str  # Helium hotspot address
    hotspot_name: str
    lrrid: str  # ThingPark base-station id


@dataclass(frozen=True, slots=True)
class Reception:
    gateway: Gateway
    rssi: int
    snr: float


@dataclass(slots=True)
class Device:
    dev_eui: str
    dev_addr: str
    name: str
    kind: int  # 0 climate, 1 air, 2 door
    f_cnt: int  # the next frame's counter
    session: str  # The Things Stack's session_key_id
    join_id: int  # Senet's joinId
    helium_id: str  # Helium Console's device id
    links: list[tuple[Gateway, float]]  # gateways in range and their mean RSSI, nearest first
    temperature: float = 21.0
    humidity: float = 45.0
    pressure: float = 1013.0
    battery: float = 3.6
    door: int = 0


@dataclass(frozen=True, slots=True)
class Frame:
    serial: int
    device: Device
    f_port: int
    f_cnt: int
    payload: bytes
    measures: tuple[tuple[int, int, float], ...]  # (channel, LPP type, value as a decoder reads it)
    received_at: int  # epoch ms
    frequency: float
    sf: int
    receptions: tuple[Reception, ...]  # strongest first


def lpp(fields: Sequence[tuple[int, int, int]]) -> tuple[bytes, tuple[tuple[int, int, float], ...]]:
    """Encode (channel, type, raw integer) fields; the values are what a decoder will read back."""
    out = bytearray()
    measures = []
    for channel, kind, raw in fields:
        fmt, divisor, *_ = LPP[kind]
        out += bytes((channel, kind)) + struct.pack(fmt, raw)
        measures.append((channel, kind, raw if divisor == 1 else raw / divisor))
    return bytes(out), tuple(measures)


def _clamp(value: float, low: float, high: float) -> float:
    return low if value < low else high if value > high else value


class Radio:
    """Devices and gateways; `frame()` is the next device's next transmission (devices take turns)."""

    def __init__(
        self, devices: int, gateways: int, *, seed: int | None, clock: Callable[[], float] = time.time
    ) -> None:
        if devices < 1 or gateways < 1:
            raise ValueError("devices and gateways must be at least 1")
        self.rng = random.Random(seed)  # noqa: S311 - simulation, not cryptography
        self.clock = clock
        self.tenant = self.uuid()
        self.application = self.uuid()
        self.gateways = [self._gateway(i) for i in range(gateways)]
        self.devices = [self._device(i) for i in range(devices)]
        self.rng.shuffle(self.devices)
        self._turn = 0
        self._serial = 0

    def hex(self, nbytes: int) -> str:
        return self.rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex().upper()

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def ulid(self) -> str:
        # 26 characters like The Things Stack's ULIDs (hex digits: cheaper, and nobody parses them).
        return f"{self.rng.getrandbits(104):026X}"

    def _gateway(self, index: int) -> Gateway:
        rng = self.rng
        return Gateway(
            eui="B827EBFFFE" + self.hex(3),
            name=f"sim-gw-{index + 1}",
            hotspot="11" + "".join(rng.choice(_B58) for _ in range(49)),
            hotspot_name=f"{rng.choice(_ADJECTIVES)}-{rng.choice(_ADJECTIVES)}-{rng.choice(_ANIMALS)}",
            lrrid="FF01" + self.hex(2),
        )

    def _device(self, index: int) -> Device:
        rng = self.rng
        in_range = rng.sample(self.gateways, rng.randint(1, len(self.gateways)))
        mean = rng.uniform(-112, -65)
        links = []
        for gateway in in_range:
            links.append((gateway, mean))
            mean -= rng.uniform(3, 20)
        return Device(
            dev_eui="70B3D57ED0" + self.hex(3),
            dev_addr="26" + self.hex(3),
            name=f"sim-{index + 1}",
            kind=index % 3,
            # Most devices joined long ago; a few just did, and some formats leave out a zero f_cnt.
            f_cnt=0 if index % 7 == 3 else rng.randrange(1, 5000),
            session=base64.b64encode(rng.getrandbits(128).to_bytes(16, "big")).decode(),
            join_id=rng.randrange(1, 50),
            helium_id=self.uuid(),
            links=links,
            temperature=rng.uniform(15, 26),
            humidity=rng.uniform(30, 60),
            pressure=rng.uniform(995, 1025),
            battery=rng.uniform(3.3, 3.65),
        )

    def frame(self) -> Frame:
        rng = self.rng
        device = self.devices[self._turn % len(self.devices)]
        self._turn += 1
        payload, measures = lpp(self._read_sensors(device))
        receptions = []
        for index, (gateway, mean) in enumerate(device.links):
            if index and rng.random() < 0.1:
                continue  # a farther gateway missed this one; the nearest always hears it
            rssi = round(mean + rng.gauss(0, 2.5))
            snr = round(_clamp((rssi + 112) * 0.4 + rng.gauss(0, 1), -20, 12.5), 1)
            receptions.append(Reception(gateway, rssi, snr))
        receptions.sort(key=lambda r: -r.rssi)
        best = receptions[0].rssi
        self._serial += 1
        frame = Frame(
            serial=self._serial,
            device=device,
            f_port=1 + device.kind,
            f_cnt=device.f_cnt,
            payload=payload,
            measures=measures,
            received_at=int(self.clock() * 1000),
            frequency=rng.choice(CHANNELS),
            sf=7 if best > -100 else 9 if best > -110 else 11,  # ADR: weaker links get slower rates
            receptions=tuple(receptions),
        )
        device.f_cnt = (device.f_cnt + 1) & 0xFFFFFFFF
        return frame

    def _read_sensors(self, device: Device) -> list[tuple[int, int, int]]:
        """The device's next readings as Cayenne LPP (channel, type, raw) fields; values drift slowly."""
        rng = self.rng
        device.temperature = _clamp(device.temperature + rng.gauss(0, 0.2), -20, 45)
        device.humidity = _clamp(device.humidity + rng.gauss(0, 1.0), 5, 99)
        device.battery = max(2.9, device.battery - rng.uniform(0, 0.001))
        temperature = round(device.temperature * 10)
        battery = round(device.battery * 100)
        if device.kind == 0:
            return [(1, 0x67, temperature), (2, 0x68, round(device.humidity * 2)), (3, 0x02, battery)]
        if device.kind == 1:
            device.pressure = _clamp(device.pressure + rng.gauss(0, 0.3), 950, 1060)
            return [
                (1, 0x67, temperature),
                (2, 0x68, round(device.humidity * 2)),
                (4, 0x73, round(device.pressure * 10)),
                (5, 0x65, int(abs(rng.gauss(300, 150)))),
                (3, 0x02, battery),
            ]
        if rng.random() < 0.2:
            device.door ^= 1
        return [(1, 0x00, device.door), (2, 0x67, temperature), (3, 0x02, battery)]


_seconds: tuple[int, str] = (-1, "")


def iso(ms: int, digits: int = 3, zone: str = "Z") -> str:
    """ISO-8601 UTC; `digits` > 3 pads the fraction as nanosecond clocks print it."""
    global _seconds
    second = ms // 1000
    if _seconds[0] != second:  # most calls fall in the same second as the last: format it once
        _seconds = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S."))
    return _seconds[1] + f"{ms % 1000:03d}" + "0" * (digits - 3) + zone


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def keyed(frame: Frame) -> dict[str, float]:
    """The Things Stack's (and TTN v2's) Cayenne LPP formatter output: `temperature_1` and so on."""
    return {f"{LPP[kind][2]}_{channel}": value for channel, kind, value in frame.measures}


def data_rate(frame: Frame) -> str:
    return f"SF{frame.sf}BW125"


def hz(frame: Frame) -> int:
    return round(frame.frequency * 1_000_000)
