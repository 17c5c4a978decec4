"""Shared constants for the decoder tests."""

from __future__ import annotations

from datetime import UTC, datetime

RECV_TIME = datetime(2024, 5, 14, 9, 21, 37, 431000, tzinfo=UTC)
