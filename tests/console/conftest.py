"""Console fixtures: a user driving the console through the in-process client, and one with real mail."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from sharelake.services.lake import Lake
from tests.console.support import ConsoleUser
from tests.helpers import Tenant


@pytest.fixture
def user(client: TestClient, lake: Lake) -> ConsoleUser:
    """An account, not yet logged in."""
    return ConsoleUser(client, lake).create()


@pytest.fixture
def logged_in(user: ConsoleUser) -> ConsoleUser:
    response = user.login()
    assert response.status_code == 303, response.text
    return user


@pytest.fixture
def me(make_tenant: Callable[..., Tenant]) -> Tenant:
    """me@acme.com through the API (a key and a token), to set up and check what the console does."""
    return make_tenant("me@acme.com")


@pytest.fixture
def my_console(me: Tenant, client: TestClient, lake: Lake) -> ConsoleUser:
    """The same me@acme.com, logged in to the console."""
    user = ConsoleUser(client, lake, me.email)
    assert user.login().status_code == 303
    return user
