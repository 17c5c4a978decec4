"""The OpenAPI schema: FastAPI's, plus the hand-documented Starlette write routes."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

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
            "and gain a read-only `uplink` object; repeats of one radio frame are stored once. "
            "Answers after the record is committed."
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
        components = spec.setdefault("components", {})
        components.setdefault("securitySchemes", {})["bearer"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer <token>`; a bare `Authorization: <token>` works too.",
        }
        app.openapi_schema = spec
        return spec

    app.openapi = schema  # type: ignore[method-assign]
