"""Tokens: the OAuth2 token endpoint's grants, authentication of every call, revocation.

Authentication is on the hot path, so a token's principal is cached in memory by the SHA-256 of
its secret. Revocation drops the entry at once in this process and, on PostgreSQL, in every
other process through NOTIFY (see `storage.notify`); expiry is checked on every call. Live
streams `watch` their token: the same drop wakes them, so they end at once rather than later.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import Engine, Row

from sharelake.domain import scopes
from sharelake.domain import tokens as shown
from sharelake.domain.clock import now_ms
from sharelake.domain.errors import Invalid, NotFound, Unauthenticated
from sharelake.domain.principal import Principal
from sharelake.domain.secrets import hash_secret, new_secret, new_uuid
from sharelake.services.accounts import BAD_CREDENTIALS, Accounts
from sharelake.services.audit import Audit
from sharelake.settings import Settings
from sharelake.storage import apps, notify, users
from sharelake.storage import tokens as store
from sharelake.storage.engine import write_transaction

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "sharelake_tokens"
GRANTS = ("password", "pipe", "refresh_token")
_BAD_TOKEN = "the token is missing, unknown, expired or revoked; request a new one at /oauth2/token"  # noqa: S105 - a message, not a secret


class Tokens:
    def __init__(self, engine: Engine, settings: Settings, accounts: Accounts, audit: Audit) -> None:
        self._engine = engine
        self._audit = audit
        self._settings = settings
        self._accounts = accounts
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._uses: dict[str, tuple[int, str | None]] = {}
        self._uses_lock = threading.Lock()
        # Bumped by every drop: a lookup that raced a revocation must not cache what it read before.
        self._revision = 0
        self._watchers: dict[str, set[Callable[[], None]]] = {}
        self._drop_lock = threading.Lock()  # orders a drop against a lookup's caching, guards watchers

    # -- the token endpoint -------------------------------------------------------------------
    def grant(self, params: Mapping[str, str], ip: str | None) -> dict[str, Any]:
        grant_type = params.get("grant_type") or ""
        if grant_type not in GRANTS:
            raise Invalid(
                f"grant_type must be one of {', '.join(GRANTS)} (got {grant_type[:50]!r})",
                code="unsupported_grant_type",
            )
        requested = scopes.parse(params.get("scope"))
        label = shown.label(params.get("label"))
        if grant_type == "refresh_token":
            return self._refresh(params, requested, ip, label)
        missing = [name for name in ("username", "password", "client_id") if not params.get(name)]
        if missing:
            raise Invalid(f"missing parameter(s): {', '.join(missing)}", code="invalid_request")
        user = self._accounts.login(params["username"], params["password"], ip)
        app = self._live_app(params["client_id"], user.id)
        if app is None:
            self._accounts.record_failure(params["username"], ip)
            raise Unauthenticated(BAD_CREDENTIALS, code="invalid_credentials")
        if grant_type == "pipe":
            return self._issue(user, app.id, "pipe", scopes.PIPE, refresh=False, label=label)
        return self._issue(user, app.id, "bearer", requested, refresh=True, label=label)

    def _refresh(
        self,
        params: Mapping[str, str],
        requested: tuple[scopes.Scope, ...],
        ip: str | None,
        label: str | None,
    ) -> dict[str, Any]:
        secret = params.get("refresh_token") or ""
        client_id = params.get("client_id") or ""
        if not secret or not client_id:
            raise Invalid(
                "grant_type=refresh_token needs refresh_token and client_id", code="invalid_request"
            )
        self._accounts.check_not_locked(None, ip)
        now = now_ms()
        with write_transaction(self._engine) as conn:
            row = store.get_by_hash(conn, hash_secret(secret))
            valid = (
                row is not None
                and row.kind == "refresh"
                and row.revoked_at is None
                and (row.expires_at is None or row.expires_at > now)
                and (row.app_id or "").upper() == client_id.upper()
            )
            if valid:
                assert row is not None
                app = apps.get(conn, row.app_id)
                valid = app is not None and app.revoked_at is None
            if valid:
                assert row is not None
                store.revoke(conn, row.id, now)  # refresh tokens rotate: each works once
                user = users.get(conn, row.user_id)
                valid = user is not None and not user.disabled
        if not valid:
            self._accounts.record_failure(None, ip)
            raise Unauthenticated(
                "the refresh token is unknown, used, expired or revoked", code="invalid_grant"
            )
        assert row is not None
        assert user is not None
        granted = scopes.narrow(requested, scopes.parse(row.scope))
        if not granted:
            raise Invalid("the requested scope is wider than the refresh token's", code="invalid_scope")
        # A refreshed token keeps the name the user gave the first one, unless given a new one.
        return self._issue(user, row.app_id, "bearer", granted, refresh=True, label=label or row.label)

    def _live_app(self, client_id: str, user_id: int) -> Row[Any] | None:
        with self._engine.connect() as conn:
            app = apps.get(conn, client_id.strip().upper())
        if app is None or app.user_id != user_id or app.revoked_at is not None:
            return None
        return app

    def _issue(
        self,
        user: Row[Any],
        app_id: str | None,
        kind: str,
        granted: tuple[scopes.Scope, ...],
        *,
        refresh: bool,
        label: str | None = None,
    ) -> dict[str, Any]:
        now = now_ms()
        secret = new_secret()
        scope_text = scopes.format(granted)
        answer: dict[str, Any] = {
            "access_token": secret,
            "token_type": "Pipe" if kind == "pipe" else "Bearer",
            "scope": scope_text,
        }
        token_id = new_uuid()
        with write_transaction(self._engine) as conn:
            expires = None if kind == "pipe" else now + self._settings.bearer_ttl * 1000
            store.create(
                conn,
                token_id=token_id,
                secret_hash=hash_secret(secret),
                kind=kind,
                scope=scope_text,
                user_id=user.id,
                app_id=app_id,
                created_at=now,
                expires_at=expires,
                label=label,
                prefix=shown.prefix(secret),
            )
            if expires is not None:
                answer["expires_in"] = self._settings.bearer_ttl
            if refresh:
                refresh_secret = new_secret()
                store.create(
                    conn,
                    token_id=new_uuid(),
                    secret_hash=hash_secret(refresh_secret),
                    kind="refresh",
                    scope=scope_text,
                    user_id=user.id,
                    app_id=app_id,
                    created_at=now,
                    expires_at=now + self._settings.refresh_ttl * 1000,
                    label=label,
                    prefix=shown.prefix(refresh_secret),
                )
                answer["refresh_token"] = refresh_secret
            self._audit.record(
                conn,
                user.email,
                "token.issue",
                target=token_id,
                detail={"kind": kind, "scope": scope_text, "appid": app_id, "refresh": refresh},
            )
        answer["extended"] = {
            "email": user.email,
            "identity": user.org,
            "identityname": user.org,
            "appid": app_id,
        }
        return answer

    def issue_for(
        self,
        user: Row[Any],
        app_id: str | None,
        kind: str,
        granted: tuple[scopes.Scope, ...],
        label: str | None = None,
    ) -> dict[str, Any]:
        """Issue a token without a password (the CLI, the console's logged-in user), with one of the
        user's own live API keys."""
        if app_id is None:
            raise Invalid("an API key (client_id) is needed", code="invalid_request")
        app = self._live_app(app_id, user.id)
        if app is None:
            raise NotFound(f"no API key {app_id[:64]!r} in {user.email}'s account", code="app_not_found")
        return self._issue(
            user,
            app.id,
            kind,
            scopes.PIPE if kind == "pipe" else granted,
            refresh=kind == "bearer",
            label=shown.label(label),
        )

    def open_session(self, user: Row[Any]) -> dict[str, Any]:
        """A console session: a bearer token with no API key and no refresh token. Logging out
        revokes it like any other token (GET /tokens lists it with `appid: null`)."""
        return self._issue(user, None, "bearer", scopes.ALL_ALL, refresh=False)

    # -- authentication -----------------------------------------------------------------------
    def cached(self, secret: str, ip: str | None) -> Principal | None:
        """The principal for `secret` from memory, or None when the database must be asked."""
        key = hash_secret(secret)
        entry = self._cache.get(key)
        if entry is None:
            return None
        principal, cached_at = entry
        if time.monotonic() - cached_at > self._settings.token_cache_ttl:
            return None
        if principal.expires_at is not None and principal.expires_at <= now_ms():
            self._cache.pop(key, None)
            raise Unauthenticated(_BAD_TOKEN, code="invalid_token")
        self._used(principal.token_id, ip)
        return principal

    def authenticate(self, secret: str, ip: str | None) -> Principal:
        """The principal for `secret`: from memory, else from the database (then cached)."""
        if not secret or len(secret) > 512:
            raise Unauthenticated(_BAD_TOKEN, code="invalid_token")
        principal = self.cached(secret, ip)
        if principal is not None:
            return principal
        key = hash_secret(secret)
        revision = self._revision
        with self._engine.connect() as conn:
            row = store.principal_by_hash(conn, key)
        now = now_ms()
        if (
            row is None
            or row.kind == "refresh"
            or row.revoked_at is not None
            or (row.expires_at is not None and row.expires_at <= now)
            or row.disabled
            or row.app_revoked_at is not None
        ):
            raise Unauthenticated(_BAD_TOKEN, code="invalid_token")
        principal = Principal(
            token_id=row.id,
            kind=row.kind,
            scopes=scopes.parse(row.scope),
            user_id=row.user_id,
            email=row.email,
            org=row.org,
            app_id=row.app_id,
            expires_at=row.expires_at,
            role=row.role,
        )
        with self._drop_lock:
            if len(self._cache) > 100_000:
                self._cache.clear()
            if revision == self._revision:
                self._cache[key] = (principal, time.monotonic())
        self._used(principal.token_id, ip)
        return principal

    def _used(self, token_id: str, ip: str | None) -> None:
        self._uses[token_id] = (now_ms(), ip)

    def flush_uses(self) -> int:
        """Write the remembered last-use times and IPs (batched: not a write per request)."""
        with self._uses_lock:
            uses, self._uses = self._uses, {}
        if uses:
            with write_transaction(self._engine) as conn:
                store.touch_many(conn, ((tid, at, ip) for tid, (at, ip) in uses.items()))
        return len(uses)

    # -- listing and revocation ---------------------------------------------------------------
    def list_for(self, principal: Principal) -> list[Row[Any]]:
        with self._engine.connect() as conn:
            return store.list_for_user(conn, principal.user_id, now_ms())

    def revoke_secret(self, secret: str) -> None:
        """Revoke the token with this secret (a console logout); unknown secrets are ignored."""
        key = hash_secret(secret)
        with write_transaction(self._engine) as conn:
            row = store.get_by_hash(conn, key)
            if row is not None and row.revoked_at is None:
                store.revoke(conn, row.id, now_ms())
                self.announce(conn, [key])
                self._audit.record(conn, _email(conn, row.user_id), "token.revoke", target=row.id,
                                   detail={"kind": row.kind, "by": "logout"})  # fmt: skip
        self.forget([key])

    def revoke(self, principal: Principal, token_id: str) -> Row[Any]:
        with write_transaction(self._engine) as conn:
            row = store.get(conn, token_id)
            if row is None or row.user_id != principal.user_id or row.revoked_at is not None:
                raise NotFound(f"no live token {token_id[:64]!r} in your account", code="token_not_found")
            store.revoke(conn, row.id, now_ms())
            self.announce(conn, [row.secret_hash])
            self._audit.record(
                conn, principal.email, "token.revoke", target=row.id, detail={"kind": row.kind}
            )
        self.forget([row.secret_hash])
        return row

    def forget(self, secret_hashes: Iterable[str]) -> None:
        """Drop tokens from this process's cache and wake the streams opened with them (revocation
        elsewhere arrives through here too). Safe from any thread."""
        keys = set(secret_hashes)
        with self._drop_lock:
            self._revision += 1
            for key in keys:
                self._cache.pop(key, None)
            woken = [wake for key in keys for wake in self._watchers.get(key, ())]
        for wake in woken:
            wake()

    def forget_all(self) -> None:
        with self._drop_lock:
            self._revision += 1
            self._cache.clear()
            woken = [wake for wakes in self._watchers.values() for wake in wakes]
        for wake in woken:
            wake()

    def watch(self, secret: str, wake: Callable[[], None]) -> Callable[[], None]:
        """Call `wake` (from whichever thread drops the token) whenever the token with this secret
        may have been revoked; the woken side asks `authenticate` again. Returns the undo."""
        key = hash_secret(secret)
        with self._drop_lock:
            self._watchers.setdefault(key, set()).add(wake)

        def unwatch() -> None:
            with self._drop_lock:
                wakes = self._watchers.get(key)
                if wakes is not None:
                    wakes.discard(wake)
                    if not wakes:
                        del self._watchers[key]

        return unwatch

    def announce(self, conn: Any, secret_hashes: list[str]) -> None:
        """Tell the other processes (PostgreSQL) to drop these tokens; sent when `conn` commits."""
        for key in secret_hashes:
            notify.announce(conn, NOTIFY_CHANNEL, key)


def _email(conn: Any, user_id: int) -> str:
    row = users.get(conn, user_id)
    return str(row.email) if row is not None else ""
