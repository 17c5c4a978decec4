"""A console user in the in-process client: takes each page's CSRF token and posts forms as a browser does."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.testclient import TestClient

from sharelake.console.session import SESSION_COOKIE
from sharelake.services.lake import Lake
from tests.helpers import PASSWORD

_CSRF = re.compile(r'name="csrf" value="([^"]*)"')


def csrf_of(page: str) -> str:
    match = _CSRF.search(page)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def by_testid(page: str, testid: str) -> list[str]:
    """The text of every element with this data-testid (unescaped)."""
    found = re.findall(rf'data-testid="{testid}"[^>]*>([^<]*)<', page)
    return [html.unescape(text) for text in found]


def field(page: str, name: str) -> str:
    """The value a form on the page holds for `name` (an input's value or a textarea's text)."""
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    if match is None:
        match = re.search(rf'<textarea[^>]* name="{name}"[^>]*>\n?([^<]*)</textarea>', page)
    assert match, f"no field {name!r} on the page"
    # A newline right after <textarea> is not part of the value (HTML drops it).
    return html.unescape(match.group(1))


def message(page: str) -> str:
    """The page's error or notice, unescaped."""
    match = re.search(r'class="(?:error|notice)" role="(?:alert|status)">([^<]*)<', page)
    assert match, "the page shows no message"
    return html.unescape(match.group(1))


@dataclass
class ConsoleUser:
    client: TestClient
    lake: Lake
    email: str = "me@acme.com"

    def create(self, org: str | None = None) -> ConsoleUser:
        self.lake.accounts.create_user(self.email, PASSWORD, org)
        return self

    def login(self, password: str = PASSWORD, **extra: str) -> httpx.Response:
        page = self.client.get("/console/login")
        data = {"email": self.email, "password": password, "csrf": csrf_of(page.text), **extra}
        return self.client.post("/console/login", data=data, follow_redirects=False)

    @property
    def session_secret(self) -> str | None:
        return self.client.cookies.get(SESSION_COOKIE)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(path, **kw)

    def submit(
        self, page_path: str, action: str, data: Mapping[str, str | list[str]], **kw: Any
    ) -> httpx.Response:
        """Open `page_path`, take its CSRF token and post `data` to `action`, as the page's form would."""
        page = self.client.get(page_path)
        assert page.status_code == 200, page.text
        return self.client.post(action, data={**data, "csrf": csrf_of(page.text)}, **kw)

    def create_app(self, name: str = "senet") -> str:
        response = self.submit("/console/keys", "/console/keys", {"name": name})
        assert response.status_code == 200, response.text
        return next(key for key in reversed(by_testid(response.text, "api-key")))

    def request_token(self, app_id: str, kind: str = "pipe", scope: str = "") -> httpx.Response:
        data = {"app_id": app_id, "kind": kind, "scope": scope}
        return self.submit("/console/tokens", "/console/tokens", data)
