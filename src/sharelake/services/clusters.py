"""Device clusters: decode each new record of a cluster's devices into its target recType.

The worker calls `unpack` for an outbox event; decoding happens before the write transaction (a slow
JavaScript codec never holds the database), and the unpacked record's id is derived from the source's,
so a retried event writes nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Engine
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from sharelake import decoders
from sharelake.domain import records as wire
from sharelake.domain.clock import now_ms, parse_instant, to_datetime, to_iso
from sharelake.domain.clusters import (
    Cluster,
    derived_id,
    device_eui,
    normalize_cluster_data,
    unpacked_data,
)
from sharelake.domain.errors import Invalid
from sharelake.domain.principal import Principal
from sharelake.metrics import Metrics
from sharelake.services.consumers import Consumers, acting_as, doc_data
from sharelake.services.documents import Documents, Kind
from sharelake.services.sharing import Sharing
from sharelake.storage import outbox
from sharelake.storage import records as record_store
from sharelake.storage.engine import write_transaction
from sharelake.storage.tables import record_tags, records
from sharelake.storage.types import AnyRow

log = logging.getLogger(__name__)


def cluster_of(doc: AnyRow) -> Cluster:
    return Cluster.from_data(
        doc.id, doc.rec_type, (doc.owner_user, doc.owner_org, doc.owner_app), doc_data(doc)
    )


class Clusters:
    def __init__(
        self,
        engine: Engine,
        sharing: Sharing,
        consumers: Consumers,
        documents: Documents,
        metrics: Metrics,
        *,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self._wake = wake  # tells this process's worker that events are waiting
        self._engine = engine
        self._metrics = metrics
        self._sharing = sharing
        self._consumers = consumers
        self._documents = documents
        self._codecs = decoders.CodecCache()
        self._is_pg = engine.dialect.name == "postgresql"
        self._inserts = self._build_inserts()
        self._clusters: dict[tuple[str, int], Cluster] = {}  # parsed once per version of a cluster

    def kind(self) -> Kind:
        def normalize(data: Any, _principal: Principal) -> dict[str, Any]:
            normalized = normalize_cluster_data(data)
            meta = normalized["meta"]
            try:  # an unknown unpacker is refused now, not discovered by the worker later (nothing is cached)
                decoders.decoder_for(meta["unpacker"], meta.get("codec"))
            except decoders.UnknownDecoder as exc:
                raise Invalid(str(exc), code="invalid_cluster") from None
            return normalized

        def on_save(conn: Connection, _principal: Principal, _kind: Kind, _values: dict[str, Any]) -> None:
            self._consumers.announce(conn)

        def on_delete(conn: Connection, _kind: Kind, doc_id: str) -> None:
            # Its engine context goes with it (a changed codec replaces its old one on first use).
            self._codecs.evict(key=doc_id)
            self._consumers.announce(conn)

        return Kind(
            name="device",
            resource="DEVICE",
            title="device cluster",
            normalize=normalize,
            on_save=on_save,
            on_delete=on_delete,
            after_change=self._consumers.invalidate,
        )

    def close(self) -> None:
        self._codecs.close()

    # -- decoding ---------------------------------------------------------------------------------
    def _decode(self, cluster: Cluster, payload: bytes, f_port: int, when: datetime) -> decoders.DecodeResult:
        try:
            decoder = decoders.decoder_for(
                cluster.unpacker, cluster.codec, cache=self._codecs, key=cluster.id
            )
            return decoder(payload, f_port, when)
        except decoders.UnknownDecoder as exc:
            return decoders.DecodeResult.failed(str(exc))
        except Exception as exc:
            log.exception("decoder %s failed", cluster.unpacker)
            return decoders.DecodeResult.failed(f"the decoder failed: {exc}")

    def test(self, principal: Principal, rec_type: str, cluster_id: str, body: Any) -> dict[str, Any]:
        """Decode a payload with a cluster's decoder without writing anything (the console's Test decode)."""
        doc = self._documents.get(principal, self._documents.kind("device"), rec_type, cluster_id)
        if not isinstance(body, dict):
            raise Invalid('send {"fPort": 2, "bytes": "<hex>"}', code="invalid_body")
        hex_text = str(body.get("bytes", body.get("payloadHex", ""))).replace(" ", "")
        try:
            payload = bytes.fromhex(hex_text)
        except ValueError:
            raise Invalid("bytes must be the payload in hex, e.g. 0167FFD7", code="invalid_body") from None
        f_port = body.get("fPort", 1)
        if not isinstance(f_port, int) or not 0 <= f_port <= 255:
            raise Invalid("fPort must be a whole number from 0 to 255", code="invalid_body")
        when = (
            to_datetime(parse_instant(str(body["recvTime"]), name="recvTime"))
            if body.get("recvTime")
            else to_datetime(now_ms())
        )
        return self._decode(cluster_of(doc), payload, f_port, when).to_json()

    def replay(
        self, principal: Principal, rec_type: str, cluster_id: str, t_from: int | None, t_to: int | None
    ) -> int:
        """Queue the cluster's stored records again (after a codec change): their unpacked records are rewritten."""
        doc = self._documents.get(principal, self._documents.kind("device"), rec_type, cluster_id)
        cluster = cluster_of(doc)
        with write_transaction(self._engine) as conn:
            visible = self._sharing.visible(conn, acting_as(doc), "Read", rec_type)
            queued = outbox.enqueue_replay(
                conn, cluster.id, rec_type, visible, list(cluster.devices), t_from, t_to, now_ms()
            )
        self._wake()  # now, rather than at the worker's next poll
        return queued

    # -- the worker's side ------------------------------------------------------------------------
    def _parsed(self, doc: AnyRow) -> Cluster:
        key = (doc.id, doc.updated)
        cluster = self._clusters.get(key)
        if cluster is None:
            if len(self._clusters) > 10_000:
                self._clusters.clear()
            cluster = self._clusters[key] = cluster_of(doc)
        return cluster

    def unpack(self, doc: AnyRow, record: AnyRow, replace: bool) -> list[Any]:
        """The writes (to run in the event's transaction) that decoding `record` for this cluster makes."""
        cluster = self._parsed(doc)
        eui = device_eui(record.dev_eui) if record.dev_eui is not None else None
        if eui is None or eui not in cluster.devices:
            return []
        uplink = orjson.loads(record.uplink) if record.uplink else {}
        payload_hex = uplink.get("payloadHex")
        received = uplink.get("receivedAt")
        when_ms = parse_instant(received) if received else record.tstamp
        iot = {
            "devEui": record.dev_eui,
            "fPort": record.f_port,
            "fCnt": record.f_cnt,
            "time": to_iso(when_ms),
        }
        if payload_hex is None:
            result = decoders.DecodeResult.failed("the uplink carries no payload to decode")
        else:
            result = self._decode(
                cluster, bytes.fromhex(payload_hex), record.f_port or 0, to_datetime(when_ms)
            )
        if result.errors:
            self._metrics.decode_errors.inc()
        device_tags = cluster.devices[eui]
        data = unpacked_data(
            result.data,
            warnings=result.warnings,
            errors=result.errors,
            normalized=result.normalized,
            cluster=cluster,
            device_tags=device_tags,
            source={"recType": record.rec_type, "id": record.id},
            iot=iot,
        )
        tags = list(dict.fromkeys([*cluster.tags, *device_tags]))
        now = now_ms()
        data_json = wire.compact_json(data)
        row = {
            "id": derived_id(record.id, cluster.id),
            "rec_type": cluster.target,
            "owner_user": cluster.owner_user,
            "owner_org": cluster.owner_org,
            "owner_app": cluster.owner_app,
            "owners": "[]",
            "data": data_json,
            "tags": wire.compact_json(tags),
            "name": "",
            "desc": "",
            "checksum": wire.checksum(data_json),
            "tstamp": now,
            "updated": now,
            "creator": cluster.owner_user,
            "updater": cluster.owner_user,
            "token_id": f"device:{cluster.id}",
            "remote_ip": None,
            "network": record.network,
            "dev_eui": record.dev_eui,
            "f_port": record.f_port,
            "f_cnt": record.f_cnt,
            "received_at": record.received_at,
            "frame_key": None,
            "uplink": None,
        }
        return [lambda conn: self._write(conn, row, tags, replace)]

    def _write(self, conn: Connection, row: dict[str, Any], tags: list[str], replace: bool) -> None:
        record_insert, tag_insert = self._inserts[replace]
        conn.execute(record_insert, row)
        if tags:
            conn.execute(
                tag_insert, [{"record_id": row["id"], "tag": t, "rec_type": row["rec_type"]} for t in tags]
            )

    def _build_inserts(self) -> dict[bool, tuple[Any, Any]]:
        """The two INSERTs of an unpacked record, built once (values bound per call): without
        `replace`, a record already there stays (a retried event writes nothing twice); with it, a
        replay overwrites what the codec produced."""
        insert = pg_insert if self._is_pg else sqlite_insert
        statement = insert(records)
        kept = {k: statement.excluded[k] for k in ("data", "tags", "checksum", "updated")}
        tags = insert(record_tags).on_conflict_do_nothing()
        return {
            False: (statement.on_conflict_do_nothing(index_elements=["id"]), tags),
            True: (statement.on_conflict_do_update(index_elements=["id"], set_=kept), tags),
        }

    def visible_record(self, conn: Connection, doc: AnyRow, record_id: str, rec_type: str) -> AnyRow | None:
        """The record, if the cluster's owner may read it."""
        found: AnyRow | None = record_store.get(
            conn, self._sharing.visible(conn, acting_as(doc), "Read", rec_type), rec_type, record_id
        )
        return found
