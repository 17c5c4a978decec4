"""Schemathesis against the app's own OpenAPI schema: no 5xx, and every answer as the schema documents it.

The schema is loaded from the in-process app (one per backend); each operation gets a bounded number
of schema-conforming and of schema-violating requests, carrying a bearer token with every scope (the
token-in-the-path write route gets a real pipe token). Generation is derandomized, so every run sends
the same requests, and nothing is shrunk, so a failure costs no extra time.

(Schemathesis' own pytest integration for fixture-built schemas, `schemathesis.pytest.from_fixture`,
does not run under pytest 9.2, so the operations are driven through Hypothesis here.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.schemas import OpenApiSchema

from sharelake.app import create_app
from sharelake.settings import Settings
from tests.helpers import PASSWORD

EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 15}  # per operation
STREAM = "/share/{recType}/stream"
STREAM_EXAMPLES = 6  # per mode: every call of the live stream lasts its whole timeout

# What is checked: no 5xx, and each answer's status, content type, headers and body as documented.
# (Whether the schema describes every request parameter's grammar as exactly as the app parses it —
# schemathesis' positive/negative acceptance checks — is not: Microshare's loose parameters, such as
# an empty `page=`, are documented in prose.)
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
CONFIG = schemathesis.Config.from_dict(
    {
        "request-timeout": 5,
        "max-stream-events": 1,
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        # A live stream never ends: each call takes what came within a second (a quarter second was
        # too little for a cold request on a loaded machine), so the stream gets fewer examples.
        "operations": [{"include-path": STREAM, "request-timeout": 1.0}],
    }
)


@dataclass
class Api:
    schema: OpenApiSchema
    bearer: str
    pipe: str


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    app = create_app(settings)
    lake = app.state.lake
    user = lake.accounts.create_user("fuzz@acme.com", PASSWORD)
    key = lake.apps.create(user.id, "schemathesis")
    bearer = str(lake.tokens.issue_for(user, key.id, "bearer", ())["access_token"])
    pipe = str(lake.tokens.issue_for(user, key.id, "pipe", ())["access_token"])
    try:
        yield Api(schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG), bearer, pipe)
    finally:
        shutdown_lifespans()  # closes the lake: its writer thread and database connections


def run_operation(api: Api, operation: Any, mode: GenerationMode) -> None:
    # Without a token almost every request would stop at 401: send the real one, generate the rest.
    fixed = {"token": api.pipe} if any(p.name == "token" for p in operation.path_parameters) else None
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed)

    @hypothesis.settings(
        max_examples=min(EXAMPLES[mode], STREAM_EXAMPLES) if operation.path == STREAM else EXAMPLES[mode],
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=strategy)
    def check(case: Any) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {api.bearer}"})

    try:
        check()
    except hypothesis.errors.Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE  # nothing in this operation's schema can be violated


def test_the_api_keeps_to_its_schema(api: Api, subtests: Any) -> None:
    operations = [result.ok() for result in api.schema.get_all_operations()]
    assert len(operations) > 40
    for operation in operations:
        for mode in EXAMPLES:
            with subtests.test(msg=f"{operation.label} ({mode.value})"):
                run_operation(api, operation, mode)
