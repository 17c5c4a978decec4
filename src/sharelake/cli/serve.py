"""`sharelake serve` and `sharelake worker`."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import click
import uvicorn

from sharelake.api import http11
from sharelake.app import create_app
from sharelake.cli.common import friendly, load_settings, open_lake, setup_logging
from sharelake.worker import Worker


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--no-worker", is_flag=True, help="API and console only; run `sharelake worker` elsewhere.")
@click.option(
    "--access-log/--no-access-log",
    default=None,
    help="Log one line per request (default: SHARELAKE_ACCESS_LOG, which is on).",
)
@friendly
def serve(host: str, port: int, no_worker: bool, access_log: bool | None) -> None:
    """Serve the API and the console (and run the worker) on one process."""
    setup_logging()
    settings = load_settings()
    if settings.env == "production":
        problems = settings.problems_for_production()
        if problems:
            raise click.ClickException("refusing to start in production: " + "; ".join(problems))
    if access_log is not None:  # the flag overrides the setting only when given
        settings.access_log = access_log
    app = create_app(settings, worker=False if no_worker else None)
    click.echo(f"sharelake serving http://{host}:{port} (API docs at /docs, console at /console)", err=True)
    # sharelake writes its own access log (JSON, token ids, no secrets from paths): uvicorn's is off.
    uvicorn.run(
        app,
        host=host,
        port=port,
        http=http11.protocol(settings.request_timeout),  # bounded headers, a request deadline
        access_log=False,
        log_level="info",
        proxy_headers=False,
    )


@click.command()
@click.option("--interval", default=60.0, show_default=True, help="Seconds between housekeeping rounds.")
@friendly
def worker(interval: float) -> None:
    """Run the background worker alone (for scale-out beside `serve --no-worker`)."""
    setup_logging()
    lake = open_lake()
    lake.start_listening()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        click.echo("sharelake worker running (Ctrl-C to stop)", err=True)
        await Worker(lake, interval=interval).run(stop)

    try:
        asyncio.run(main())
    finally:
        lake.close()
