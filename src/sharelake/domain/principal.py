"""Who is calling: the token's owner, its key (app) and its scopes."""

from __future__ import annotations

from dataclasses import dataclass

from sharelake.domain import scopes as scope_rules
from sharelake.domain.errors import Forbidden
from sharelake.domain.scopes import Scope


@dataclass(frozen=True, slots=True)
class Principal:
    token_id: str
    kind: str  # bearer | pipe | refresh | robot
    scopes: tuple[Scope, ...]
    user_id: int
    email: str
    org: str
    app_id: str | None
    expires_at: int | None
    role: str = "member"

    def require(self, resource: str, operation: str) -> None:
        if not scope_rules.allows(self.scopes, resource, operation):
            raise Forbidden(
                f"this {self.kind} token's scope ({scope_rules.format(self.scopes)}) does not allow "
                f"{resource}:{operation}; request a token with that scope",
                code="insufficient_scope",
            )
