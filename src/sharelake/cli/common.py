"""What every command shares: settings, the lake, and one clear line on error."""

from __future__ import annotations

import atexit
import functools
import logging
import logging.handlers
import queue
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from sharelake.domain.errors import SharelakeError
from sharelake.services.lake import Lake
from sharelake.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


def setup_logging(level: int = logging.INFO) -> None:
    """Log lines go to stderr from a thread of their own: a request (the access log writes one line
    each) only queues its line, and never waits on the write in the event loop."""
    root = logging.getLogger()
    if root.handlers:  # configured already (as `logging.basicConfig` would leave it)
        return
    # HTTP clients log every request's URL at INFO, a pipe token in a path included.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(lines, stream)
    listener.start()
    atexit.register(listener.stop)  # what is queued is written before the process ends
    root.addHandler(logging.handlers.QueueHandler(lines))
    root.setLevel(level)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"SHARELAKE_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise click.ClickException(f"invalid settings: {problems}") from None


def open_lake() -> Lake:
    return Lake(load_settings())


def friendly(func: F) -> F:
    """Turn domain errors into `Error: <message>` and a non-zero exit."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SharelakeError as exc:
            raise click.ClickException(exc.message) from None

    return wrapper  # type: ignore[return-value]
