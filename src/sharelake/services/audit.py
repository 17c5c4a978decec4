"""The audit log: token issue and revocation, API keys, rules and other documents, deleted records,
failed logins — who, what, when, from where — written in the same transaction as the change, and
readable by the account it concerns only."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from sqlalchemy import Connection, Engine

from sharelake.domain import records as wire
from sharelake.domain.clock import now_ms
from sharelake.domain.principal import Principal
from sharelake.storage import audit as store
from sharelake.storage.types import AnyRow

SELF = ""  # the actor is the account itself (None: nobody known, e.g. a failed login)

# The client address of the request being served; set by the HTTP layer, read when auditing.
client_ip: ContextVar[str | None] = ContextVar("sharelake_client_ip", default=None)


class Audit:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(
        self,
        conn: Connection,
        account: str,
        action: str,
        *,
        actor: str | None = SELF,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        store.create(
            conn,
            account=account,
            at=now_ms(),
            actor=account if actor == SELF else actor,
            action=action,
            target=target[:255] if target else None,
            detail=wire.compact_json(detail) if detail else None,
            ip=client_ip.get(),
        )

    def page(self, principal: Principal, page: int, per_page: int) -> tuple[list[AnyRow], int]:
        principal.require("TOKEN", "READ")
        with self._engine.connect() as conn:
            rows = store.list_(conn, principal.email, per_page, (page - 1) * per_page)
            return rows, store.count(conn, principal.email)
