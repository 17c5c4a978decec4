"""Log lines to stderr without holding up the event loop: a request (the access log writes one line each)
only formats its line and appends it to a list; a thread of its own writes what gathered, in one write,
ten times a second. A Python-level handler thread would take the GIL from the loop for every line."""

from __future__ import annotations

import atexit
import logging
import threading
import time
import traceback
from typing import TextIO

FLUSH_EVERY = 0.1  # seconds


class BatchedLines(logging.Handler):
    """`2026-12-03 18:27:01,234 INFO name: message` lines, written in batches."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self._stream = stream
        self._lines: list[str] = []
        self._second = -1
        self._stamp = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sharelake-log", daemon=True)
        self._thread.start()
        atexit.register(self.flush)  # what gathered is written before the process ends

    def emit(self, record: logging.LogRecord) -> None:
        try:
            second = int(record.created)
            if second != self._second:  # the date and time are formatted once a second
                self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
                self._second = second
            millis = int((record.created - second) * 1000)
            line = f"{self._stamp},{millis:03d} {record.levelname} {record.name}: {record.getMessage()}\n"
            if record.exc_info:
                line += "".join(traceback.format_exception(*record.exc_info))
            self._lines.append(line)  # one step under the GIL: no lock needed against the writer
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        lines, self._lines = self._lines, []
        if lines:
            self._stream.write("".join(lines))
            self._stream.flush()

    def close(self) -> None:
        # Only a flush: uvicorn's logging setup closes the handlers it finds, and lines keep coming.
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_EVERY):
            try:
                self.flush()
            except Exception:  # a closed stream: nothing more can be written
                return
