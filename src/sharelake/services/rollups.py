"""Rollups as readers ask for them: `GET /share/{recType}/rollup`, with the records' visibility; and
the worker's round that folds new records into them (`storage.rollups`)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine

from sharelake.domain.clock import parse_instant, to_iso
from sharelake.domain.errors import Invalid
from sharelake.domain.principal import Principal
from sharelake.domain.records import check_rec_type
from sharelake.services.sharing import Sharing, party
from sharelake.storage import rollups as store
from sharelake.storage.engine import write_transaction
from sharelake.storage.inventory import eui
from sharelake.storage.tables import rollups as rollups_table
from sharelake.storage.visibility import visible_in

BATCH = 2000  # queued records folded per transaction: a bucket's records become one upsert row
EVERY = 1.0  # seconds between the worker's folds while the queue is short of a batch


class Rollups:
    def __init__(self, engine: Engine, sharing: Sharing) -> None:
        self._engine = engine
        self._sharing = sharing
        self._next = 0.0  # monotonic time of the worker's next fold

    def read(
        self,
        principal: Principal,
        rec_type: str,
        *,
        interval: str | None,
        field: str | None,
        dev_eui: str | None,
        start: str | None,
        end: str | None,
        page: int,
        per_page: int,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of buckets (objs, how many in all)."""
        principal.require("SHARE", "READ")
        check_rec_type(rec_type)
        interval = interval or "hour"
        if interval not in store.INTERVALS:
            raise Invalid(f"interval must be hour or day (got {interval[:20]!r})", code="invalid_parameter")
        if not field:
            raise Invalid(
                "field is required: the dotted path of a numeric field of data, e.g. data.temperature",
                code="invalid_parameter",
            )
        if (
            not field.startswith(("data.", "uplink.decoded."))
            or len(field) > 255
            or ".." in field
            or field.endswith(".")
        ):
            raise Invalid(
                "field must be a dotted path into data (data.temperature) or into the network server's "
                f"decoded payload (uplink.decoded.temperature); got {field[:80]!r}",
                code="invalid_parameter",
            )
        t_from = parse_instant(start, name="from") if start else None
        t_to = parse_instant(end, name="to") if end else None
        if t_from is not None and t_to is not None and t_from > t_to:
            raise Invalid("from is after to", code="invalid_parameter")
        query = store.Query(
            rec_type=rec_type, field=field, interval=interval,
            dev_eui=eui(dev_eui) if dev_eui else None, start=t_from, end=t_to,
        )  # fmt: skip
        predicate = visible_in(rollups_table, principal.email, self._sharing.grants(party(principal), "Read"))
        with self._engine.connect() as conn:
            objs, total = store.page(conn, predicate, query, offset=(page - 1) * per_page, limit=per_page)
            if not total and not store.has_field(conn, predicate, rec_type, field):
                known = store.fields(conn, predicate, rec_type, 20)
                raise Invalid(
                    f"no numeric field {field!r} in the records of {rec_type!r} you may read; "
                    + (f"fields with rollups: {', '.join(known)}" if known else "it has no rollups yet"),
                    code="unknown_field",
                )
        for obj in objs:
            obj["bucket"] = to_iso(obj["bucket"])
            obj["field"] = field
        return objs, total

    def series(
        self, principal: Principal, rec_type: str, *, dev_eui: str | None, start: int, end: int, limit: int
    ) -> dict[str, Any] | None:
        """A chart of the rollups over [start, end] (the console's long ranges): the average per bucket
        of each field (at most `limit`, by name) over the visible devices (or one), hourly up to 60
        days, daily beyond; `{"x": [epoch s…], "axis", "series": [{"label", "values"}…]}`, or None
        when nothing was rolled up there."""
        principal.require("SHARE", "READ")
        interval = "hour" if end - start <= 60 * 86_400_000 else "day"
        predicate = visible_in(rollups_table, principal.email, self._sharing.grants(party(principal), "Read"))
        by_field: dict[str, dict[int, tuple[float, int]]] = {}
        with self._engine.connect() as conn:
            for field in store.fields(conn, predicate, rec_type, limit):
                query = store.Query(
                    rec_type=rec_type, field=field, interval=interval,
                    dev_eui=eui(dev_eui) if dev_eui else None, start=start, end=end,
                )  # fmt: skip
                objs, _total = store.page(conn, predicate, query, offset=0, limit=100_000)
                sums: dict[int, tuple[float, int]] = {}
                for obj in objs:  # over devices: the bucket's sum and count, for the average of all
                    total, count = sums.get(obj["bucket"], (0.0, 0))
                    sums[obj["bucket"]] = (total + obj["sum"], count + obj["count"])
                if sums:
                    by_field[field] = sums
        if not by_field:
            return None
        buckets = sorted({b for sums in by_field.values() for b in sums})
        return {
            "x": [b / 1000 for b in buckets],
            "axis": f"{interval}ly averages (rollups), bucket start",
            "rollups": interval,
            "series": [
                {"label": field, "values": [s[0] / s[1] if (s := sums.get(b)) else None for b in buckets]}
                for field, sums in by_field.items()
            ],
        }

    # -- the worker's side -----------------------------------------------------------------------
    def fold_due(self) -> int:
        """The worker's round: `fold` at most once every `EVERY` seconds unless the last batch was full,
        so under ingest the queue is folded in big batches (one upsert row per bucket, whatever the
        records in it) rather than a transaction for every few records."""
        now = time.monotonic()
        if now < self._next:
            return 0
        done = self.fold()
        self._next = now if done >= BATCH else now + EVERY
        return done

    def fold(self) -> int:
        """Fold one batch of new records into the rollups; how many (0: none were waiting)."""
        with write_transaction(self._engine) as conn:
            return store.fold(conn, BATCH)
