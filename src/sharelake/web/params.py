"""Query parameters of the share API, parsed the way Microshare clients send them.

An empty parameter (`page=`, as Microshare's Postman collection sends) means its default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from sharelake.domain import flat
from sharelake.domain import records as wire
from sharelake.domain.clock import parse_instant
from sharelake.domain.errors import Invalid
from sharelake.domain.reads import Filter, Page, Projection
from sharelake.domain.record_fields import SORTABLE
from sharelake.services.shares import ListQuery

MAX_PER_PAGE = 10_000
DEFAULT_PER_PAGE = 999
_DATA_PATH = re.compile(r"data(?:\.[A-Za-z0-9_-]{1,64}){1,8}")
_DEV_EUI = re.compile(r"[0-9A-Fa-f]{16}")
_INTEGER = re.compile(r"[+-]?[0-9]{1,20}")  # not int()'s wider grammar: "1_000", "١٢"


def _get(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    return value.strip() if value is not None and value.strip() != "" else None


def integer(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = _get(params, name)
    if text is None:
        return default
    if not _INTEGER.fullmatch(text):
        raise Invalid(f"{name}={text[:40]!r} is not a whole number", code="invalid_parameter")
    value = int(text)
    if not low <= value <= high:
        raise Invalid(f"{name} must be between {low} and {high} (got {value})", code="invalid_parameter")
    return value


def boolean(params: Mapping[str, str], name: str, default: bool) -> bool:
    text = _get(params, name)
    if text is None:
        return default
    lowered = text.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise Invalid(f"{name} must be true or false (got {text[:40]!r})", code="invalid_parameter")


def sort_keys(params: Mapping[str, str]) -> list[tuple[str, bool]]:
    text = _get(params, "sort")
    if text is None:
        return [("tstamp", False)]
    keys: list[tuple[str, bool]] = []
    for part in text.split(","):
        part = part.strip()
        descending = part.startswith("-")
        name = part.lstrip("-+").strip()
        if name not in SORTABLE and not _DATA_PATH.fullmatch(name):
            raise Invalid(
                f"cannot sort by {name[:80]!r}: use {', '.join(sorted(SORTABLE))} or data.<field>[.<field>…], "
                "comma-separated, '-' for descending",
                code="invalid_parameter",
            )
        keys.append((name, descending))
    if len(keys) > 8:
        raise Invalid("at most 8 sort keys", code="invalid_parameter")
    return keys


def dev_eui(params: Mapping[str, str]) -> str | None:
    text = _get(params, "devEui")
    if text is None:
        return None
    cleaned = text.replace("-", "").replace(":", "")
    if not _DEV_EUI.fullmatch(cleaned):
        raise Invalid(f"devEui={text[:40]!r} is not 16 hex digits", code="invalid_parameter")
    return cleaned.upper()


def list_query(params: Mapping[str, str], rec_type: str, tags: list[str]) -> ListQuery:
    per_page = integer(params, "perPage", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
    page_number = integer(params, "page", 1, 1, 10_000_000)
    sort = sort_keys(params)
    keyset = len(sort) == 1 and sort[0][0] in ("tstamp", "createDate")
    if keyset:
        sort = [("tstamp", sort[0][1])]
    cursor_text = _get(params, "cursor")
    after = None
    if cursor_text is not None:
        if not keyset:
            raise Invalid(
                "cursor paging follows tstamp order: use it without sort, or with sort=-tstamp",
                code="invalid_parameter",
            )
        after = wire.decode_cursor(cursor_text)
    t_from = _get(params, "from")
    t_to = _get(params, "to")
    flt = Filter(
        rec_type=rec_type,
        tags=tags,
        dev_eui=dev_eui(params),
        t_from=parse_instant(t_from, name="from") if t_from is not None else None,
        t_to=parse_instant(t_to, name="to") if t_to is not None else None,
    )
    if flt.t_from is not None and flt.t_to is not None and flt.t_from > flt.t_to:
        raise Invalid(
            f"from={str(t_from)[:40]!r} is after to={str(t_to)[:40]!r}: the range would be empty; swap them",
            code="invalid_parameter",
        )
    offset = 0 if after is not None else (page_number - 1) * per_page
    return ListQuery(
        flt=flt,
        page=Page(sort=sort, limit=per_page, offset=offset, after=after),
        page_number=page_number if after is None else 1,
        details=boolean(params, "details", True),
        cursor=keyset,
        with_count=boolean(params, "count", True),
    )


def projection(params: Mapping[str, str]) -> Projection | None:
    """`format=flat` (or `fields=` alone): flat rows of these dotted paths; None: Microshare's records."""
    shape = _get(params, "format")
    fields_text = _get(params, "fields")
    items = [p.strip() for p in fields_text.split(",") if p.strip()] if fields_text is not None else []
    if shape is None:
        return Projection(columns=flat.check_columns(items)) if items else None
    lowered = shape.lower()
    if lowered == "flat":
        return Projection(columns=flat.check_columns(items))
    if lowered == "records":
        if items:
            raise Invalid("fields= projects flat rows: use it with format=flat", code="invalid_parameter")
        return None
    raise Invalid(
        f"format={shape[:40]!r}: use records (the default, Microshare's) or flat", code="invalid_parameter"
    )


def split_tags(path: str) -> list[str]:
    return [t for t in path.split("/") if t != ""]


@dataclass(frozen=True, slots=True)
class InventoryQuery:
    """`GET /inventory`'s parameters (the console's Devices page takes the same)."""

    rec_type: str | None
    q: str | None
    silent: bool | None
    page: int
    per_page: int


def inventory_query(params: Mapping[str, str], *, per_page: int | None = None) -> InventoryQuery:
    """`recType`, `q`, `silent` (absent: every device), `page` and `perPage` (≤ 1000, default 100)."""
    return InventoryQuery(
        rec_type=_get(params, "recType"),
        q=_get(params, "q"),
        silent=boolean(params, "silent", False) if _get(params, "silent") is not None else None,
        page=integer(params, "page", 1, 1, 10_000_000),
        per_page=per_page if per_page is not None else integer(params, "perPage", 100, 1, 1000),
    )
