"""The server's log lines: formatted in the caller, written in batches by a thread of their own, and still
written after uvicorn's logging setup closes the handlers it finds."""

from __future__ import annotations

import io
import logging
import time

from sharelake.cli.logs import BatchedLines


def test_lines_are_written_in_batches_and_survive_a_close() -> None:
    out = io.StringIO()
    handler = BatchedLines(out)
    log = logging.getLogger("sharelake.test.batched")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("first %s", "line")
        handler.close()  # what logging.config.dictConfig does to the handlers it finds
        log.warning("second")
        deadline = time.monotonic() + 5
        while out.getvalue().count("\n") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        first, second = out.getvalue().splitlines()
        assert first.endswith(" WARNING sharelake.test.batched: first line")
        assert first[:4].isdigit()
        assert first[19] == ","  # 2026-12-03 18:27:01,234
        assert second.endswith(": second")
    finally:
        log.removeHandler(handler)
