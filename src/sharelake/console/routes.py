"""The console's router: each page module's routes under `/console` (app.py mounts it and STATIC)."""

from __future__ import annotations

from fastapi import APIRouter

from sharelake.console import weblogin
from sharelake.console.pages import account, alerts, clusters, data, devices, keys, robots, rules, tokens
from sharelake.console.web import STATIC, ConsoleRoute

__all__ = ["STATIC", "compat_router", "router"]

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
# A section added to `nav.SECTIONS` brings its page module here.
for page in (account, keys, tokens, data, rules, devices, clusters, robots, alerts):
    router.include_router(page.router, prefix="/console")

# Microshare's web-application login (`POST /login`), answered in JSON like the API.
compat_router = weblogin.router
