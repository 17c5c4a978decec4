"""Device clusters: decode each new record of a cluster's devices into its target recType.

The worker calls `unpack` for an outbox event; decoding happens before the write transaction (a slow
JavaScript codec never holds the database), and the unpacked record's id is derived from the source's,
so a retried event writes nothing twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Engine

from sharelake import decoders
from sharelake.domain import records as wire
from sharelake.domain.clock import now_ms, parse_instant, to_datetime, to_iso
from sharelake.domain.clusters import (
    Cluster,
    decoder_spec,
    derived_id,
    device_eui,
    normalize_cluster_data,
    trial_payload,
    unpacked_data,
)
from sharelake.domain.errors import Invalid, Unavailable
from sharelake.domain.principal import Principal
from sharelake.metrics import Metrics
from sharelake.sandbox import SandboxError
from sharelake.services.cluster_health import ClusterHealth, Outcome, paused_message
from sharelake.services.consumers import Consumers, acting_as, doc_data
from sharelake.services.documents import Documents, Kind
from sharelake.services.sharing import Sharing
from sharelake.services.writes import Writes
from sharelake.storage import outbox
from sharelake.storage import records as record_store
from sharelake.storage.engine import write_transaction
from sharelake.storage.records import NewRecord, Repeat
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
        writes: Writes,
        health: ClusterHealth,
        sharing: Sharing,
        consumers: Consumers,
        documents: Documents,
        metrics: Metrics,
        *,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self._wake = wake  # tells this process's worker that events are waiting
        self._engine = engine
        self._writes = writes
        self._metrics = metrics
        self._sharing = sharing
        self._consumers = consumers
        self._documents = documents
        self._codecs = decoders.CodecCache()
        self._clusters: dict[tuple[str, int], Cluster] = {}  # parsed once per version of a cluster
        # Locked after the consumers' generation, as every record-writing transaction does (their lock order).
        self.health = health

    def kind(self) -> Kind:
        def normalize(data: Any, _principal: Principal) -> dict[str, Any]:
            normalized = normalize_cluster_data(data)
            meta = normalized["meta"]
            # A codec that cannot decode anything is refused now, not discovered by the worker on every uplink.
            self._closed_after(self._loaded(meta["unpacker"], meta.get("codec")))
            return normalized

        def on_save(conn: Connection, _principal: Principal, _kind: Kind, values: dict[str, Any]) -> None:
            self._consumers.announce(conn)
            self.health.saved(conn, values["id"], values["updated"])  # its owner's save resumes it

        def on_delete(conn: Connection, _kind: Kind, doc_id: str) -> None:
            # Its engine context goes with it (a changed codec replaces its old one on first use).
            self._codecs.evict(key=doc_id)
            self._consumers.announce(conn)
            self.health.deleted(conn, doc_id)

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
        except decoders.UnknownDecoder as exc:
            return decoders.DecodeResult.failed(str(exc))
        return self._run(decoder, cluster.unpacker, payload, f_port, when)

    @staticmethod
    def _run(
        decoder: decoders.Decoder, unpacker: str, payload: bytes, f_port: int, when: datetime
    ) -> decoders.DecodeResult:
        try:
            return decoder(payload, f_port, when)
        except Exception as exc:  # a native decoder's bug must not lose the record, nor fail a test decode
            log.exception("decoder %s failed", unpacker)
            return decoders.DecodeResult.failed(f"the decoder failed: {exc}")

    def _outcome(
        self,
        cluster: Cluster,
        version: int,
        paused: str | None,
        payload_hex: str | None,
        f_port: int | None,
        when_ms: int,
    ) -> tuple[decoders.DecodeResult, Outcome]:
        """Decode an uplink, unless its cluster is paused (`paused`: why); what it came to, for its health."""
        if payload_hex is None:
            result = decoders.DecodeResult.failed("the uplink carries no payload to decode")
            return result, Outcome.of(result, None)
        if paused is not None:
            return decoders.DecodeResult.failed(paused_message(paused)), Outcome.not_run(paused, payload_hex)
        result = self._decode(cluster, bytes.fromhex(payload_hex), f_port or 0, to_datetime(when_ms))
        outcome = Outcome.of(result, payload_hex)
        self.health.observed(cluster.id, version, outcome)
        return result, outcome

    # -- checking and trying a codec ------------------------------------------------------------------
    def _loaded(self, unpacker: str, codec: str | None) -> decoders.Decoder:
        """A fresh decoder for a cluster's unpacker and codec, its JavaScript loaded: what the worker would
        run. Never the cached one, whose console and state belong to the worker's decodes; the caller
        closes it (`_closed_after`). Invalid when the unpacker is unknown or the codec cannot load."""
        try:
            decoder = decoders.decoder_for(unpacker, codec)
        except decoders.UnknownDecoder as exc:
            raise Invalid(str(exc), code="invalid_cluster") from None
        if isinstance(decoder, decoders.JavaScriptCodec):
            try:
                decoder.load()
            except decoders.CodecError as exc:
                decoder.close()
                raise Invalid(f"data.meta.codec: {exc}", code="invalid_codec") from None
            except SandboxError as exc:  # the engine itself (it could not start): not the codec's fault
                decoder.close()
                raise Unavailable(f"the JavaScript engine is not available now: {exc}") from None
        return decoder

    @staticmethod
    def _closed_after(decoder: decoders.Decoder) -> None:
        if isinstance(decoder, decoders.JavaScriptCodec):
            decoder.close()

    def _trial(self, unpacker: str, codec: str | None, body: Any) -> dict[str, Any]:
        """DESIGN §11's test decode: `{data, warnings, errors, console, ms}`, writing nothing. A codec that
        throws or returns garbage is a result (in `errors`), not a client error."""
        given = trial_payload(body)
        when = to_datetime(given.recv_time if given.recv_time is not None else now_ms())
        decoder = self._loaded(unpacker, codec)
        try:
            started = time.perf_counter()
            result = self._run(decoder, unpacker, given.payload, given.f_port, when)
            ms = (time.perf_counter() - started) * 1000
            lines = decoder.take_log() if isinstance(decoder, decoders.JavaScriptCodec) else []
        finally:
            self._closed_after(decoder)
        return {
            "data": result.data,
            "warnings": result.warnings,
            "errors": result.errors,
            "console": [text for _level, text in lines],
            "ms": round(ms, 3),
        }

    def test(self, principal: Principal, rec_type: str, cluster_id: str, body: Any) -> dict[str, Any]:
        """Decode a payload with a stored cluster's decoder, writing nothing (the console's Test decode)."""
        doc = self._documents.get(principal, self._documents.kind("device"), rec_type, cluster_id)
        cluster = cluster_of(doc)
        return self._trial(cluster.unpacker, cluster.codec, body)

    def trial(self, body: Any) -> dict[str, Any]:
        """Decode a payload with the decoder a cluster's `data` describes, before (or without) saving it."""
        if not isinstance(body, dict):
            raise Invalid(
                'send {"data": {"meta": {"unpacker", "codec"}}, "payloadHex", "fPort"}', code="invalid_body"
            )
        unpacker, codec = decoder_spec(body.get("data"))
        return self._trial(unpacker, codec, body)

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
        paused = self.health.paused(cluster.id, doc.updated)
        if paused is not None and replace:
            return []  # a replay while paused would only overwrite decoded records with "paused"
        result, outcome = self._outcome(cluster, doc.updated, paused, payload_hex, record.f_port, when_ms)
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
        record_new = NewRecord(
            id=derived_id(record.id, cluster.id),
            rec_type=cluster.target,
            owner_user=cluster.owner_user,
            owner_org=cluster.owner_org,
            owner_app=cluster.owner_app,
            data=wire.compact_json(data),
            tstamp=now,
            tags=tags,
            tags_json=wire.compact_json(tags),
            token_id=f"device:{cluster.id}",
            network=record.network,
            dev_eui=record.dev_eui,
            f_port=record.f_port,
            f_cnt=record.f_cnt,
            received_at=record.received_at,
        )
        # Without `replace`, a record already there stays (a retried event writes nothing twice); with
        # it, a replay overwrites what the codec produced. Robots and alerts on the target recType run on
        # a new one (not on a replay's rewrite); other clusters never do, so no chain of clusters can loop.
        repeat, consumed_by = (Repeat.REPLACE, ()) if replace else (Repeat.KEEP, ("robo", "alert"))

        def write(conn: Connection) -> None:
            self._writes.add(conn, [record_new], repeat=repeat, consumed_by=consumed_by)
            self.health.note(conn, cluster.id, doc.updated, record_new.id, outcome)

        return [write]

    def visible_record(self, conn: Connection, doc: AnyRow, record_id: str, rec_type: str) -> AnyRow | None:
        """The record, if the cluster's owner may read it."""
        found: AnyRow | None = record_store.get(
            conn, self._sharing.visible(conn, acting_as(doc), "Read", rec_type), rec_type, record_id
        )
        return found
