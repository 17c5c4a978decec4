"""Fixtures for the decoder tests: engine processes shared by the session, closed at its end.

`host` is the codecs' engine (QuickJS); `v8_host` is V8's, which robots' sandboxes and codec checks use.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sharelake.sandbox import JsHost


@pytest.fixture(scope="session")
def host() -> Iterator[JsHost]:
    engine = JsHost("quickjs")
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def v8_host() -> Iterator[JsHost]:
    engine = JsHost("v8")
    yield engine
    engine.close()
