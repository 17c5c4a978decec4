"""Realistic LoRaWAN uplinks in each network server's own JSON, for demos, tests and load generation.

`uplinks("tts", devices=10)` yields request bodies (bytes) without end; `deliveries(…)` yields each with what
sharelake should make of it (device, frame counter, payload, gateways). Payloads are valid Cayenne LPP, frame
counters increase per device, several gateways hear a frame with plausible RSSI/SNR, and now and then a frame
is delivered twice (again through another gateway), as network servers do. Cheap enough to drive a benchmark.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import orjson

from sharelake.sources.simulate.bodies import NETWORKS, Network
from sharelake.sources.simulate.radio import Frame, Radio, Reception


@dataclass(frozen=True, slots=True)
class Delivery:
    """One POST a network server would send: the body, and what sharelake should read from it."""

    network: str
    body: bytes
    query: str  # what the network server appends to the URL ("event=up" for ChirpStack)
    frame: int  # serial of the radio frame; a duplicate repeats its frame's serial
    duplicate: bool  # the frame's second delivery
    twinned: bool  # the frame is delivered twice
    dev_eui: str
    f_port: int
    f_cnt: int
    payload: bytes
    gateways: tuple[str, ...]  # the gateway ids sharelake reports for this body


class Simulator:
    """Frames from `Radio`, written as `network` sends them; iterate it for `Delivery`s without end."""

    def __init__(
        self,
        network: str,
        devices: int = 10,
        *,
        gateways: int = 3,
        duplicates: float = 0.05,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if network not in NETWORKS:
            raise ValueError(f"unknown network {network!r}: one of {', '.join(NETWORKS)}")
        if not 0 <= duplicates <= 1:
            raise ValueError("duplicates is a share of frames, from 0 to 1")
        self.network: Network = NETWORKS[network]
        self.radio = Radio(devices, gateways, seed=seed, clock=clock)
        self.duplicates = duplicates
        self._later: list[tuple[int, Delivery]] = []  # second deliveries waiting for their turn
        self._sent = 0

    def __iter__(self) -> Iterator[Delivery]:
        return self

    def __next__(self) -> Delivery:
        self._sent += 1
        if self._later and self._later[0][0] <= self._sent:
            return self._later.pop(0)[1]
        rng = self.radio.rng
        frame = self.radio.frame()
        twinned = rng.random() < self.duplicates
        first, second = self._split(frame, twinned)
        if second is not None:
            # The repeat comes a little later, as a retry or a late gateway's copy would.
            due = self._sent + 1 + rng.randrange(3)
            self._later.append((due, self._delivery(frame, second, duplicate=True, twinned=True)))
        return self._delivery(frame, first, duplicate=False, twinned=twinned)

    def _split(self, frame: Frame, twinned: bool) -> tuple[Sequence[Reception], Sequence[Reception] | None]:
        heard = frame.receptions
        split = self.network.split
        if split == "single":  # one notification per gateway
            return heard[:1], (heard[1:2] or heard[:1]) if twinned else None
        if split == "loriot":  # `rx` names the best gateway; `gw` repeats the frame with every gateway
            return heard[:1], heard if twinned else None
        if not twinned:
            return heard, None
        if len(heard) > 1:
            return heard[:-1], heard[-1:]  # a late gateway's copy
        return heard, heard  # a network-server retry through the one gateway

    def _delivery(
        self, frame: Frame, heard: Sequence[Reception], *, duplicate: bool, twinned: bool
    ) -> Delivery:
        network = self.network
        return Delivery(
            network=network.name,
            body=orjson.dumps(network.build(self.radio, frame, heard, duplicate)),
            query=network.query,
            frame=frame.serial,
            duplicate=duplicate,
            twinned=twinned,
            dev_eui=frame.device.dev_eui,
            f_port=frame.f_port,
            f_cnt=frame.f_cnt,
            payload=frame.payload,
            gateways=tuple(network.gateway_id(r.gateway) for r in heard),
        )


def deliveries(
    network: str,
    devices: int = 10,
    *,
    gateways: int = 3,
    duplicates: float = 0.05,
    seed: int | None = None,
    clock: Callable[[], float] = time.time,
) -> Iterator[Delivery]:
    """Deliveries of simulated uplinks, without end (take what you need with `itertools.islice`)."""
    return Simulator(network, devices, gateways=gateways, duplicates=duplicates, seed=seed, clock=clock)


def uplinks(
    network: str,
    devices: int = 10,
    *,
    gateways: int = 3,
    duplicates: float = 0.05,
    seed: int | None = None,
) -> Iterator[bytes]:
    """Request bodies of simulated uplinks in `network`'s JSON, without end."""
    for delivery in deliveries(network, devices, gateways=gateways, duplicates=duplicates, seed=seed):
        yield delivery.body


__all__ = ["NETWORKS", "Delivery", "Network", "Simulator", "deliveries", "uplinks"]
