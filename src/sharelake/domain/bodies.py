"""What a `POST /share/...` body holds: one JSON object or an array of them, checked before storing."""

from __future__ import annotations

from typing import Any

import orjson

from sharelake.domain import numbers
from sharelake.domain.errors import Invalid, TooLarge
from sharelake.domain.records import MAX_RECORDS


def parse_body(body: bytes) -> list[dict[str, Any]]:
    """The records a POST body holds: one JSON object, or an array of them."""
    if not body.strip():
        raise Invalid("the body is empty: send a JSON object (or an array of objects)", code="invalid_body")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "infinity" in str(exc):
            raise Invalid(
                f"a number in the body is beyond a double's range (about ±1.8e308): send it as a string ({exc})",
                code="invalid_json",
            ) from None
        raise Invalid(f"the body is not valid JSON: {exc}", code="invalid_json") from None
    if numbers.needs_exact(body):
        # orjson reads integers beyond 64 bits and decimals longer than a double as doubles:
        # parsed again, every number is stored with the digits it was sent with.
        value = numbers.loads(body)
    if isinstance(value, dict):
        items = [value]
    elif isinstance(value, list):
        if not value:
            raise Invalid("the body is an empty array: nothing to store", code="invalid_body")
        if not all(isinstance(item, dict) for item in value):
            raise Invalid("every element of a JSON array body must be an object", code="invalid_body")
        items = value
    else:
        raise Invalid("the body must be a JSON object (or an array of objects)", code="invalid_body")
    if len(items) > MAX_RECORDS:
        raise TooLarge(
            f"the body holds {len(items)} records; send at most {MAX_RECORDS} per request",
            code="too_many_records",
        )
    if b"\\u0000" in body and any(has_nul(item) for item in items):
        raise Invalid("the body holds a NUL character (\\u0000), which cannot be stored", code="invalid_json")
    return items


def check_document(data: Any) -> dict[str, Any]:
    """A record's `data` built by something other than a POST body (a robot's output)."""
    if not isinstance(data, dict):
        raise Invalid("a record's data must be a JSON object", code="invalid_body")
    if has_nul(data):
        raise Invalid(
            "the record holds a NUL character (\\u0000), which cannot be stored", code="invalid_json"
        )
    return data


def has_nul(value: Any) -> bool:
    """True when a string anywhere in `value` (keys too) holds NUL, which neither database stores."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in k or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(v) for v in value)
    return False
