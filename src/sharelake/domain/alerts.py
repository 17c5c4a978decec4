"""Alert rules without code (DESIGN §11): checking what an alert is saved with, and judging a record.

An alert watches one recType, each device (devEui) on its own. `judge` says what one record means for
it — trips it, clears it, or neither — and `step` what that does to the device's state: open an
incident, bundle the record into the open one, resolve it, or start the `for` wait. Channels are
checked by the service (they are connections; `outbound.targets` knows them).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from sharelake.domain.errors import Invalid

KINDS = ("threshold", "silence", "decodeErrors")
MIN_SILENCE = 5  # seconds: the worker checks silences at least this often
MAX_SECONDS = 30 * 86_400
DEFAULT_THROTTLE = 900
MAX_CHANNELS = 10
# The fields of the body besides the alert's own spec (the document's name, desc, recType).
DOC_FIELDS = ("name", "desc", "recType")
SPEC_FIELDS = (
    "kind", "field", "above", "below", "hysteresis", "for", "silence", "throttle", "channels", "isActive",
)  # fmt: skip
# What each kind may carry beyond kind, throttle, channels and isActive.
_ONLY = {
    "threshold": {"field", "above", "below", "hysteresis", "for"},
    "silence": {"silence"},
    "decodeErrors": {"for"},
}
_SEGMENT = re.compile(r"[A-Za-z0-9_\-$@#]{1,128}")


def _bad(message: str) -> Invalid:
    return Invalid(message, code="invalid_body")


def _number(body: dict[str, Any], name: str, *, low: float, high: float = math.inf) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(f"{name} must be a number, not {str(value)[:64]!r}")
    if not low <= value <= high:
        limit = f"between {low:g} and {high:g}" if high != math.inf else f"at least {low:g}"
        raise _bad(f"{name} must be {limit}, not {value!r}")
    return value


def check_field(value: Any) -> str:
    """A dotted path into the record as the API returns it: `data.temperature`, `uplink.fPort`."""
    if not isinstance(value, str) or not value.strip():
        raise _bad("a threshold alert needs field: a dotted path into the record, e.g. data.temperature")
    parts = value.strip().split(".")
    if parts[0] not in ("data", "uplink") or len(parts) < 2 or len(parts) > 16:
        raise _bad(f"field {value[:128]!r} must start with data. or uplink. (e.g. data.temperature)")
    if not all(_SEGMENT.fullmatch(p) for p in parts[1:]):
        raise _bad(f"field {value[:128]!r} has an empty or unusable part; write e.g. data.temperature")
    return ".".join(parts)


def normalize_spec(body: dict[str, Any]) -> dict[str, Any]:
    """The alert's `data`: its kind's fields checked and defaulted, channels left to the caller."""
    unknown = sorted(set(body) - set(SPEC_FIELDS) - set(DOC_FIELDS))
    if unknown:
        raise _bad(f"an alert has no field {unknown[0][:64]!r}; its fields: {', '.join(SPEC_FIELDS)}")
    kind = body.get("kind")
    if kind not in KINDS:
        raise _bad(f"kind must be one of {', '.join(KINDS)}, not {str(kind)[:64]!r}")
    extra = sorted(
        name for name in set(SPEC_FIELDS) - {"kind", "throttle", "channels", "isActive"} - _ONLY[kind]
        if body.get(name) is not None
    )  # fmt: skip
    if extra:
        raise _bad(f"a {kind} alert has no {extra[0]}; it takes {', '.join(sorted(_ONLY[kind]))}")
    active = body.get("isActive", True)
    if not isinstance(active, bool):
        raise _bad("isActive must be true or false")
    throttle = _number(body, "throttle", low=0, high=MAX_SECONDS)
    spec: dict[str, Any] = {
        "kind": kind,
        "throttle": DEFAULT_THROTTLE if throttle is None else throttle,
        "isActive": active,
    }
    if kind == "threshold":
        spec["field"] = check_field(body.get("field"))
        above = _number(body, "above", low=-math.inf)
        below = _number(body, "below", low=-math.inf)
        if above is None and below is None:
            raise _bad("a threshold alert needs above, below or both")
        if above is not None and below is not None and below >= above:
            raise _bad("below must be less than above: the alert trips above `above` or below `below`")
        hysteresis = _number(body, "hysteresis", low=0)
        spec.update(above=above, below=below, hysteresis=hysteresis or 0)
        spec["for"] = _number(body, "for", low=0, high=MAX_SECONDS) or 0
    elif kind == "silence":
        # None: twice the expected interval the device inventory learned for each device.
        spec["silence"] = _number(body, "silence", low=MIN_SILENCE, high=MAX_SECONDS)
    else:
        spec["for"] = _number(body, "for", low=0, high=MAX_SECONDS) or 0
    return spec


def evaluation_key(spec: dict[str, Any], rec_type: str) -> str:
    """What the device states depend on: when it changes, they start afresh."""
    names = ("kind", "field", "above", "below", "hysteresis", "isActive")
    parts = [rec_type, *(repr(spec.get(n)) for n in names)]
    return "|".join(parts)


# -- judging records -----------------------------------------------------------------------------
def value_at(data: Any, uplink: Any, path: str) -> Any:
    """The value at a dotted path (`data.a.b`, `uplink.fPort`, `data.list.0`), None where there is none."""
    parts = path.split(".")
    node: Any = data if parts[0] == "data" else uplink
    for part in parts[1:]:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


@dataclass(frozen=True, slots=True)
class Verdict:
    tripped: bool  # the record trips the alert
    cleared: bool  # the record clears it (an open incident resolves)
    value: Any  # what is reported: the field's value, the decode errors


def judge(spec: dict[str, Any], alert_rec_type: str, rec_type: str, data: Any, uplink: Any) -> Verdict | None:
    """What one record says; None when it says nothing (no such field, not a number, not decoded)."""
    kind = spec["kind"]
    if kind == "silence":
        return Verdict(False, True, None)  # any record ends a silence
    if kind == "decodeErrors":
        meta = data.get("meta") if isinstance(data, dict) else None
        if not isinstance(meta, dict) or "unpacker" not in meta:
            return None  # not a device cluster's unpacked record
        source = meta.get("source")
        source_type = source.get("recType") if isinstance(source, dict) else None
        if rec_type != alert_rec_type and source_type != alert_rec_type:
            return None
        errors = meta.get("errors")
        if isinstance(errors, list) and errors:
            return Verdict(True, False, errors[:10])
        return Verdict(False, True, None)
    value = value_at(data, uplink, spec["field"])
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    above, below, hysteresis = spec.get("above"), spec.get("below"), spec.get("hysteresis") or 0
    tripped = (above is not None and value > above) or (below is not None and value < below)
    cleared = (above is None or value < above - hysteresis) and (below is None or value > below + hysteresis)
    return Verdict(tripped, cleared, value)


@dataclass(frozen=True, slots=True)
class Step:
    action: str | None  # "open", "bundle", "resolve" or None
    pending_since: int | None  # the device's new `for` wait


def step(
    spec: dict[str, Any], verdict: Verdict, at: int, *, is_open: bool, pending_since: int | None
) -> Step:
    """What a record judged `verdict` at `at` (epoch ms) does to a device's incident and `for` wait."""
    if is_open:
        if verdict.tripped:
            return Step("bundle", None)
        return Step("resolve" if verdict.cleared else None, None)
    if not verdict.tripped:
        return Step(None, None)  # the condition stopped holding: any `for` wait starts again
    wait_ms = int((spec.get("for") or 0) * 1000)
    since = at if pending_since is None else pending_since
    if at - since >= wait_ms:
        return Step("open", None)
    return Step(None, since)
