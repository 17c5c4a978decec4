"""Retention: per owner and recType, records older than N days are deleted by the worker, in small
batches so no lock is held for long; the recType's rollups are kept for ever, or for a time of their
own (`rollupDays`). The default is to keep everything."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine

from sharelake.domain.clock import now_ms
from sharelake.domain.errors import Invalid, NotFound
from sharelake.domain.principal import Principal
from sharelake.domain.records import check_rec_type
from sharelake.services.audit import Audit
from sharelake.storage import retention as store
from sharelake.storage.engine import write_transaction

log = logging.getLogger(__name__)
DAY_MS = 24 * 3600 * 1000
MAX_DAYS = 36_500
BATCH = 1000


@dataclass(frozen=True, slots=True)
class Policy:
    rec_type: str
    days: int
    updated: int
    rollup_days: int | None = None  # None: the rollups are kept for ever


class Retention:
    def __init__(self, engine: Engine, audit: Audit) -> None:
        self._engine = engine
        self._audit = audit

    def set(self, principal: Principal, rec_type: str, days: object, rollup_days: object = None) -> Policy:
        principal.require("SHARE", "DELETE")
        check_rec_type(rec_type)
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_DAYS:
            raise Invalid(f"days must be a whole number from 1 to {MAX_DAYS}", code="invalid_retention")
        if rollup_days is not None and (
            not isinstance(rollup_days, int)
            or isinstance(rollup_days, bool)
            or not 1 <= rollup_days <= MAX_DAYS
        ):
            raise Invalid(
                f"rollupDays must be a whole number from 1 to {MAX_DAYS} (or absent: kept for ever)",
                code="invalid_retention",
            )
        now = now_ms()
        detail = {"days": days, **({"rollupDays": rollup_days} if rollup_days is not None else {})}
        with write_transaction(self._engine) as conn:
            store.put(conn, principal.email, rec_type, days, rollup_days, now)
            self._audit.record(conn, principal.email, "retention.set", target=rec_type, detail=detail)
        return Policy(rec_type, days, now, rollup_days)

    def clear(self, principal: Principal, rec_type: str) -> None:
        principal.require("SHARE", "DELETE")
        check_rec_type(rec_type)
        with write_transaction(self._engine) as conn:
            if not store.delete_(conn, principal.email, rec_type):
                raise NotFound(
                    f"no retention set for {rec_type}: its records are kept", code="retention_not_found"
                )
            self._audit.record(conn, principal.email, "retention.clear", target=rec_type)

    def list_for(self, principal: Principal) -> list[Policy]:
        principal.require("SHARE", "READ")
        with self._engine.connect() as conn:
            return [
                Policy(r.rec_type, r.days, r.updated, r.rollup_days)
                for r in store.list_for(conn, principal.email)
            ]

    def get(self, principal: Principal, rec_type: str) -> Policy | None:
        return next((p for p in self.list_for(principal) if p.rec_type == rec_type), None)

    def expire(self, *, max_batches: int = 100) -> int:
        """Delete what the policies let go, one batch per transaction; the number deleted."""
        deleted = 0
        with self._engine.connect() as conn:
            policies = store.all_(conn)
        for policy in policies:
            before = now_ms() - policy.days * DAY_MS
            for _ in range(max_batches):
                with write_transaction(self._engine) as conn:
                    done = store.expire_batch(conn, policy.owner_user, policy.rec_type, before, BATCH)
                deleted += done
                if done < BATCH:
                    break
        rolled = 0
        for policy in policies:
            if policy.rollup_days is not None:
                with write_transaction(self._engine) as conn:
                    rolled += store.expire_rollups(
                        conn, policy.owner_user, policy.rec_type, now_ms() - policy.rollup_days * DAY_MS
                    )
        if deleted:
            log.info("retention deleted %d records", deleted)
        if rolled:
            log.info("retention deleted %d rollup buckets", rolled)
        return deleted
