"""A robot document's `data`: checked when saved, read back when the robot runs.

`{"script": "function main(text, auth) {…}", "isActive": true, "scopes": ["SHARE:READ", "SHARE:WRITE"],
"schedule": {"delay": 0, "interval": 60000}}` — without `schedule` the robot runs on each new record of its
recType; with one, on its schedule only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sharelake.domain import scopes as scope_rules
from sharelake.domain.errors import Invalid
from sharelake.domain.scopes import Scope

MAX_SCRIPT = 512 * 1024  # characters, as for a cluster's JavaScript codec
MIN_INTERVAL = 1000  # ms: a robot runs at most once a second
MAX_MS = 366 * 24 * 3600 * 1000  # a year
DEFAULT_SCOPES = ("SHARE:READ", "SHARE:WRITE")


def _invalid(message: str) -> Invalid:
    return Invalid(message, code="invalid_robot")


def _millis(value: Any, field: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise _invalid(f"data.schedule.{field} must be a whole number of milliseconds")
    if not low <= int(value) <= MAX_MS:
        raise _invalid(f"data.schedule.{field} must be between {low} and {MAX_MS} ms (got {int(value)})")
    return int(value)


def parse_scopes(value: Any) -> tuple[Scope, ...]:
    """`["SHARE:READ", …]` (or one comma-separated string) → scopes; an empty list allows nothing."""
    if isinstance(value, str):
        value = [part for part in value.replace(",", " ").split() if part]
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise _invalid('data.scopes must be a list of "RESOURCE:OPERATION" strings, e.g. ["SHARE:READ"]')
    if not value:
        return ()
    try:
        return scope_rules.parse(" ".join(value))
    except Invalid as exc:
        raise _invalid(f"data.scopes: {exc.message}") from None


def normalize_robot_data(data: Any) -> dict[str, Any]:
    """Check a robot's `data` and fill its defaults (the script's own check is the runtime's)."""
    if not isinstance(data, dict):
        raise _invalid('a robot\'s data must be a JSON object: {"script": "function main(text, auth) {…}"}')
    script = data.get("script")
    if not isinstance(script, str) or not script.strip():
        raise _invalid("data.script must hold the robot's JavaScript (a script defining main(text, auth))")
    if len(script) > MAX_SCRIPT:
        raise _invalid(f"data.script is {len(script)} characters long; at most {MAX_SCRIPT} are allowed")
    active = data.get("isActive", True)
    if not isinstance(active, bool):
        raise _invalid("data.isActive must be true or false")
    scopes = parse_scopes(data.get("scopes", list(DEFAULT_SCOPES)))
    normalized = {**data, "script": script, "isActive": active, "scopes": [str(s) for s in scopes]}
    schedule = data.get("schedule")
    if schedule is None:
        normalized.pop("schedule", None)
    else:
        if not isinstance(schedule, dict):
            raise _invalid('data.schedule must be an object: {"delay": ms, "interval": ms}')
        if "interval" not in schedule:
            raise _invalid("data.schedule.interval is required: how many ms between runs")
        normalized["schedule"] = {
            **schedule,
            "delay": _millis(schedule.get("delay", 0), "delay", 0),
            "interval": _millis(schedule["interval"], "interval", MIN_INTERVAL),
        }
    return normalized


@dataclass(frozen=True, slots=True)
class Schedule:
    delay: int  # ms after creation (or activation) before the first run
    interval: int  # ms between runs


@dataclass(frozen=True, slots=True)
class RobotConfig:
    script: str
    active: bool
    scopes: tuple[Scope, ...]
    schedule: Schedule | None

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> RobotConfig:
        """From stored (already normalized) data."""
        schedule = data.get("schedule")
        return cls(
            script=str(data.get("script", "")),
            active=bool(data.get("isActive", True)),
            scopes=parse_scopes(data.get("scopes", list(DEFAULT_SCOPES))),
            schedule=Schedule(int(schedule.get("delay", 0)), int(schedule["interval"])) if schedule else None,
        )
