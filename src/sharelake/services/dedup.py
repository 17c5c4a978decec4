"""De-duplication of LoRaWAN frames at write time.

The same frame (devEui, join session, fCnt, payload) arrives again when a second gateway hears it, a
network server retries, or The Things Stack sends both `uplink_message` and `uplink_normalized`.
Within the window it is stored once: the repeat answers with the first record, and gateways the first
record lacks are merged into its `uplink.gateways`.

Both halves run inside the group writer's transaction: `find_stored` once per batch (one query for
every frame the batch carries; on PostgreSQL it also takes the frames' advisory locks, so writers of
the same frame in other processes wait for this commit and then find its record), and a `before` step
per job that drops the duplicates from the job's rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, text

from sharelake.domain import records as wire
from sharelake.domain.clock import now_ms
from sharelake.storage import records as store
from sharelake.storage.tables import records
from sharelake.storage.writer import WriteJob

Slot = tuple[str, str, str]  # (owner, recType, frame key)
Replaced = dict[int, dict[str, Any]]  # body index -> short obj of the record it repeats


@dataclass(slots=True)
class _Pending:
    """A frame already in this batch, so a duplicate in the same batch merges into it."""

    row: dict[str, Any]
    uplink: dict[str, Any]


@dataclass(slots=True)
class _Stored:
    """A stored record of a frame; `uplink` takes the gateways merged into it during the batch."""

    id: str
    tstamp: int
    tags: str
    uplink: dict[str, Any]


@dataclass(slots=True)
class _Batch:
    pending: dict[Slot, _Pending] = field(default_factory=dict)
    stored: dict[Slot, _Stored] | None = None  # None until `find_stored` ran


class Dedup:
    def __init__(self, engine: Engine, *, window: int) -> None:
        self.window_ms = window * 1000
        self._is_pg = engine.dialect.name == "postgresql"

    def attach(self, job: WriteJob, owner: str, rec_type: str, frames: list[tuple[int, str]]) -> None:
        """Make `job` drop the rows (by body index) whose frame key is already stored or earlier in
        its batch; the writer then returns {body index: short obj of the first} for the answer."""
        if not frames or not self.window_ms:
            return
        job.before = self._before(frames, dict(job.rows))
        job.frames = [(owner, rec_type, key) for _, key in frames]

    def _before(self, frames: list[tuple[int, str]], original: dict[Any, list[dict[str, Any]]]) -> Any:
        rows = original[records]

        def before(conn: Connection, job: WriteJob, state: dict[str, Any]) -> Replaced:
            batch = _batch(state)
            if batch.stored is None:  # the batch hook did not run: look this job's frames up
                self.find_stored(conn, [job], state)
            stored = batch.stored or {}
            replaced: Replaced = {}
            since = now_ms() - self.window_ms
            for index, key in frames:
                row = rows[index]
                slot = (row["owner_user"], row["rec_type"], key)
                new_uplink = orjson.loads(row["uplink"])
                pending = batch.pending.get(slot)
                if pending is not None:
                    merge_gateways(pending.uplink, new_uplink)
                    pending.row["uplink"] = wire.compact_json(pending.uplink)
                    replaced[index] = short(pending.row)
                    continue
                found = stored.get(slot)
                if found is not None and found.tstamp >= since:
                    if merge_gateways(found.uplink, new_uplink):
                        store.set_uplink(conn, found.id, wire.compact_json(found.uplink))
                    replaced[index] = wire.short(
                        row["rec_type"], found.id, found.tstamp, orjson.Fragment(found.tags)
                    )
                    continue
                batch.pending[slot] = _Pending(row=row, uplink=new_uplink)
            # From the original rows every time: a batch retried after a failure runs this again.
            if not replaced:
                job.rows = dict(original)
                return replaced
            kept = [r for i, r in enumerate(rows) if i not in replaced]
            kept_ids = {r["id"] for r in kept}
            job.rows = {
                table: kept if table is records else [r for r in table_rows if r["record_id"] in kept_ids]
                for table, table_rows in original.items()
            }
            return replaced

        return before

    def find_stored(self, conn: Connection, jobs: list[WriteJob], state: dict[str, Any]) -> None:
        """A batch hook: the stored records of every frame the batch's jobs carry, in one query."""
        batch = _batch(state)
        stored = batch.stored = batch.stored if batch.stored is not None else {}
        slots = sorted({slot for job in jobs for slot in job.frames or ()})
        if not slots:
            return
        if self._is_pg:
            keys = sorted({key for _, _, key in slots})  # one order for everyone: no deadlocks
            conn.execute(
                text(
                    "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest(CAST(:keys AS text[])) k"
                ),
                {"keys": keys},
            )
        for row in store.find_frames(conn, slots):
            slot = (row.owner_user, row.rec_type, row.frame_key)
            known = stored.get(slot)
            if known is None or row.tstamp > known.tstamp:
                uplink = orjson.loads(row.uplink) if row.uplink else {}
                stored[slot] = _Stored(row.id, row.tstamp, row.tags, uplink)


def _batch(state: dict[str, Any]) -> _Batch:
    batch: _Batch = state.setdefault("frames", _Batch())
    return batch


def short(row: Mapping[str, Any]) -> dict[str, Any]:
    """The short obj of a row about to be written (its tags already JSON text)."""
    return wire.short(row["rec_type"], row["id"], row["tstamp"], orjson.Fragment(row["tags"]), row["name"])


def merge_gateways(into: dict[str, Any], new: dict[str, Any]) -> bool:
    """Add `new`'s gateways that `into` lacks; True when something was added."""
    known = into.setdefault("gateways", [])
    seen = {g.get("id") for g in known if isinstance(g, dict)}
    added = False
    for gateway in new.get("gateways") or []:
        if isinstance(gateway, dict) and gateway.get("id") not in seen:
            known.append(gateway)
            seen.add(gateway.get("id"))
            added = True
    return added
