"""Device clusters' health (DESIGN §11): what their decodes came to, and the pause of a codec that keeps
hitting its limits.

Counts move in the transaction that writes the unpacked record, and only when that record is new: a retried
event, or a replay rewriting a record, counts nothing twice. A cluster whose decodes hit the time or memory
limit `PAUSE_AFTER` times in a row is paused: its uplinks still get an unpacked record, an errored one saying
so, without running the codec, until its owner saves the cluster again.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from sharelake.decoders import DecodeResult
from sharelake.domain.clock import now_ms, to_iso
from sharelake.storage import cluster_health as store
from sharelake.storage.types import AnyRow

PAUSE_AFTER = 20  # decodes in a row that hit a limit
RECHECK_S = 1.0  # how long a process trusts that a cluster is not paused before asking the database again
MAX_MESSAGE = 1000
MAX_PAYLOAD_HEX = 4096
_NOTED = "sharelake.cluster_health.noted"  # conn.info: (transaction, the decodes it writes)
# How the sandbox words a decode it stopped ("the script ran past its time limit of 100 ms"); a plain
# codec error, one that merely mentions a limit, is not a limit hit.
_LIMIT = re.compile(r"ran past its (time|memory) limit(?: of ([0-9.]+ ?(?:ms|s|[KMG]iB|B)\b))?")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one uplink's decode came to, as its cluster's health counts it."""

    error: str | None  # None: decoded
    payload_hex: str | None
    limit: str | None = None  # "time" or "memory": the decode was stopped at that limit
    limit_label: str | None = None  # "time limit (100 ms)", for the pause's reason
    paused: str | None = None  # why the codec did not run: the cluster is paused

    @property
    def skipped(self) -> bool:
        return self.paused is not None

    @classmethod
    def of(cls, result: DecodeResult, payload_hex: str | None) -> Outcome:
        if not result.errors:
            return cls(None, payload_hex)
        message = "; ".join(result.errors)[:MAX_MESSAGE]
        for problem in result.errors:
            hit = _LIMIT.search(problem)
            if hit is not None:
                kind, amount = hit.groups()
                label = f"{kind} limit ({amount})" if amount else f"{kind} limit"
                return cls(message, payload_hex, limit=kind, limit_label=label)
        return cls(message, payload_hex)

    @classmethod
    def not_run(cls, reason: str, payload_hex: str | None) -> Outcome:
        return cls(paused_message(reason), payload_hex, paused=reason)


def pause_reason(count: int, limit_label: str) -> str:
    return f"{count} decodes in a row hit the {limit_label}"


def paused_message(reason: str) -> str:
    """The error of an uplink the codec did not run on."""
    return f"not decoded: the cluster is paused ({reason}); saving the cluster resumes it"


def _merged(before: str | None, label: str) -> str:
    if before is None or before == label:
        return label
    return "time and memory limits"


def shown(row: AnyRow | None) -> dict[str, Any]:
    """The `health` of a cluster's API obj (DESIGN §11)."""
    if row is None:
        return {
            "decoded": 0,
            "errored": 0,
            "timedOut": 0,
            "paused": False,
            "pausedReason": None,
            "lastError": None,
        }
    last = None
    if row.last_error is not None:
        last = {
            "message": row.last_error,
            "payloadHex": row.last_payload_hex,
            "at": to_iso(row.last_error_at),
        }
    return {
        "decoded": row.decoded,
        "errored": row.errored,
        "timedOut": row.timed_out,
        "paused": bool(row.paused),
        "pausedReason": row.paused_reason if row.paused else None,
        "lastError": last,
    }


@dataclass(frozen=True, slots=True)
class _Noted:
    cluster_id: str
    version: int
    unpacked_id: str
    outcome: Outcome


class ClusterHealth:
    """The health rows, and what this process knows of them between reads (keyed by cluster and version,
    the cluster's `updated`: saving a cluster makes a new version, so nothing known of the old one holds)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._paused: dict[tuple[str, int], str] = {}  # reason; only a save lifts a pause
        self._clear_until: dict[tuple[str, int], float] = {}  # seen not paused, trusted until then
        self._streaks: dict[tuple[str, int], tuple[int, str]] = {}  # this process's hits in a row

    def of(self, cluster_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        with self._engine.connect() as conn:
            rows = store.list_(conn, list(cluster_ids))
        return {cluster_id: shown(rows.get(cluster_id)) for cluster_id in cluster_ids}

    # -- the worker's side: before decoding, then in the event's transaction ----------------------------
    def paused(self, cluster_id: str, version: int) -> str | None:
        """Why the cluster is paused (None: decode). Asks the database at most every RECHECK_S per cluster:
        another process may have paused it."""
        key = (cluster_id, version)
        reason = self._paused.get(key)
        if reason is not None or self._clear_until.get(key, 0.0) > time.monotonic():
            return reason
        with self._engine.connect() as conn:
            row = store.get(conn, cluster_id)
        if len(self._clear_until) > 10_000:
            self._clear_until.clear()
        if row is not None and row.paused and row.since <= version:
            return self._pause(key, row.paused_reason or "paused")
        self._clear_until[key] = time.monotonic() + RECHECK_S
        return None

    def observed(self, cluster_id: str, version: int, outcome: Outcome) -> None:
        """Count a decode this process ran toward the pause: a batch of events is decoded before any of
        them commits, so the database's streak alone would let a whole batch of looping decodes run."""
        key = (cluster_id, version)
        if outcome.limit_label is None:
            self._streaks.pop(key, None)
            return
        count, label = self._streaks.get(key, (0, outcome.limit_label))
        count, label = count + 1, _merged(label, outcome.limit_label)
        if len(self._streaks) > 10_000:
            self._streaks.clear()
        self._streaks[key] = (count, label)
        if count >= PAUSE_AFTER:
            self._pause(key, pause_reason(count, label))

    def _pause(self, key: tuple[str, int], reason: str) -> str:
        if len(self._paused) > 10_000:
            self._paused.clear()
        self._paused[key] = reason
        return reason

    def note(
        self, conn: Connection, cluster_id: str, version: int, unpacked_id: str, outcome: Outcome
    ) -> None:
        """A decode whose unpacked record this transaction writes; counted by `settle`, at its end."""
        transaction = conn.get_transaction()
        pending: tuple[object, list[_Noted]] | None = conn.info.get(_NOTED)
        if pending is None or pending[0] is not transaction:
            pending = conn.info[_NOTED] = (transaction, [])
        pending[1].append(_Noted(cluster_id, version, unpacked_id, outcome))

    def settle(self, conn: Connection, written: set[str]) -> None:
        """In the writing transaction, once its records are stored (`written`: the ids of those that were
        not there before): each noted cluster's row locked (in one order, so workers never deadlock),
        its counts and streak moved on by its decodes in order, and written back once. A decode counts
        only when its record was new: a retried event, another worker's copy of it, or a replay of a
        record already decoded counts nothing."""
        pending: tuple[object, list[_Noted]] | None = conn.info.pop(_NOTED, None)
        if pending is None or pending[0] is not conn.get_transaction():
            return
        by_cluster: dict[str, list[_Noted]] = {}
        for noted in pending[1]:
            by_cluster.setdefault(noted.cluster_id, []).append(noted)
        for cluster_id in sorted(by_cluster):
            row = dict(store.locked(conn, cluster_id)._mapping)  # held to the commit
            before = dict(row)
            for noted in by_cluster[cluster_id]:
                if noted.unpacked_id in written:
                    written.discard(noted.unpacked_id)  # a second copy in this batch counts nothing
                    row.update(_counts(row, noted.outcome))
                if noted.version >= row["since"]:  # a decode of the cluster as last saved
                    row.update(_streak(row, noted.outcome))
            changes = {k: v for k, v in row.items() if before[k] != v}
            if changes:
                store.update_(conn, cluster_id, **changes)

    # -- the cluster's own changes ----------------------------------------------------------------------
    @staticmethod
    def saved(conn: Connection, cluster_id: str, version: int) -> None:
        store.resume(conn, cluster_id, version)

    @staticmethod
    def deleted(conn: Connection, cluster_id: str) -> None:
        store.delete_(conn, cluster_id)


def _counts(row: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
    if outcome.error is None:
        return {"decoded": row["decoded"] + 1}
    changes: dict[str, Any] = {"errored": row["errored"] + 1}
    if outcome.limit == "time":
        changes["timed_out"] = row["timed_out"] + 1
    if not outcome.skipped:  # the error that matters stays the one that paused it
        payload = outcome.payload_hex[:MAX_PAYLOAD_HEX] if outcome.payload_hex is not None else None
        changes.update(last_error=outcome.error, last_payload_hex=payload, last_error_at=now_ms())
    return changes


def _streak(row: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
    if outcome.skipped:  # this process paused it on what it saw; the database says so too from now on
        return {} if row["paused"] else {"paused": True, "paused_reason": outcome.paused}
    if outcome.limit_label is None:
        return {"streak": 0, "streak_limit": None} if row["streak"] else {}
    streak, label = row["streak"] + 1, _merged(row["streak_limit"], outcome.limit_label)
    changes: dict[str, Any] = {"streak": streak, "streak_limit": label}
    if streak >= PAUSE_AFTER and not row["paused"]:
        changes.update(paused=True, paused_reason=pause_reason(streak, label))
    return changes
