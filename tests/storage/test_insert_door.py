"""The one door records go in by (`Writes.insert` over `storage.records.insert`), on both databases:
per record it says where the record went; repeats of a frame merge their gateways; ids chosen by a
producer are kept or replaced; outbox events follow the consumers the transaction sees."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from sharelake.domain.clock import now_ms
from sharelake.domain.records import new_id
from sharelake.services.lake import Lake
from sharelake.storage.records import NewRecord, Repeat
from sharelake.storage.tables import outbox, record_tags, records


def new(
    record_id: str | None = None, *, frame: str | None = None, gateway: str = "gw-1", **kw: Any
) -> NewRecord:
    now = now_ms()  # within the de-duplication window whenever the test runs
    record = NewRecord(
        id=record_id or new_id(now),
        rec_type=kw.pop("rec_type", "io.door.test"),
        owner_user="owner@door.example",
        owner_org="door.example",
        owner_app=None,
        data=kw.pop("data", '{"n":1}'),
        tstamp=now,
        **kw,
    )
    if frame is not None:
        record.frame_key = frame
        record.uplink = {"devEui": "0011223344556677", "gateways": [{"id": gateway, "rssi": -80}]}
    return record


def stored(lake: Lake, record_id: str) -> Any:
    with lake.engine.connect() as conn:
        return conn.execute(select(records).where(records.c.id == record_id)).one()


def test_repeats_of_a_frame_merge_into_the_first_and_say_so(lake: Lake) -> None:
    first, repeat, plain = new(frame="k1"), new(frame="k1", gateway="gw-2"), new()
    with lake.writes.transaction() as conn:
        written = lake.writes.insert(conn, [first, repeat, plain], repeat=Repeat.MERGE)
    assert [(w.id, w.new) for w in written] == [(first.id, True), (first.id, False), (plain.id, True)]
    with lake.writes.transaction() as conn:  # a later batch finds the stored copy
        (again,) = lake.writes.insert(conn, [new(frame="k1", gateway="gw-3")], repeat=Repeat.MERGE)
    assert (again.id, again.new) == (first.id, False)
    gateways = [g["id"] for g in orjson.loads(stored(lake, first.id).uplink)["gateways"]]
    assert gateways == ["gw-1", "gw-2", "gw-3"]
    with lake.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(records)).scalar_one() == 2


def test_ids_chosen_by_a_producer_are_kept_or_replaced(lake: Lake) -> None:
    record_id = new_id(now_ms())
    with lake.writes.transaction() as conn:
        (written,) = lake.writes.insert(conn, [new(record_id, tags=["a"], tags_json='["a"]')])
    assert written.new
    with lake.writes.transaction() as conn:  # a retried event: nothing written twice
        (kept,) = lake.writes.insert(conn, [new(record_id, data='{"n":2}', tags=["a"], tags_json='["a"]')])
    assert not kept.new
    assert stored(lake, record_id).data == '{"n":1}'
    with lake.writes.transaction() as conn:  # a replayed decode overwrites
        lake.writes.insert(conn, [new(record_id, data='{"n":3}', tags=["a"])], repeat=Repeat.REPLACE)
    assert stored(lake, record_id).data == '{"n":3}'
    with lake.engine.connect() as conn:
        tags = conn.execute(select(func.count()).where(record_tags.c.record_id == record_id)).scalar_one()
    assert tags == 1


def test_a_consumed_rec_type_gets_its_outbox_event_in_the_same_transaction(lake: Lake, tenant: Any) -> None:
    cluster = {
        "name": "c",
        "data": {"devices": [], "meta": {"unpacker": "cayenne-lpp"}, "targetRecType": "io.o"},
    }
    tenant.client.post("/device/io.door.consumed", json=cluster, headers=tenant.headers).raise_for_status()
    consumed, plain = new(rec_type="io.door.consumed"), new()
    with lake.writes.transaction() as conn:
        lake.writes.insert(conn, [consumed, plain])
    with lake.engine.connect() as conn:
        queued = conn.execute(select(outbox.c.record_id)).scalars().all()
    assert queued == [consumed.id]


def test_records_are_written_only_inside_the_pipelines_transaction(lake: Lake) -> None:
    with lake.engine.begin() as conn, pytest.raises(RuntimeError):
        lake.writes.insert(conn, [new()])
