"""Fixtures for the decoder tests: one JavaScript engine process shared by the session, closed at its end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sharelake.decoders.sandbox import JsHost


@pytest.fixture(scope="session")
def host() -> Iterator[JsHost]:
    engine = JsHost()
    yield engine
    engine.close()
