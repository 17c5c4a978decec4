"""The OpenAPI schema: FastAPI's, plus the hand-documented Starlette write routes."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from sharelake.domain.records import REC_TYPE_PATTERN, RECORD_ID_PATTERN

_ERROR = {
    "description": "Error",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "error": {
                        "type": "object",
                        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                        "required": ["code", "message"],
                    }
                },
                "required": ["error"],
            }
        }
    },
}

_ENVELOPE = {
    "description": "The stored records, in Microshare's envelope (short objects)",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "meta": {"type": "object"},
                    "objs": {"type": "array", "items": {"type": "object"}},
                },
                "required": ["meta", "objs"],
            }
        }
    },
}


def _write(summary: str, extra_params: list[dict[str, Any]], secured: bool = True) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "tags": ["share"],
        "summary": summary,
        "description": (
            "The body is stored as the record's `data`: one JSON object, or an array of objects (one record "
            "each). Network-server uplinks (Senet, The Things Stack, ChirpStack, …) are recognised by shape "
            "and gain a read-only `uplink` object; repeats of one radio frame are stored once, and answer "
            'with the first record\'s short object marked `"duplicate": true` (`meta.duplicates` counts '
            "them). A key repeated in one object keeps its last value. Answers after the record is committed."
        ),
        "parameters": [
            {
                "name": "recType",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "maxLength": 255},
            },
            *extra_params,
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"type": "object"},
                            {"type": "array", "items": {"type": "object"}, "minItems": 1},
                        ]
                    }
                }
            },
        },
        "responses": {
            "200": _ENVELOPE,
            **{code: _ERROR for code in ("400", "401", "403", "413", "503")},
        },
    }
    if secured:
        operation["security"] = [{"bearer": []}]
    return operation


# Path parameters documented with the grammar the domain checks them against, so a client (and a
# schema-driven fuzzer) knows what a valid one looks like. The checks stay in the domain: a wrong one
# is still the domain's 400 (or 404 for an id), not a 422 from the framework.
_REC_TYPE = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": f"^{REC_TYPE_PATTERN}$"}
_ANY_REC_TYPE = {**_REC_TYPE, "pattern": f"^(?:\\*|{REC_TYPE_PATTERN})$", "description": "`*`: every recType"}
_ID = {"type": "string", "pattern": f"^{RECORD_ID_PATTERN}$"}
_UUID = {
    "type": "string",
    "pattern": "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$",
}
_DOCUMENTS = ("/rule/", "/device/", "/robo/", "/view/")  # `*` as recType: all of them


def _refine(path: str, method: str, operation: dict[str, Any]) -> None:
    """Every error in its one shape (FastAPI's own 422 schema is not what the API sends), and path
    parameters with their grammar."""
    responses = operation.setdefault("responses", {})
    if "422" in responses:
        responses["422"] = _ERROR
    responses.setdefault("default", _ERROR)
    for parameter in operation.get("parameters", []):
        if parameter["in"] != "path":
            continue
        name = parameter["name"]
        if name == "recType":
            star = path.startswith(_DOCUMENTS) and not (method == "post" and path.count("/") == 2)
            parameter["schema"] = _ANY_REC_TYPE if star else _REC_TYPE
        elif name == "id":
            parameter["schema"] = _ID
        elif name in ("app_id", "token_id"):
            parameter["schema"] = _UUID


def install(app: FastAPI) -> None:
    def schema() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        paths = spec.setdefault("paths", {})
        paths.setdefault("/share/{recType}", {})["post"] = _write(
            "Store a record (or an array of records)", []
        )
        paths.setdefault("/share/{recType}/tags/{tags}", {})["post"] = _write(
            "Store a record with tags (one path segment per tag)",
            [{"name": "tags", "in": "path", "required": True, "schema": {"type": "string"}}],
        )
        paths.setdefault("/share/{recType}/token/{token}", {})["post"] = _write(
            "Store a record, the token in the path (for senders that cannot set headers)",
            [{"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}],
            secured=False,
        )
        for path, operations in paths.items():
            for method, operation in operations.items():
                _refine(path, method, operation)
        components = spec.setdefault("components", {})
        components.setdefault("securitySchemes", {})["bearer"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer <token>`; a bare `Authorization: <token>` works too.",
        }
        app.openapi_schema = spec
        return spec

    app.openapi = schema  # type: ignore[method-assign]
