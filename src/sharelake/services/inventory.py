"""The device inventory as operators read it: one obj per device (owner and devEui), merged from the
rows of the recTypes the caller may read (`storage.inventory` keeps them at write time).

Merging: `firstSeen` is the earliest and `lastSeen` the latest of the rows; the radio (`lastFCnt`,
`lastRssi`, `lastSnr`) comes from the row that heard the device last, `last` from the row that decoded
it last; `frames` and `duplicates` are the largest row's (a device cluster's unpacked recType mirrors
the frames of its source, so adding them would count each frame twice); `expectedInterval` is the
longest learned, so a device is called silent only when every recType it writes has been quiet.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Engine

from sharelake.domain.clock import now_ms, to_iso
from sharelake.domain.errors import Invalid, NotFound
from sharelake.domain.principal import Principal
from sharelake.domain.records import check_rec_type
from sharelake.services.sharing import Sharing, party
from sharelake.storage import inventory as store

DEFAULT_PAGE = 100
MAX_PAGE = 1000
MAX_Q = 200


class Inventory:
    def __init__(self, engine: Engine, sharing: Sharing) -> None:
        self._engine = engine
        self._sharing = sharing

    def devices(
        self,
        principal: Principal,
        *,
        rec_type: str | None = None,
        q: str | None = None,
        silent: bool | None = None,
        page: int = 1,
        per_page: int = DEFAULT_PAGE,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of `GET /inventory` (objs, and how many devices match in all)."""
        if rec_type is not None:
            check_rec_type(rec_type)
        if q is not None and len(q) > MAX_Q:
            raise Invalid(f"q must be at most {MAX_Q} characters", code="invalid_parameter")
        now = now_ms()
        query = store.Query(rec_type=rec_type, q=q, silent=silent, now=now)
        predicate = self._visible(principal)
        with self._engine.connect() as conn:
            devs, total = store.page(conn, predicate, query, offset=(page - 1) * per_page, limit=per_page)
            rows, heard = store.rows_of(conn, predicate, devs)
        return _objs(devs, rows, heard, now), total

    def get(self, principal: Principal, dev_eui: str) -> list[dict[str, Any]]:
        """The device under this devEui, one obj per owner whose rows the caller may read."""
        eui = store.eui(dev_eui.strip())
        predicate = self._visible(principal)
        now = now_ms()
        with self._engine.connect() as conn:
            devs, _total = store.page(conn, predicate, store.Query(dev_eui=eui), offset=0, limit=MAX_PAGE)
            rows, heard = store.rows_of(conn, predicate, devs)
        if not rows:
            raise NotFound(
                f"no device {dev_eui[:64]!r} among the records you may read", code="device_not_found"
            )
        return _objs(devs, rows, heard, now)

    def _visible(self, principal: Principal) -> Any:
        principal.require("SHARE", "READ")
        return store.visible(principal.email, self._sharing.grants(party(principal), "Read"))


def _objs(
    devs: Sequence[tuple[str, str]], rows: Sequence[Any], heard: Sequence[Any], now: int
) -> list[dict[str, Any]]:
    by_device: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for row in rows:
        by_device[(row.owner_user, row.dev_eui)].append(row)
    gateways: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for gateway in heard:
        gateways[(gateway.owner_user, gateway.dev_eui)].append(gateway)
    return [_obj(by_device[d], gateways[d], now) for d in devs if by_device.get(d)]


def _obj(rows: Sequence[Any], heard: Sequence[Any], now: int) -> dict[str, Any]:
    rows = sorted(rows, key=lambda r: r.rec_type)
    last_seen = max(r.last_seen for r in rows)
    radio = max(rows, key=lambda r: (r.last_rssi is not None or r.last_snr is not None, r.last_seen))
    counted = max(rows, key=lambda r: (r.frames, r.last_seen))
    decoded = [r for r in rows if r.last is not None and r.last_at is not None]
    values = max(decoded, key=lambda r: r.last_at) if decoded else None
    intervals = [r.interval_ms for r in rows if r.interval_ms is not None]
    interval = max(intervals) if intervals else None
    tags: list[str] = []
    for row in rows:
        tags.extend(t for t in orjson.loads(row.tags) if isinstance(t, str) and t not in tags)
    merged: dict[str, Any] = {}
    for gateway in heard:
        known = merged.get(gateway.gateway)
        if known is None or gateway.last_seen > known.last_seen:
            merged[gateway.gateway] = gateway
    shown = sorted(merged.values(), key=lambda g: g.last_seen, reverse=True)[: store.GATEWAYS_SHOWN]
    fcnts = [r for r in rows if r.last_fcnt is not None]
    return {
        "devEui": rows[0].dev_eui,
        "owner": {"user": rows[0].owner_user, "org": rows[0].owner_org},
        "firstSeen": to_iso(min(r.first_seen for r in rows)),
        "lastSeen": to_iso(last_seen),
        "lastFCnt": max(fcnts, key=lambda r: r.last_seen).last_fcnt if fcnts else None,
        "frames": counted.frames,
        "duplicates": max(r.duplicates for r in rows),
        "lastRssi": radio.last_rssi,
        "lastSnr": radio.last_snr,
        "gateways": [
            {
                "id": g.gateway,
                "lastSeen": to_iso(g.last_seen),
                "rssi": g.rssi,
                "snr": g.snr,
                "frames": g.frames,
            }
            for g in shown
        ],
        "recTypes": [r.rec_type for r in rows],
        "last": orjson.loads(values.last) if values is not None else None,
        "lastDecodedAt": to_iso(values.last_at) if values is not None else None,
        "expectedInterval": round(interval / 1000, 3) if interval is not None else None,
        "silent": interval is not None and now - last_seen > 2 * interval,
        "tags": tags,
    }
