"""Accounts: sign-up by e-mailed link, verification, password login with failure limits."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Connection, Engine, Row

from sharelake.domain import accounts as rules
from sharelake.domain.clock import now_ms
from sharelake.domain.errors import Forbidden, Invalid, RateLimited, Unauthenticated
from sharelake.domain.principal import Principal
from sharelake.domain.secrets import hash_secret, new_secret, new_uuid
from sharelake.services.audit import Audit
from sharelake.services.mail import Mailer
from sharelake.services.passwords import Passwords
from sharelake.settings import Settings
from sharelake.storage import throttle, users, verifications
from sharelake.storage.engine import write_transaction

log = logging.getLogger(__name__)

BAD_CREDENTIALS = "username, password or client_id is wrong"


class Accounts:
    def __init__(
        self, engine: Engine, settings: Settings, passwords: Passwords, mailer: Mailer, audit: Audit
    ) -> None:
        self._engine = engine
        self._audit = audit
        self._settings = settings
        self._passwords = passwords
        self._mailer = mailer

    # -- sign-up ------------------------------------------------------------------------------
    def signup(self, email: str, org: str | None, base_url: str, ip: str | None = None) -> str:
        """Mail a single-use link that sets the password. The same answer whether or not the
        account exists (for an existing account the link sets a new password). Limited per address
        and per client, so nobody floods a mailbox through us."""
        email = rules.normalize_email(email)
        org = rules.normalize_org(org) if org else rules.default_org(email)
        self._limit_mail(email, ip)
        with self._engine.connect() as conn:
            existing = users.get_by_email(conn, email)
        if existing is not None and existing.verified_at:
            purpose, subject = "reset", "Set a new sharelake password"
            intro = (
                "Someone (hopefully you) asked to sign up with this address, which already has an account."
            )
        else:
            purpose, subject = "signup", "Confirm your sharelake account"
            intro = "Welcome to sharelake. Confirm this address and choose a password:"
        self._mail_link(email, org, purpose, base_url, subject, intro)
        return email

    def invite(self, principal: Principal, org: str, email: str, base_url: str) -> str:
        """An org admin mails someone a link that joins them to the org (creating their account if
        needed). The link works like a sign-up link."""
        org = rules.normalize_org(org)
        if principal.org != org or principal.role != "admin":
            raise Forbidden(f"only an admin of {org} may invite into it", code="not_org_admin")
        email = rules.normalize_email(email)
        self._limit_mail(email, None)
        intro = (
            f"{principal.email} invites you to join the organisation {org} on sharelake. Accept by choosing "
            "your password (if you already have an account, accepting moves it into this organisation):"
        )
        self._mail_link(email, org, "invite", base_url, f"Join {org} on sharelake", intro)
        with write_transaction(self._engine) as conn:
            self._audit.record(conn, principal.email, "org.invite", target=email, detail={"org": org})
        return email

    def _limit_mail(self, email: str, ip: str | None) -> None:
        """429 past the sign-up limits; otherwise count this request."""
        settings = self._settings
        limits = [(f"signup-email:{email}", settings.signup_max_per_email)]
        if ip:
            limits.append((f"signup-ip:{ip}", settings.signup_max_per_ip))
        now = now_ms()
        window = settings.signup_window * 1000
        with write_transaction(self._engine) as conn:
            throttle.lock(conn, [key for key, _ in limits])  # count and add as one step, as logins do
            for key, limit in limits:
                count, oldest = throttle.window(conn, key, now - window)
                if count >= limit and oldest is not None:
                    retry = (oldest + window - now) // 1000 + 1
                    raise RateLimited(
                        f"too many sign-up requests; try again in {retry} seconds",
                        retry_after=retry,
                        code="too_many_signups",
                    )
            throttle.record(conn, [key for key, _ in limits], now)

    def _mail_link(self, email: str, org: str, purpose: str, base_url: str, subject: str, intro: str) -> None:
        """Store a single-use, expiring link and mail it; if the mail cannot go, the link is deleted."""
        secret = new_secret()
        now = now_ms()
        verification_id = new_uuid()
        with write_transaction(self._engine) as conn:
            verifications.create(
                conn,
                verification_id=verification_id,
                secret_hash=hash_secret(secret),
                purpose=purpose,
                email=email,
                org=org,
                created_at=now,
                expires_at=now + self._settings.verify_ttl * 1000,
            )
        link = f"{(self._settings.public_url or base_url).rstrip('/')}/console/verify?token={secret}"
        hours = max(1, self._settings.verify_ttl // 3600)
        body = (
            f"{intro}\n\n{link}\n\n"
            f"The link works once and expires in {hours} hour{'s' if hours != 1 else ''}.\n"
            f'API clients can instead POST {{"token": "{secret}", "password": "..."}} to /auth/verify.\n\n'
            "If you did not ask for this, ignore this mail: nothing changes without the link.\n"
        )
        try:
            self._mailer.send(email, subject, body)
        except Exception:
            with write_transaction(self._engine) as conn:
                verifications.delete(conn, verification_id)
            raise

    def verify(self, secret: str, password: str) -> Row[Any]:
        """Use an e-mailed link: create (or update) the account with this password."""
        rules.check_password(password, min_length=self._settings.password_min_length)
        now = now_ms()
        with write_transaction(self._engine) as conn:
            link = verifications.get_by_hash(conn, hash_secret(secret))
            if link is None or link.used_at is not None or link.expires_at <= now:
                raise Invalid(
                    "this verification link is invalid, expired or already used; sign up again for a new one",
                    code="invalid_verification",
                )
            if not verifications.consume(conn, link.id, now):
                raise Invalid("this verification link was already used", code="invalid_verification")
            password_hash = self._passwords.hash(password)
            user = users.get_by_email(conn, link.email)
            invited = link.purpose == "invite"
            if user is None:
                user_id = users.create(
                    conn,
                    email=link.email,
                    org=link.org or rules.default_org(link.email),
                    password_hash=password_hash,
                    verified_at=now,
                    created_at=now,
                    role="member" if invited else None,
                )
            else:
                user_id = user.id
                changes: dict[str, Any] = {
                    "password_hash": password_hash,
                    "verified_at": user.verified_at or now,
                }
                if invited and link.org and link.org != user.org:  # accepting an invitation joins the org
                    changes.update(org=link.org, role="member")
                users.update_(conn, user_id, **changes)
                throttle.clear(conn, f"acct:{link.email}")
            row = users.get(conn, user_id)
            assert row is not None
            action = {"signup": "account.create", "reset": "password.set", "invite": "org.join"}[link.purpose]
            self._audit.record(conn, row.email, action if user is None or invited else "password.set",
                               detail={"org": row.org})  # fmt: skip
        return row

    # -- direct creation (CLI, tests) ---------------------------------------------------------
    def create_user(self, email: str, password: str, org: str | None = None) -> Row[Any]:
        email = rules.normalize_email(email)
        org = rules.normalize_org(org) if org else rules.default_org(email)
        rules.check_password(password, min_length=self._settings.password_min_length)
        now = now_ms()
        with write_transaction(self._engine) as conn:  # an existing account: Conflict, from storage
            user_id = users.create(
                conn,
                email=email,
                org=org,
                password_hash=self._passwords.hash(password),
                verified_at=now,
                created_at=now,
            )
            row = users.get(conn, user_id)
        assert row is not None
        return row

    def get_by_email(self, email: str) -> Row[Any] | None:
        with self._engine.connect() as conn:
            return users.get_by_email(conn, rules.normalize_email(email))

    # -- login --------------------------------------------------------------------------------
    def _login_limits(self, email: str | None, ip: str | None) -> list[tuple[str, int]]:
        limits = []
        if email:
            limits.append((f"acct:{email.strip().lower()[:254]}", self._settings.login_max_failures_account))
        if ip:
            limits.append((f"ip:{ip}", self._settings.login_max_failures_ip))
        return limits

    def _refuse_if_over(self, conn: Connection, limits: list[tuple[str, int]], now: int) -> None:
        window = self._settings.login_window * 1000
        for key, limit in limits:
            failures, oldest = throttle.window(conn, key, now - window)
            if failures >= limit and oldest is not None:
                # Whole seconds, rounded up; bounded, as another server's clock may run a little ahead.
                retry = min(max(1, -(-(oldest + window - now) // 1000)), self._settings.login_window)
                raise RateLimited(
                    f"too many failed attempts; try again in {retry} seconds",
                    retry_after=retry,
                    code="too_many_attempts",
                )

    def check_not_locked(self, email: str | None, ip: str | None) -> None:
        """429 while an account or an IP is over its failed-login limit (even for right passwords)."""
        with self._engine.connect() as conn:
            self._refuse_if_over(conn, self._login_limits(email, ip), now_ms())

    def record_failure(self, email: str | None, ip: str | None) -> None:
        keys = [key for key, _ in self._login_limits(email, ip)]
        if keys:
            with write_transaction(self._engine) as conn:
                throttle.record(conn, keys, now_ms())
                user = users.get_by_email(conn, email.strip().lower()) if email else None
                if user is not None:  # only an existing account has a log to write to
                    self._audit.record(conn, user.email, "login.failed", actor=None)

    def _reserve_attempt(self, email: str, ip: str | None) -> list[int]:
        """429 when over a limit; else count this attempt as a failure now, before it is evaluated.

        Checking and counting in one locked transaction is what holds a concurrent burst to the
        limit: checking first and counting after the (slow) password check would let every attempt
        of the burst pass the check. The reservation is given back if the password turns out right.
        Refusing looks at no account, so a refusal takes the same time whether or not one exists.
        """
        limits = self._login_limits(email, ip)
        with write_transaction(self._engine) as conn:
            throttle.lock(conn, [key for key, _ in limits])
            now = now_ms()  # read under the lock, so the failures counted before are not later than it
            self._refuse_if_over(conn, limits, now)
            return throttle.record(conn, [key for key, _ in limits], now)

    def login(self, email: str, password: str, ip: str | None) -> Row[Any]:
        """The verified, enabled user with this e-mail and password; else Unauthenticated.

        Takes the same time whether or not the account exists.
        """
        reserved = self._reserve_attempt(email, ip)
        # Anything raised from here on leaves the reservation standing: an attempt that could not be
        # evaluated counts as failed, never as free.
        try:
            normalized = rules.normalize_email(email)
        except Invalid:
            normalized = None
        user = None
        if normalized is not None:
            with self._engine.connect() as conn:
                user = users.get_by_email(conn, normalized)
        ok = self._passwords.verify(user.password_hash if user is not None else None, password)
        if not ok or user is None or not user.verified_at or user.disabled:
            with write_transaction(self._engine) as conn:
                # The reserved failure now counts from its outcome. This write is also what keeps a
                # failure for an unknown address as costly as one for an account, which adds only
                # its audit row to the same commit.
                throttle.restamp(conn, reserved, now_ms())
                if user is not None:
                    self._audit.record(conn, user.email, "login.failed", actor=None)
            raise Unauthenticated(BAD_CREDENTIALS, code="invalid_credentials")
        rehashed = (
            self._passwords.hash(password) if self._passwords.needs_rehash(user.password_hash) else None
        )
        with write_transaction(self._engine) as conn:
            throttle.forget(conn, reserved)  # a success is not a failure (nor does it clear earlier ones)
            if rehashed is not None:
                users.update_(conn, user.id, password_hash=rehashed)
        return user
