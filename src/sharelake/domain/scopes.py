"""Token scopes: `RESOURCE:OPERATION` pairs, with `ALL` on either side matching anything."""

from __future__ import annotations

from typing import NamedTuple

from sharelake.domain.errors import Invalid

RESOURCES = frozenset(
    {"SHARE", "RULE", "ROBO", "DEVICE", "VIEW", "APP", "TOKEN", "ORG", "STREAM", "ALERT", "ALL"}
)
OPERATIONS = frozenset({"READ", "WRITE", "QUERY", "DELETE", "EXECUTE", "POLICY", "ALL"})


class Scope(NamedTuple):
    resource: str
    operation: str

    def __str__(self) -> str:
        return f"{self.resource}:{self.operation}"


ALL_ALL = (Scope("ALL", "ALL"),)
PIPE = (Scope("SHARE", "WRITE"),)


def parse(text: str | None) -> tuple[Scope, ...]:
    """`ALL:ALL`, `SHARE:READ,SHARE:WRITE` (commas or spaces) → scopes; empty means ALL:ALL."""
    if text is None or not text.strip():
        return ALL_ALL
    scopes: list[Scope] = []
    for part in text.replace(",", " ").split():
        resource, sep, operation = part.upper().partition(":")
        if not sep or resource not in RESOURCES or operation not in OPERATIONS:
            raise Invalid(
                f"scope {part!r} is not RESOURCE:OPERATION (resources: "
                f"{', '.join(sorted(RESOURCES))}; operations: {', '.join(sorted(OPERATIONS))})",
                code="invalid_scope",
            )
        scope = Scope(resource, operation)
        if scope not in scopes:
            scopes.append(scope)
    return tuple(scopes)


def format(scopes: tuple[Scope, ...]) -> str:
    return ",".join(str(s) for s in scopes)


def allows(scopes: tuple[Scope, ...], resource: str, operation: str) -> bool:
    return any(s.resource in (resource, "ALL") and s.operation in (operation, "ALL") for s in scopes)


def narrow(requested: tuple[Scope, ...], held: tuple[Scope, ...]) -> tuple[Scope, ...]:
    """The part of `requested` that `held` covers: a refreshed token never gains scope."""
    if held == ALL_ALL:
        return requested
    out = [s for s in requested if any(_covers(h, s) for h in held)]
    if requested == ALL_ALL:
        return held
    return tuple(out)


def _covers(held: Scope, wanted: Scope) -> bool:
    return held.resource in (wanted.resource, "ALL") and held.operation in (wanted.operation, "ALL")
