"""What every command shares: settings, the lake, and one clear line on error."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from sharelake.cli.logs import BatchedLines
from sharelake.domain.errors import SharelakeError
from sharelake.services.lake import Lake
from sharelake.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


def setup_logging(level: int = logging.INFO) -> None:
    """Log lines go to stderr in batches (`cli.logs`): a request's access-log line costs the event
    loop its formatting only."""
    root = logging.getLogger()
    if root.handlers:  # configured already (as `logging.basicConfig` would leave it)
        return
    # HTTP clients log every request's URL at INFO, a pipe token in a path included.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    root.addHandler(BatchedLines(sys.stderr))
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
