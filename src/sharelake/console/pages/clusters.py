"""Device clusters: list, create, edit, activate or deactivate, delete; "Test decode" (a payload in hex
through the cluster's decoder, writing nothing), "Replay" (decode stored records again) and its health
(decode counts, the last error, a pause)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Form
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sharelake import decoders
from sharelake.console import documents, session
from sharelake.console.documents import Doc
from sharelake.console.web import ConsoleRoute, redirect, render, with_query
from sharelake.domain.clock import parse_instant
from sharelake.domain.clusters import MAX_CODEC, location_tags
from sharelake.domain.errors import Forbidden, Invalid
from sharelake.services.lake import Lake
from sharelake.web.auth import LakeDep
from sharelake.web.errors import status_of

KIND = "device"
TITLE = "device cluster"
router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
router.include_router(documents.lifecycle(KIND, "/clusters"))

MAX_DEVICES_TEXT = 1024 * 1024


class ClusterForm(BaseModel):
    name: str = Field("", max_length=1000)
    desc: str = Field("", max_length=1000)
    rec_type: str = Field("", max_length=255)  # only when creating: a cluster keeps its recType
    target_rec_type: str = Field("", max_length=255)
    unpacker: str = Field("", max_length=64)
    codec: str = Field("", max_length=MAX_CODEC)
    location: str = Field("", max_length=2000)
    devices: str = Field("", max_length=MAX_DEVICES_TEXT)  # one DevEUI a line, `;tag,tag` optional
    is_active: bool = False

    @classmethod
    def blank(cls) -> ClusterForm:
        return cls(unpacker="cayenne-lpp", is_active=True)

    @classmethod
    def of(cls, doc: Doc) -> ClusterForm:
        meta = doc.data.get("meta") or {}
        lines = []
        for device in doc.data.get("devices", []):
            tags = location_tags((device.get("meta") or {}).get("location"), "location")
            lines.append(device["id"] + (";" + ",".join(tags) if tags else ""))
        return cls(
            name=doc.name,
            desc=doc.desc,
            rec_type=doc.rec_type,
            target_rec_type=str(doc.data.get("targetRecType", "")),
            unpacker=str(meta.get("unpacker", "")),
            codec=str(meta.get("codec") or ""),
            location=", ".join(location_tags(meta.get("location"), "meta.location")),
            devices="\n".join(lines),
            is_active=doc.active,
        )

    def body(self, existing: Mapping[str, Any]) -> dict[str, Any]:
        """The API body; what the form does not show (a device's other meta, say) is kept."""
        data = dict(existing)
        meta = dict(data.get("meta") or {})
        meta["unpacker"] = self.unpacker.strip()
        _put(meta, "codec", self.codec if self.codec.strip() else None)
        _put(meta, "location", location_tags(self.location, "location") or None)
        before = {str(d.get("id", "")).upper(): d for d in data.get("devices", []) if isinstance(d, dict)}
        devices = []
        for line in self.devices.splitlines():
            eui, _, tags = line.partition(";")
            if not eui.strip():
                continue
            device = dict(before.get(eui.strip().upper(), {}))
            device_meta = dict(device.get("meta") or {})
            _put(device_meta, "location", location_tags(tags, "location") or None)
            device["id"] = eui.strip()
            _put(device, "meta", device_meta or None)
            devices.append(device)
        data.update(
            meta=meta, devices=devices, targetRecType=self.target_rec_type.strip(), isActive=self.is_active
        )
        return {"name": self.name.strip(), "desc": self.desc.strip(), "data": data}


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        target.pop(key, None)
    else:
        target[key] = value


def unpackers(current: str = "") -> list[str]:
    """The decoders this server has, `javascript` (a codec's source), and the cluster's own if unknown."""
    names = [*decoders.names(), decoders.JAVASCRIPT]
    return names if not current or current in names else [*names, current]


async def _page(
    request: Request,
    user: session.Session,
    form: ClusterForm,
    *,
    doc: Doc | None = None,
    error: str | None = None,
    test: Mapping[str, str] | None = None,
    decoded: dict[str, Any] | None = None,
    test_error: str | None = None,
    replay: Mapping[str, str] | None = None,
    replay_error: str | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    health = None
    if doc is not None:
        lake: Lake = request.app.state.lake
        health = (await run_in_threadpool(lake.clusters.health.of, [doc.id]))[doc.id]
    values = {
        "health": health,
        "form": form,
        "doc": doc,
        "unpackers": unpackers(form.unpacker),
        "error": error,
        "test": test or {"f_port": "2", "hex": ""},
        "decoded": decoded,
        "decoded_json": json.dumps(decoded["data"], indent=2, ensure_ascii=False) if decoded else "",
        "test_error": test_error,
        "replay": replay or {"from": "", "to": ""},
        "replay_error": replay_error,
        "notice": notice,
    }
    return render(request, "cluster.html", values, user=user, status=status)


@router.get("/clusters")
async def clusters_page(
    request: Request, lake: LakeDep, user: session.SessionDep, notice: str = ""
) -> Response:
    docs = await documents.listed(lake, user, KIND)
    health = await run_in_threadpool(lake.clusters.health.of, [doc.id for doc in docs])
    values = {"docs": docs, "health": health, "notice": documents.notice(TITLE, notice)}
    return render(request, "clusters.html", values, user=user)


@router.get("/clusters/new")
async def new_cluster(request: Request, user: session.SessionDep) -> Response:
    return await _page(request, user, ClusterForm.blank())


@router.post("/clusters")
async def create_cluster(
    request: Request, lake: LakeDep, user: session.PostedSession, form: Annotated[ClusterForm, Form()]
) -> Response:
    try:
        doc = await documents.save(lake, user, KIND, None, form.rec_type.strip(), form.body({}))
    except (Invalid, Forbidden) as exc:
        return await _page(request, user, form, error=exc.message, status=status_of(exc))
    return redirect(with_query(f"/console/clusters/{doc.id}", notice="created"))


@router.get("/clusters/{doc_id}")
async def cluster_page(
    request: Request, doc_id: str, lake: LakeDep, user: session.SessionDep, notice: str = "", queued: str = ""
) -> Response:
    doc = await documents.one(lake, user, KIND, doc_id)
    shown: str | None
    if queued.isdigit():
        shown = f"{int(queued):,} stored record{'' if queued == '1' else 's'} queued to be decoded again."
    else:
        shown = documents.notice(TITLE, notice)
    return await _page(request, user, ClusterForm.of(doc), doc=doc, notice=shown)


@router.post("/clusters/{doc_id}")
async def update_cluster(
    request: Request,
    doc_id: str,
    lake: LakeDep,
    user: session.PostedSession,
    form: Annotated[ClusterForm, Form()],
) -> Response:
    doc = await documents.one(lake, user, KIND, doc_id)
    form.rec_type = doc.rec_type
    try:
        await documents.save(lake, user, KIND, doc.id, doc.rec_type, form.body(doc.data))
    except (Invalid, Forbidden) as exc:
        return await _page(request, user, form, doc=doc, error=exc.message, status=status_of(exc))
    return redirect(with_query(f"/console/clusters/{doc.id}", notice="saved"))


@router.post("/clusters/{doc_id}/test")
async def try_decode(
    request: Request,
    doc_id: str,
    lake: LakeDep,
    user: session.PostedSession,
    f_port: Annotated[str, Form(max_length=8)] = "",
    hex_bytes: Annotated[str, Form(alias="hex", max_length=100_000)] = "",
) -> Response:
    user.principal.require("DEVICE", "READ")
    doc = await documents.one(lake, user, KIND, doc_id)
    test = {"f_port": f_port, "hex": hex_bytes}
    # A port that is not a number goes to the service as typed, so its message explains it.
    port: int | str = int(f_port) if f_port.strip().isdigit() else f_port
    body = {"fPort": port, "payloadHex": hex_bytes.strip()}
    try:
        decoded = await run_in_threadpool(lake.clusters.test, user.principal, doc.rec_type, doc.id, body)
    except Invalid as exc:
        return await _page(
            request,
            user,
            ClusterForm.of(doc),
            doc=doc,
            test=test,
            test_error=exc.message,
            status=status_of(exc),
        )
    return await _page(request, user, ClusterForm.of(doc), doc=doc, test=test, decoded=decoded)


@router.post("/clusters/{doc_id}/replay")
async def replay(
    request: Request,
    doc_id: str,
    lake: LakeDep,
    user: session.PostedSession,
    t_from: Annotated[str, Form(alias="from", max_length=64)] = "",
    t_to: Annotated[str, Form(alias="to", max_length=64)] = "",
) -> Response:
    user.principal.require("DEVICE", "WRITE")
    doc = await documents.one(lake, user, KIND, doc_id)
    try:
        start = parse_instant(t_from, name="From") if t_from.strip() else None
        end = parse_instant(t_to, name="To") if t_to.strip() else None
        queued = await run_in_threadpool(
            lake.clusters.replay, user.principal, doc.rec_type, doc.id, start, end
        )
    except Invalid as exc:
        replayed = {"from": t_from, "to": t_to}
        return await _page(
            request,
            user,
            ClusterForm.of(doc),
            doc=doc,
            replay=replayed,
            replay_error=exc.message,
            status=status_of(exc),
        )
    return redirect(with_query(f"/console/clusters/{doc.id}", queued=str(queued)) + "#replay")
