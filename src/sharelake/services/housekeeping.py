"""Housekeeping: forget what can no longer matter — used links, old failed logins, long-dead tokens, an
old audit trail — and expire records past their retention. The worker runs it at its interval."""

from __future__ import annotations

import logging

from sqlalchemy import Engine

from sharelake.domain.clock import now_ms
from sharelake.services.retention import Retention
from sharelake.settings import Settings
from sharelake.storage import audit, throttle, tokens, verifications
from sharelake.storage.engine import write_transaction

log = logging.getLogger(__name__)
DAY_MS = 24 * 3600 * 1000
AUDIT_DAYS = 400  # the audit log keeps a bit more than a year
DEAD_TOKEN_DAYS = 7  # tokens revoked or expired this long ago are forgotten


class Housekeeping:
    def __init__(self, engine: Engine, settings: Settings, retention: Retention) -> None:
        self._engine = engine
        self._settings = settings
        self._retention = retention

    def run(self) -> dict[str, int]:
        """What was removed, by kind."""
        now = now_ms()
        with write_transaction(self._engine) as conn:
            done = {
                "verifications": verifications.delete_expired(conn, now),
                "auth_failures": throttle.delete_older(conn, now - self._longest_window_ms()),
                "tokens": tokens.delete_dead(conn, now - DEAD_TOKEN_DAYS * DAY_MS),
                "audit": audit.delete_older(conn, now - AUDIT_DAYS * DAY_MS),
            }
        done["records (retention)"] = self._retention.expire()
        if any(done.values()):
            log.info("housekeeping removed %s", done)
        return done

    def _longest_window_ms(self) -> int:
        # Failed logins older than the longest rate-limit window count towards no lock any more.
        return max(self._settings.login_window, self._settings.signup_window) * 1000
