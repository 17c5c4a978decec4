"""Data: the recTypes you see, and per recType its records (newest first, keyset-paged with the API's
cursor), a record's JSON, the time and device filters, a chart of the numbers and a CSV of the page."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import time
from collections.abc import Mapping
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Form
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sharelake.console import series, session
from sharelake.console.web import ConsoleRoute, redirect, render, secure, with_query
from sharelake.domain import records as wire
from sharelake.domain.clock import parse_instant
from sharelake.domain.errors import Invalid, NotFound
from sharelake.services.lake import Lake
from sharelake.services.shares import RecordPage
from sharelake.web.auth import LakeDep
from sharelake.web.errors import status_of
from sharelake.web.params import list_query

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

FILTERS = ("from", "to", "devEui", "perPage", "cursor")
PER_PAGE = (25, 50, 100, 500)
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 500  # a page is also a chart and a CSV; the API serves bigger reads
_PREVIEW = 160
ROLLUP_DAYS = 3  # a longer range is charted from the rollups
MAX_CHARTED = 12


def _given(request: Request) -> dict[str, str]:
    """The filters as the user gave them (kept verbatim in links, so paging keeps the same filters)."""
    params = request.query_params
    return {name: params[name].strip()[:200] for name in FILTERS if params.get(name, "").strip()}


async def _read(lake: Lake, user: session.Session, rec_type: str, given: Mapping[str, str]) -> RecordPage:
    """One page, newest first: the same parameters and the same service as `GET /share/{recType}`."""
    wire.check_rec_type(rec_type)
    per_page = given.get("perPage", str(DEFAULT_PER_PAGE))
    if per_page.isdigit() and int(per_page) > MAX_PER_PAGE:
        raise Invalid(
            f"perPage is at most {MAX_PER_PAGE} here; the API pages further", code="invalid_parameter"
        )
    query = list_query({**given, "perPage": per_page, "sort": "-tstamp"}, rec_type, [])
    return await run_in_threadpool(lake.shares.page, user.principal, query)


def _objs(result: RecordPage) -> list[dict[str, Any]]:
    # The wire form holds raw JSON fragments; one round trip gives plain values to show and chart.
    objs: list[dict[str, Any]] = orjson.loads(orjson.dumps([wire.full(r) for r in result.rows]))
    return objs


def _local(text: str | None) -> str:
    """A filter instant as a `datetime-local` input value (UTC); empty when it does not parse."""
    if not text:
        return ""
    try:
        ms = parse_instant(text)
    except Invalid:
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000))


def _row(obj: dict[str, Any]) -> dict[str, Any]:
    uplink = obj.get("uplink") or {}
    compact = wire.compact_json(obj.get("data"))
    return {
        "id": obj["id"],
        "tstamp": obj["tstamp"],
        "dev_eui": uplink.get("devEui"),
        "f_port": uplink.get("fPort"),
        "f_cnt": uplink.get("fCnt"),
        "preview": compact if len(compact) <= _PREVIEW else compact[: _PREVIEW - 1] + "…",
        "json": json.dumps(obj, indent=2, ensure_ascii=False),
    }


def _long_range_chart(
    lake: Lake, user: session.Session, rec_type: str, given: Mapping[str, str]
) -> dict[str, Any] | None:
    """Over a range of more than `ROLLUP_DAYS` days, the chart reads the rollups (hourly or daily
    averages of every field) rather than the page's records; None otherwise, or without rollups."""
    try:
        start = parse_instant(given["from"], name="from") if "from" in given else None
        end = parse_instant(given["to"], name="to") if "to" in given else int(time.time() * 1000)
    except Invalid:
        return None
    if start is None or end - start <= ROLLUP_DAYS * 86_400_000:
        return None
    return lake.rollups.series(
        user.principal, rec_type, dev_eui=given.get("devEui"), start=start, end=end, limit=MAX_CHARTED
    )


@router.get("/data")
async def rec_types(request: Request, lake: LakeDep, user: session.SessionDep) -> Response:
    summaries = await run_in_threadpool(lake.shares.rec_types, user.principal)
    base_url = (lake.settings.public_url or str(request.base_url)).rstrip("/") + "/"
    return render(request, "data_index.html", {"summaries": summaries, "base_url": base_url}, user=user)


@router.get("/data/{rec_type}")
async def records(request: Request, rec_type: str, lake: LakeDep, user: session.SessionDep) -> Response:
    given = _given(request)
    here = f"/console/data/{rec_type}"
    filters = {k: v for k, v in given.items() if k != "cursor"}
    per_page = given.get("perPage", str(DEFAULT_PER_PAGE))
    choices = (
        sorted({*PER_PAGE, int(per_page)})
        if per_page.isdigit() and 0 < int(per_page) <= MAX_PER_PAGE
        else PER_PAGE
    )
    values: dict[str, Any] = {
        "rec_type": rec_type,
        "given": given,
        "from_value": _local(given.get("from")),
        "to_value": _local(given.get("to")),
        "per_page": per_page,
        "per_page_choices": choices,
        "rows": [],
        "total": 0,
        "chart": None,
        "older": None,
        "newest": with_query(here, **filters) if "cursor" in given else None,
        "csv": with_query(f"{here}/export.csv", **given),
        "error": None,
        "retention": await run_in_threadpool(lake.retention.get, user.principal, rec_type),
        "retention_saved": request.query_params.get("retention"),
        "retention_error": request.query_params.get("retention_error"),
    }
    try:
        result = await _read(lake, user, rec_type, given)
    except Invalid as exc:
        values["error"] = exc.message
        return render(request, "records.html", values, user=user, status=status_of(exc))
    objs = _objs(result)
    chart = await run_in_threadpool(_long_range_chart, lake, user, rec_type, given) or series.chart(objs)
    values.update(
        rows=[_row(o) for o in objs],
        total=result.total,
        chart=chart,
        older=with_query(here, **{**given, "cursor": result.next_cursor}) if result.next_cursor else None,
    )
    return render(request, "records.html", values, user=user)


@router.post("/data/{rec_type}/retention")
async def set_retention(
    rec_type: str,
    lake: LakeDep,
    user: session.PostedSession,
    days: Annotated[str, Form(max_length=12)] = "",
    keep: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Keep this recType's records N days, or (keep) forever; errors come back on the page."""
    here = f"/console/data/{rec_type}"
    try:
        if keep:
            with contextlib.suppress(NotFound):  # already kept forever
                await run_in_threadpool(lake.retention.clear, user.principal, rec_type)
            return redirect(with_query(here, retention="kept"))
        number = int(days) if days.strip().isdigit() else -1
        kept = await run_in_threadpool(lake.retention.get, user.principal, rec_type)
        rollup_days = kept.rollup_days if kept is not None else None  # set through the API; kept as it is
        await run_in_threadpool(lake.retention.set, user.principal, rec_type, number, rollup_days)
    except Invalid as exc:
        return redirect(with_query(here, retention_error=exc.message))
    return redirect(with_query(here, retention="saved"))


@router.get("/data/{rec_type}/export.csv")
async def export(request: Request, rec_type: str, lake: LakeDep, user: session.SessionDep) -> Response:
    """The page on screen as CSV: the same filters, the same cursor, the same page size."""
    result = await _read(lake, user, rec_type, _given(request))
    objs = _objs(result)
    numbers = [series.numbers(o) for o in objs]
    fields = series.labels(numbers)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["id", "createDate", "devEui", "fPort", "fCnt", *fields, "data"])
    for obj, found in zip(objs, numbers, strict=True):
        uplink = obj.get("uplink") or {}
        writer.writerow(
            [
                obj["id"],
                obj["createDate"],
                uplink.get("devEui", ""),
                uplink.get("fPort", ""),
                uplink.get("fCnt", ""),
                *(found.get(f, "") for f in fields),
                # Always starts with "{": no spreadsheet reads it as a formula.
                wire.compact_json(obj.get("data")),
            ]
        )
    headers = {"Content-Disposition": f'attachment; filename="{rec_type}.csv"'}
    return secure(Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers))


@router.get("/data/{rec_type}/{record_id}")
async def record(
    request: Request, rec_type: str, record_id: str, lake: LakeDep, user: session.SessionDep
) -> Response:
    body = await run_in_threadpool(lake.shares.get, user.principal, rec_type, record_id)
    (obj,) = orjson.loads(body)["objs"]
    values = {"rec_type": rec_type, "record": obj, "json": json.dumps(obj, indent=2, ensure_ascii=False)}
    return render(request, "record.html", values, user=user)
