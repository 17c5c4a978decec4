"""Per-token write limits: a token bucket each, refusing (429) rather than silently dropping."""

from __future__ import annotations

import time

from sharelake.domain.errors import RateLimited


class TokenBuckets:
    def __init__(self, rate: float, *, burst: float) -> None:
        self._rate = rate
        self._burst = max(burst, 1.0)
        self._buckets: dict[str, tuple[float, float]] = {}  # token id → (level, last refill)

    def take(self, key: str, amount: int = 1) -> None:
        """Spend `amount` from `key`'s bucket, or raise RateLimited saying when to retry (and spend nothing)."""
        now = time.monotonic()
        level, last = self._buckets.get(key, (self._burst, now))
        level = min(self._burst, level + (now - last) * self._rate)
        # A batch bigger than the burst passes when the bucket is full and leaves it in debt, so a
        # large array body is slowed, never refused for ever.
        needed = min(amount, self._burst)
        if needed > level:
            wait = (needed - level) / self._rate
            self._buckets[key] = (level, now)
            raise RateLimited(
                f"this token may write {self._rate:g} records per second; retry in {wait:.1f} s",
                retry_after=int(wait) + 1,
                code="ingest_rate_limited",
            )
        self._buckets[key] = (level - amount, now)
        if len(self._buckets) > 100_000:
            self._buckets.clear()
