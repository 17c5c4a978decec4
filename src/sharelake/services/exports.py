"""Export: every visible record of a recType as CSV or NDJSON, streamed in constant memory.

Records are read in keyset pages. CSV needs its header before the first row, so it reads twice: once
for the columns (keeping only their names), once for the rows — both bounded by the same upper time,
so a record arriving meanwhile does not appear in one pass only.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import orjson

from sharelake.domain import exports
from sharelake.domain import records as wire
from sharelake.domain.clock import now_ms
from sharelake.domain.errors import Invalid
from sharelake.domain.principal import Principal
from sharelake.domain.reads import Filter, Page
from sharelake.services.shares import ListQuery, Shares

PAGE = 1000
FORMATS = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}


class Exports:
    def __init__(self, shares: Shares) -> None:
        self._shares = shares

    def check(self, principal: Principal, fmt: str) -> str:
        principal.require("SHARE", "READ")
        if fmt not in FORMATS:
            raise Invalid("format must be csv or ndjson", code="invalid_parameter")
        return FORMATS[fmt]

    def _pages(self, principal: Principal, flt: Filter) -> Iterator[list[Any]]:
        after: tuple[int, str] | None = None
        while True:
            page = Page(sort=[("tstamp", False)], limit=PAGE, after=after)
            rows = self._shares.page(principal, ListQuery(flt=flt, page=page, with_count=False)).rows
            if rows:
                yield rows
            if len(rows) < PAGE:
                return
            after = (rows[-1].tstamp, rows[-1].id)

    def ndjson(self, principal: Principal, flt: Filter) -> Iterator[bytes]:
        flt.t_to = min(flt.t_to, now_ms()) if flt.t_to is not None else now_ms()
        for rows in self._pages(principal, flt):
            yield b"".join(orjson.dumps(wire.full(row)) + b"\n" for row in rows)

    def csv(self, principal: Principal, flt: Filter) -> Iterator[bytes]:
        flt.t_to = min(flt.t_to, now_ms()) if flt.t_to is not None else now_ms()
        seen: set[str] = set()
        for rows in self._pages(principal, flt):
            for row in rows:
                seen.update(exports.columns(row))
        head = exports.header(seen)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(head)
        yield buffer.getvalue().encode()
        for rows in self._pages(principal, flt):
            buffer.seek(0)
            buffer.truncate()
            writer.writerows(list(exports.cells(exports.flatten(row), head)) for row in rows)
            yield buffer.getvalue().encode()
