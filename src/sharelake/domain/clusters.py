"""Device clusters: which devices a cluster decodes, and the shape of the unpacked records it writes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from sharelake.domain.clock import parse_instant
from sharelake.domain.errors import Invalid
from sharelake.domain.records import check_rec_type

_EUI = re.compile(r"[0-9A-F]{16}")
# Separators people put inside EUIs (58-A0-CB-…, 58:a0:…, "58A0 CBFF …"): the same ones ingest drops.
_EUI_SEPARATORS = str.maketrans("", "", "-: \t")
MAX_CODEC = 512 * 1024
MAX_DEVICE_ID = 128


def device_eui(device_id: str) -> str | None:
    """The DevEUI a device id stands for (16 upper-case hex digits), or None for a placeholder.

    Both sides of a match go through this — a cluster's ids and an uplink's devEui — so what a client
    stored is never rewritten, yet `58-A0-CB-FF-FF-FE-12-34` still finds `58a0cbfffffe1234`.
    """
    eui = device_id.translate(_EUI_SEPARATORS).upper()
    return eui if _EUI.fullmatch(eui) else None


def location_tags(value: Any, field: str) -> list[str]:
    """Location tags as a list: Microshare writes them as a list or one comma-separated string."""
    if value is None:
        return []
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return [t.strip() for t in value if t.strip()]
    raise Invalid(f"{field} must be a list of strings or one comma-separated string", code="invalid_cluster")


def decoder_spec(data: Any) -> tuple[str, str | None]:
    """(unpacker, codec source) of a cluster's `data`: all a decode needs, so all a test decode checks."""
    if not isinstance(data, dict):
        raise Invalid("a device cluster's data must be a JSON object", code="invalid_cluster")
    meta = data.get("meta")
    if not isinstance(meta, dict):
        raise Invalid("data.meta must be an object with the unpacker (meta.unpacker)", code="invalid_cluster")
    unpacker = meta.get("unpacker")
    if not isinstance(unpacker, str) or not unpacker:
        raise Invalid(
            "data.meta.unpacker must name a decoder (e.g. cayenne-lpp, or javascript)", code="invalid_cluster"
        )
    codec = meta.get("codec")
    if codec is not None and (not isinstance(codec, str) or len(codec) > MAX_CODEC):
        raise Invalid(
            f"data.meta.codec must be JavaScript source of at most {MAX_CODEC} bytes", code="invalid_cluster"
        )
    return unpacker, codec


def normalize_cluster_data(data: Any) -> dict[str, Any]:
    """Check a device cluster's `data`. Device ids are kept as sent: a client finds its device by the id
    it wrote, and an id that is not a DevEUI (`TBD` while a device is provisioned) is a placeholder that
    matches no uplink."""
    decoder_spec(data)
    meta = data["meta"]
    location_tags(meta.get("location"), "data.meta.location")
    target = data.get("targetRecType")
    if not isinstance(target, str):
        raise Invalid(
            "data.targetRecType must name the recType of the unpacked records", code="invalid_cluster"
        )
    check_rec_type(target)
    devices = data.get("devices", [])
    if not isinstance(devices, list):
        raise Invalid(
            "data.devices must be a list of {id: DevEUI, meta: {location: [...]}}", code="invalid_cluster"
        )
    seen: dict[str, int] = {}  # DevEUI → the index that named it first
    for index, device in enumerate(devices):
        if not isinstance(device, dict) or not isinstance(device.get("id"), str):
            raise Invalid(
                f"data.devices[{index}] must be an object with an id (the DevEUI)", code="invalid_cluster"
            )
        device_id = device["id"]
        if not device_id.strip() or len(device_id) > MAX_DEVICE_ID:
            raise Invalid(
                f"data.devices[{index}].id must be the DevEUI (16 hex digits) or a placeholder of 1 to "
                f"{MAX_DEVICE_ID} characters",
                code="invalid_cluster",
            )
        eui = device_eui(device_id)
        if eui is not None:
            if eui in seen:  # two entries for one device: whose location tags would its records get?
                raise Invalid(
                    f"data.devices[{index}].id {device_id!r} is the same DevEUI as data.devices[{seen[eui]}]",
                    code="invalid_cluster",
                )
            seen[eui] = index
        device_meta = device.get("meta") or {}
        if not isinstance(device_meta, dict):
            raise Invalid(f"data.devices[{index}].meta must be an object", code="invalid_cluster")
        location_tags(device_meta.get("location"), f"data.devices[{index}].meta.location")
    active = data.get("isActive", True)
    if not isinstance(active, bool):
        raise Invalid("data.isActive must be true or false", code="invalid_cluster")
    return {**data, "devices": devices, "isActive": active}


@dataclass(frozen=True, slots=True)
class Cluster:
    id: str
    owner_user: str
    owner_org: str
    owner_app: str | None
    rec_type: str
    target: str
    unpacker: str
    codec: str | None
    tags: tuple[str, ...]  # the cluster's own location tags
    devices: dict[str, tuple[str, ...]]  # DevEUI (normalised) → its location tags; placeholders left out

    @classmethod
    def from_data(
        cls, doc_id: str, rec_type: str, owner: tuple[str, str, str | None], data: dict[str, Any]
    ) -> Cluster:
        meta = data.get("meta") or {}
        return cls(
            id=doc_id,
            owner_user=owner[0],
            owner_org=owner[1],
            owner_app=owner[2],
            rec_type=rec_type,
            target=data["targetRecType"],
            unpacker=meta["unpacker"],
            codec=meta.get("codec"),
            tags=tuple(location_tags(meta.get("location"), "meta.location")),
            devices={
                eui: tuple(location_tags((d.get("meta") or {}).get("location"), "location"))
                for d in data.get("devices", [])
                if (eui := device_eui(d["id"])) is not None
            },
        )


@dataclass(frozen=True, slots=True)
class TrialPayload:
    """One payload for a test decode (DESIGN §11), as its body gave it."""

    payload: bytes
    f_port: int
    recv_time: int | None  # epoch ms; None: now


_TEST_BODY = '{"payloadHex": "0167FFD7" | "payloadBase64": "AWf/1w==", "fPort": 2, "recvTime"?: ISO-8601}'


def trial_payload(body: Any) -> TrialPayload:
    """The payload, fPort and receive time of a test decode's body. `bytes` (hex) is the older name of
    `payloadHex`, kept for the clients and console forms written before §11 named it."""
    if not isinstance(body, dict):
        raise Invalid(f"send {_TEST_BODY}", code="invalid_body")
    given = [name for name in ("payloadHex", "payloadBase64", "bytes") if body.get(name) is not None]
    if len(given) != 1:
        what = " and ".join(given) or "neither"
        raise Invalid(
            f"give the payload once, as payloadHex or payloadBase64 (got {what})", code="invalid_body"
        )
    name = given[0]
    text = body[name]
    if not isinstance(text, str):
        raise Invalid(f"{name} must be a string", code="invalid_body")
    text = "".join(text.split())  # people paste payloads with spaces and line breaks
    in_base64 = name == "payloadBase64"
    try:
        payload = base64.b64decode(text, validate=True) if in_base64 else bytes.fromhex(text)
    except (ValueError, binascii.Error):
        form = "base64, e.g. AWf/1w==" if in_base64 else "hex, e.g. 0167FFD7"
        raise Invalid(f"{name} must be the payload in {form}", code="invalid_body") from None
    f_port = body.get("fPort")
    if isinstance(f_port, bool) or not isinstance(f_port, int) or not 0 <= f_port <= 255:
        raise Invalid(
            "fPort must be a whole number from 0 to 255 (the uplink's LoRaWAN port)", code="invalid_body"
        )
    when = body.get("recvTime")
    if when is not None and not isinstance(when, str | int):
        raise Invalid("recvTime must be an ISO-8601 time or epoch milliseconds", code="invalid_body")
    recv_time = parse_instant(str(when), name="recvTime") if when is not None and when != "" else None
    return TrialPayload(payload, f_port, recv_time)


def derived_id(source_id: str, consumer_id: str, n: int = 0) -> str:
    """The id of what a consumer derives from a record: the source's time, then a hash of who and which,
    so a retry writes the same id again (and the database keeps one)."""
    digest = hashlib.sha256(f"{consumer_id}:{source_id}:{n}".encode()).hexdigest()
    return source_id[:8] + digest[:16]


def unpacked_data(
    decoded: dict[str, Any],
    *,
    warnings: list[str],
    errors: list[str],
    normalized: Any,
    cluster: Cluster,
    device_tags: tuple[str, ...],
    source: dict[str, Any],
    iot: dict[str, Any],
) -> dict[str, Any]:
    """DESIGN §6: the decoder's fields, plus `meta` (a decoded field called `meta` is kept as `_meta`)."""
    data = dict(decoded)
    if "meta" in data:
        data["_meta"] = data.pop("meta")
    meta: dict[str, Any] = {
        "device": list(device_tags),
        "global": list(cluster.tags),
        "source": source,
        "iot": iot,
        "unpacker": cluster.unpacker,
    }
    if warnings:
        meta["warnings"] = warnings
    if errors:
        meta["errors"] = errors
    if normalized is not None:
        meta["normalized"] = normalized
    data["meta"] = meta
    return data
