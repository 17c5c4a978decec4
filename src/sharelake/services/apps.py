"""API keys ("apps"). Deleting one revokes every token issued with it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Engine, Row

from sharelake.domain.clock import now_ms
from sharelake.domain.errors import Invalid, NotFound
from sharelake.services.audit import Audit
from sharelake.services.tokens import Tokens
from sharelake.storage import apps, tokens, users
from sharelake.storage.engine import write_transaction


class Apps:
    def __init__(self, engine: Engine, tokens_service: Tokens, audit: Audit) -> None:
        self._engine = engine
        self._audit = audit
        self._tokens = tokens_service

    def create(self, user_id: int, name: str) -> Row[Any]:
        name = (name or "").strip()
        if not name or len(name) > 255:
            raise Invalid("an app needs a name of 1-255 characters", code="invalid_name")
        app_id = str(uuid.uuid4()).upper()
        with write_transaction(self._engine) as conn:
            apps.create(conn, app_id=app_id, user_id=user_id, name=name, created_at=now_ms())
            row = apps.get(conn, app_id)
            owner = users.get(conn, user_id)
            if owner is not None:
                self._audit.record(conn, owner.email, "app.create", target=app_id, detail={"name": name})
        assert row is not None
        return row

    def list_for(self, user_id: int) -> list[Row[Any]]:
        with self._engine.connect() as conn:
            return apps.list_for_user(conn, user_id)

    def delete(self, user_id: int, app_id: str) -> Row[Any]:
        with write_transaction(self._engine) as conn:
            row = apps.get(conn, app_id.upper())
            if row is None or row.user_id != user_id or row.revoked_at is not None:
                raise NotFound(f"no API key {app_id!r} in your account", code="app_not_found")
            now = now_ms()
            apps.revoke(conn, row.id, now)
            hashes = tokens.revoke_for_app(conn, row.id, now)
            self._tokens.announce(conn, hashes)
            owner = users.get(conn, user_id)
            if owner is not None:
                detail = {"name": row.name, "tokensRevoked": len(hashes)}
                self._audit.record(conn, owner.email, "app.delete", target=row.id, detail=detail)
        self._tokens.forget(hashes)
        return row
