"""Test helpers shared by the suites: a tenant acting through the HTTP API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.testclient import TestClient

PASSWORD = "correct horse battery"


@dataclass
class Tenant:
    """A user with an API key and a password token, acting through the HTTP API."""

    client: TestClient
    email: str
    org: str
    app_id: str
    token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def grant(self, grant_type: str = "password", **extra: str) -> dict[str, Any]:
        params = {
            "username": self.email,
            "password": PASSWORD,
            "client_id": self.app_id,
            "grant_type": grant_type,
            **extra,
        }
        response = self.client.post("/oauth2/token", params=params)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def pipe_token(self) -> str:
        token: str = self.grant("pipe")["access_token"]
        return token

    def post(self, rec_type: str, body: Any, token: str | None = None, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return self.client.post(f"/share/{rec_type}", json=body, headers=headers, **kw)

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers=self.headers, **kw)
