"""The failed-login limits hold under concurrent bursts: no more attempts are evaluated than the limit,
within one process and across processes sharing the database."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.testclient import TestClient

from sharelake.app import create_app
from sharelake.domain.errors import RateLimited, Unauthenticated
from sharelake.services.lake import Lake
from sharelake.settings import Settings
from tests.helpers import PASSWORD, Tenant

BURST = 40
Attempt = Callable[[], Any]  # a request through a test client, answering its response


def _burst(attempts: list[Attempt]) -> list[Any]:
    """Run every attempt at once, from its own thread, released together."""
    start = threading.Barrier(len(attempts))

    def run(attempt: Attempt) -> Any:
        start.wait()
        return attempt()

    with ThreadPoolExecutor(len(attempts)) as pool:
        return list(pool.map(run, attempts))


def _guess(client: TestClient, tenant: Tenant, username: str | None = None) -> Attempt:
    params = {
        "username": username or tenant.email,
        "password": "a wrong guess",
        "client_id": tenant.app_id,
        "grant_type": "password",
    }
    return lambda: client.post("/oauth2/token", params=params)


def _check_refused(responses: list[Any], limit: int) -> None:
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {401, 429}, statuses
    assert statuses[401] <= limit, statuses  # each 401 is one password evaluated
    for refused in (r for r in responses if r.status_code == 429):
        assert refused.json()["error"]["code"] == "too_many_attempts"
        assert 1 <= int(refused.headers["retry-after"]) <= 15 * 60


def test_a_concurrent_burst_is_evaluated_at_most_limit_times(tenant: Tenant) -> None:
    responses = _burst([_guess(tenant.client, tenant)] * BURST)
    _check_refused(responses, limit=10)
    assert sum(r.status_code == 401 for r in responses) == 10  # nothing else held the limit back
    locked = tenant.client.post(
        "/oauth2/token",
        params={
            "username": tenant.email,
            "password": PASSWORD,
            "client_id": tenant.app_id,
            "grant_type": "password",
        },
    )
    assert locked.status_code == 429


def test_the_per_address_limit_holds_for_a_burst_over_many_accounts(
    settings_factory: Callable[..., Settings], make_tenant: Callable[..., Tenant]
) -> None:
    tenant = make_tenant()
    with TestClient(create_app(settings_factory(login_max_failures_ip=10))) as client:
        names = [f"guess{i}@acme.com" for i in range(BURST)]
        responses = _burst([_guess(client, tenant, name) for name in names])
    _check_refused(responses, limit=10)


def test_two_processes_on_one_database_share_the_limit(
    settings: Settings, make_tenant: Callable[..., Tenant]
) -> None:
    tenant = make_tenant()
    # A second app on the same database: its own engine and pool, as another server process has.
    with TestClient(create_app(settings)) as other:
        attempts = [_guess(tenant.client, tenant), _guess(other, tenant)] * (BURST // 2)
        responses = _burst(attempts)
    _check_refused(responses, limit=10)


def test_console_log_ins_share_the_limit(lake: Lake, tenant: Tenant) -> None:
    """The console's log-in calls the same service; a burst there is held to the limit as well."""

    def attempt() -> str:
        try:
            lake.accounts.login(tenant.email, "a wrong guess", "192.0.2.7")
        except Unauthenticated:
            return "evaluated"
        except RateLimited:
            return "refused"
        return "logged in"

    start = threading.Barrier(BURST)

    def run(_: int) -> str:
        start.wait()
        return attempt()

    with ThreadPoolExecutor(BURST) as pool:
        outcomes = Counter(pool.map(run, range(BURST)))
    assert outcomes == {"evaluated": 10, "refused": BURST - 10}


def test_a_success_is_not_counted_as_a_failure(tenant: Tenant, lake: Lake) -> None:
    """An attempt is counted before it is evaluated; a right password gives the count back."""
    for _ in range(9):
        assert _guess(tenant.client, tenant)().status_code == 401
    for _ in range(5):
        assert tenant.grant()["token_type"] == "Bearer"
    assert _guess(tenant.client, tenant)().status_code == 401  # the tenth failure: still evaluated
    assert _guess(tenant.client, tenant)().status_code == 429


def test_a_locked_account_and_a_locked_unknown_address_are_refused_alike(tenant: Tenant) -> None:
    """Refusing looks at no account: the 429 for an account and for an address without one match."""
    refused = {}
    for username in (tenant.email, "nobody@acme.com"):
        for _ in range(10):
            assert _guess(tenant.client, tenant, username)().status_code == 401
        answer = _guess(tenant.client, tenant, username)()
        assert answer.status_code == 429
        refused[username] = (answer.json()["error"]["code"], sorted(answer.headers))
    assert refused[tenant.email] == refused["nobody@acme.com"]


def test_a_burst_of_sign_ups_mails_at_most_the_limit(mail_client: tuple[TestClient, Any]) -> None:
    """The sign-up mail limit is counted and checked as one step too (a mail bomb otherwise)."""
    client, inbox = mail_client
    limit = client.app.state.lake.settings.signup_max_per_email  # type: ignore[attr-defined]
    responses = _burst([lambda: client.post("/auth/signup", json={"email": "target@acme.com"})] * 20)
    statuses = Counter(r.status_code for r in responses)
    assert statuses[200] == limit, statuses
    assert statuses[429] == 20 - limit, statuses
    assert len(inbox.messages) == limit
