"""Length-prefixed JSON frames between an engine process and its host, the child's side of them.

Imported by the engine scripts (`_v8.py`, `_quickjs.py`) from their own directory, as they run without
the package on their path.
"""

from __future__ import annotations

import os
import struct
from typing import Any

import orjson

HEADER = struct.Struct(">I")


class Reader:
    """Frames from a file descriptor, read in large chunks."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buf = b""

    def frame(self) -> bytes | None:
        """The next frame's body; None once the other end has closed."""
        while True:
            if len(self._buf) >= HEADER.size:
                size = HEADER.size + HEADER.unpack_from(self._buf)[0]
                if len(self._buf) >= size:
                    body, self._buf = self._buf[HEADER.size : size], self._buf[size:]
                    return body
            chunk = os.read(self._fd, 65536)
            if not chunk:
                return None
            self._buf += chunk


def write(fd: int, message: list[Any]) -> None:
    body = orjson.dumps(message)
    data = memoryview(HEADER.pack(len(body)) + body)
    while data:
        data = data[os.write(fd, data) :]
