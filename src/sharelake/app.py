"""`create_app(settings)`: the whole HTTP application, built from settings alone (no globals)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from sharelake import __version__
from sharelake.api import errors, openapi
from sharelake.api.access_log import AccessLog
from sharelake.api.deps import PUBLIC
from sharelake.api.routes import (
    account,
    alerts,
    apps,
    auth,
    devices,
    export,
    health,
    inventory,
    metrics,
    robots,
    rollups,
    rules,
    share,
    stream,
    streams,
    tokens,
    views,
)
from sharelake.console import routes as console
from sharelake.services.lake import Lake
from sharelake.settings import Settings
from sharelake.sources.http import IngestDoor
from sharelake.web.context import ClientContext
from sharelake.web.head import HeadAsGet
from sharelake.web.limits import BodyLimit, CleanUrl
from sharelake.worker import Worker

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"

DESCRIPTION = """\
A self-hosted IoT data lake. The share API is compatible with Microshare's: point a network server,
a Postman collection or a script written for Microshare at this host and it works.

Authenticate with `POST /oauth2/token`, then send `Authorization: Bearer <token>` on every call.
Errors are always `{"error": {"code", "message"}}`.
"""


def create_app(settings: Settings | None = None, *, worker: bool | None = None) -> FastAPI:
    """Open (and migrate) the database and build the app. `worker` overrides `settings.worker`."""
    settings = settings or Settings()
    lake = Lake(settings)
    run_worker = settings.worker if worker is None else worker

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        lake.start_listening()
        stop = asyncio.Event()
        tasks = [asyncio.create_task(_flush_token_uses(lake, stop))]
        if run_worker:
            tasks.append(asyncio.create_task(Worker(lake).run(stop)))
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.to_thread(lake.close)

    app = SharelakeApp(
        title="sharelake",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.lake = lake
    app.state.trusted_proxies = frozenset(p.strip() for p in settings.trusted_proxies.split(",") if p.strip())
    errors.install(app)
    # stream and export before share: their paths would otherwise match /share/{recType}/{id}.
    for module in (
        auth,
        apps,
        tokens,
        stream,
        export,
        rollups,
        share,
        rules,
        devices,
        inventory,
        robots,
        views,
        streams,
        alerts,
        account,
        health,
        metrics,
    ):
        app.include_router(module.router)
    app.include_router(console.router)
    app.include_router(console.compat_router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/console/static", StaticFiles(directory=console.STATIC), name="console-static")

    @app.get("/docs", include_in_schema=False, dependencies=[PUBLIC])
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="sharelake API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )

    openapi.install(app)
    app.add_middleware(BodyLimit, max_body=settings.max_body)
    app.add_middleware(CleanUrl)
    app.add_middleware(HeadAsGet)
    app.add_middleware(ClientContext, trusted=app.state.trusted_proxies)
    trusted = app.state.trusted_proxies
    app.front = AccessLog(
        IngestDoor(app.dispatch, lake, trusted), lake.metrics, trusted, enabled=settings.access_log
    )
    return app


class SharelakeApp(FastAPI):
    """FastAPI behind a front: the access log, then the door where the write path is answered
    (before FastAPI's own middleware stack)."""

    front: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.front(scope, receive, send)

    async def dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)


async def _flush_token_uses(lake: Lake, stop: asyncio.Event, every: float = 5.0) -> None:
    """Last-use times and IPs go to the database in batches, not one write per request."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)
        try:
            await asyncio.to_thread(lake.tokens.flush_uses)
        except Exception:
            log.exception("could not record token uses; will retry")
