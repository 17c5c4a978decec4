"""Robots: Microshare's user JavaScript, run as its owner on each new record of a recType or on a schedule.

The worker calls `handle` for an outbox event and commits what it returns with the event; the scheduler
(`run_due`, from the worker loop) runs scheduled robots. Scripts run outside any transaction (see
`robots.runtime`); a robot's writes, with derived ids, and its log lines are committed together.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import Connection, Engine

from sharelake.domain import records as wire
from sharelake.domain.clock import now_ms, to_iso
from sharelake.domain.clusters import derived_id
from sharelake.domain.errors import Invalid, NotFound, SharelakeError
from sharelake.domain.principal import Principal
from sharelake.domain.reads import Filter, Page
from sharelake.outbound import http as outbound
from sharelake.outbound.guard import Allow
from sharelake.robots.config import RobotConfig, normalize_robot_data
from sharelake.robots.lib import HTTP_METHODS, MAX_WRITES, LibError, Library, builtins
from sharelake.robots.runtime import MAX_RUNS, Mail, Outcome, Runtime, request_key
from sharelake.sandbox import DEFAULT_MEMORY_LIMIT, DEFAULT_TIME_LIMIT, JsHost
from sharelake.services.consumers import Consumers, acting_as, doc_data
from sharelake.services.documents import Documents, Kind
from sharelake.services.mail import Mailer
from sharelake.services.schedules import Scheduler
from sharelake.services.shares import ListQuery, Shares
from sharelake.services.views import Views
from sharelake.services.writes import Writes
from sharelake.storage import robots as store
from sharelake.storage.records import NewRecord
from sharelake.storage.types import AnyRow

log = logging.getLogger(__name__)

Write = Callable[[Connection], None]
MAX_CHAIN = 8  # robots feeding robots: a record this many robot hops from its source triggers no more
MAX_MESSAGE = 2000
_LEVELS = {
    "log": "info",
    "info": "info",
    "warn": "warn",
    "error": "error",
    "debug": "debug",
    "trace": "debug",
}
_EMPTY_ENVELOPE = wire.envelope([], total_count=0, per_page=1).decode()


def _triggered(doc: AnyRow) -> bool:
    """Robots without a schedule run on new records of their recType; scheduled ones only on schedule."""
    return doc_data(doc).get("schedule") is None


def robot_token(robot_id: str, depth: int) -> str:
    """`origin.tokendata.id` of what a robot writes: the robot, and how many robots deep the chain is."""
    return f"robo:{robot_id}" if depth <= 1 else f"robo:{robot_id}:{depth}"


def written_by(token_id: str | None) -> tuple[str, int] | None:
    """(robot id, chain depth) of a record a robot wrote, from its token id; None for anything else."""
    if not token_id or not token_id.startswith("robo:"):
        return None
    robot_id, _, depth = token_id[5:].partition(":")
    return robot_id, int(depth) if depth.isdigit() else 1


class Robots:
    def __init__(
        self,
        engine: Engine,
        writes: Writes,
        shares: Shares,
        consumers: Consumers,
        documents: Documents,
        *,
        time_limit: float = DEFAULT_TIME_LIMIT,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        max_runs: int = MAX_RUNS,
        total_time: float = 2.0,
        log_keep: int = 1000,
        host: JsHost | None = None,
        http_allow: Allow | None = None,
        http_timeout: float = 5.0,
        mailer: Mailer | None = None,
        views: Views | None = None,
    ) -> None:
        self._mailer = mailer
        self._views = views
        self._engine = engine
        self._http_allow = http_allow or Allow()
        # robot id -> (stored bindings the run started from, bindings it left): see `_bindings_of`
        self._planned_bindings: dict[str, tuple[str | None, str]] = {}
        self._http_timeout = http_timeout
        self._writes = writes
        self._shares = shares
        self._consumers = consumers
        self._documents = documents
        self.log_keep = log_keep
        self.library = Library(builtins())
        self.library.bind("readShareById", self._read_by_id)
        self.library.bind("readShareByTags", self._read_by_tags)
        self.library.bind("readShareByView", self._read_by_view)
        for method in HTTP_METHODS:
            self.library.bind(method, self._http)
        self.runtime = Runtime(
            self.library,
            time_limit=time_limit,
            memory_limit=memory_limit,
            max_runs=max_runs,
            total_time=total_time,
            host=host,
        )
        self.scheduler = Scheduler(engine, self._run_scheduled, transaction=writes.transaction)
        consumers.triggered["robo"] = _triggered

    # -- the document kind ------------------------------------------------------------------------
    def kind(self) -> Kind:
        def normalize(data: Any, principal: Principal) -> dict[str, Any]:
            normalized = normalize_robot_data(data)
            problem = self.runtime.check(normalized["script"], principal)
            if problem is not None:
                raise Invalid(f"data.script: {problem}", code="invalid_robot")
            return normalized

        def on_save(conn: Connection, _principal: Principal, _kind: Kind, values: dict[str, Any]) -> None:
            # First: the worker's transactions read the consumers before they touch schedules and logs.
            self._consumers.announce(conn)
            config = RobotConfig.from_data(orjson.loads(values["data"]))
            if values["active"] and config.schedule is not None:
                store.put_schedule(
                    conn, values["id"], config.schedule.delay, config.schedule.interval, now_ms()
                )
            else:
                store.delete_schedule(conn, values["id"])

        def on_delete(conn: Connection, _kind: Kind, robot_id: str) -> None:
            self._consumers.announce(conn)  # first, as in on_save
            store.delete_schedule(conn, robot_id)
            store.delete_logs(conn, robot_id)
            store.delete_bindings(conn, robot_id)

        return Kind(
            name="robo",
            resource="ROBO",
            title="robot",
            normalize=normalize,
            on_save=on_save,
            on_delete=on_delete,
            after_change=self._consumers.invalidate,
        )

    # -- a test run -------------------------------------------------------------------------------
    def test(self, principal: Principal, rec_type: str, robot_id: str, body: Any) -> dict[str, Any]:
        """Run a saved robot on a record as the worker would, and answer what it did — nothing of it
        happens: no record is written, no mail sent, its bindings are not saved, and of its HTTP requests
        only GETs are made (others are answered `{status: 0}` unsent)."""
        doc = self._documents.get(principal, self._documents.kind("robo"), rec_type, robot_id)
        config = RobotConfig.from_data(doc_data(doc))
        acting = self._principal(doc, config, 1)
        text = self._test_text(acting, doc.rec_type, body)
        http: list[dict[str, Any]] = []

        def respond(key: str, who: Principal) -> dict[str, str]:
            name, args = orjson.loads(key)
            if name in HTTP_METHODS and str(args[0]).upper() != "GET":
                http.append(
                    {"method": str(args[0]).upper(), "url": str(args[1]), "sent": False, "status": None}
                )
                return {"v": orjson.dumps({"status": 0, "headers": {}, "body": ""}).decode()}
            answer = self.runtime.answer(key, who)
            if name in HTTP_METHODS:
                status = orjson.loads(answer["v"])["status"] if "v" in answer else None
                http.append({"method": "GET", "url": str(args[1]), "sent": True, "status": status,
                             **({"error": answer["e"]} if "e" in answer else {})})  # fmt: skip
            return answer

        started = time.perf_counter()
        outcome = self.runtime.run(
            config.script,
            text=text,
            auth=f"robo:{doc.id}",
            principal=acting,
            ids=[f"test{n:020d}" for n in range(MAX_WRITES)],
            now=now_ms(),
            bindings=self._bindings_of(doc.id),
            respond=respond,
        )
        ms = round((time.perf_counter() - started) * 1000, 3)
        lines = [
            {"level": _LEVELS.get(level, "info"), "message": message} for level, message in outcome.lines
        ]
        printed = "\n".join(line["message"] for line in lines if line["level"] == "info")
        return {
            "output": {"returned": outcome.returned, "printed": printed},
            "logs": lines,
            "writes": [{"recType": w.rec_type, "data": w.data, "tags": w.tags} for w in outcome.writes],
            "mails": [
                {"from": m.sender, "to": m.to, "subject": m.subject, "body": m.body} for m in outcome.mails
            ],
            "http": http,
            "bindings": orjson.loads(outcome.bindings) if outcome.bindings else None,
            "error": outcome.error,
            "runs": outcome.runs,
            "ms": ms,
        }

    def _test_text(self, acting: Principal, rec_type: str, body: Any) -> str:
        """The `text` a test run's main gets: the record given, or the stored one named, in the envelope."""
        if not isinstance(body, dict) or ("record" in body) == ("recordId" in body):
            raise Invalid(
                'send {"record": {"data": {…}}} or {"recordId": "<id of a record>"}', code="invalid_body"
            )
        if "recordId" in body:
            record_id = body["recordId"]
            if not isinstance(record_id, str):
                raise Invalid("recordId must be a record id (a string)", code="invalid_body")
            return self._shares.get(acting, rec_type, record_id).decode()
        record = body["record"]
        if not isinstance(record, dict) or not isinstance(record.get("data", {}), dict):
            raise Invalid("record must be an object whose data is an object", code="invalid_body")
        full = {"recType": rec_type, "data": {}, "tags": [], "id": "test00000000000000000000", **record}
        return wire.envelope([full], total_count=1, per_page=1).decode()

    # -- the worker's side ------------------------------------------------------------------------
    def handle(self, doc: AnyRow, record: AnyRow) -> list[Write]:
        """The writes (to commit with the outbox event) of running a triggered robot on a new record."""
        config = RobotConfig.from_data(doc_data(doc))
        if config.schedule is not None:
            return []
        source = written_by(record.token_id)
        if source is not None and source[0] == doc.id:
            return []  # its own output: a robot writing into its own recType must not feed itself forever
        depth = source[1] + 1 if source is not None else 1
        if depth > MAX_CHAIN:
            message = (
                f"not run on record {record.id}: it comes from a chain of {depth - 1} robots feeding each "
                f"other (chains stop at {MAX_CHAIN})"
            )
            return [self._commit(doc, [("warn", message)], [], now_ms(), record.id)]
        principal = self._principal(doc, config, depth)
        text = wire.envelope([wire.full(record)], total_count=1, per_page=1).decode()
        return [self._run(doc, config, principal, text, source_id=record.id, record=record)]

    def run_due(self, now: int | None = None) -> int:
        """Run the scheduled robots due now (the worker loop calls this); how many ran."""
        return self.scheduler.run_due(now)

    def _run_scheduled(self, doc: AnyRow, run_id: str, _due: int) -> list[Write]:
        config = RobotConfig.from_data(doc_data(doc))
        if config.schedule is None:
            return []
        return [self._run(doc, config, self._principal(doc, config, 1), _EMPTY_ENVELOPE, source_id=run_id)]

    def _principal(self, doc: AnyRow, config: RobotConfig, depth: int) -> Principal:
        return dataclasses.replace(acting_as(doc), token_id=robot_token(doc.id, depth), scopes=config.scopes)

    def _run(
        self,
        doc: AnyRow,
        config: RobotConfig,
        principal: Principal,
        text: str,
        *,
        source_id: str,
        record: AnyRow | None = None,
    ) -> Write:
        now = now_ms()
        ids = [derived_id(source_id, doc.id, n) for n in range(MAX_WRITES)]
        bindings = self._bindings_of(doc.id)
        outcome = self.runtime.run(
            config.script,
            text=text,
            auth=f"robo:{doc.id}",
            principal=principal,
            ids=ids,
            now=now,
            answers=self._guesses(principal, record),
            bindings=bindings,
        )
        log.debug("robot %s ran %d time(s) for %s", doc.id, outcome.runs, source_id)
        return self._outcome_writes(
            doc, principal, outcome, ids, now, record.id if record is not None else None
        )

    def _guesses(self, principal: Principal, record: AnyRow | None) -> dict[str, dict[str, str]]:
        """Answers given before the first run: decoding the triggering uplink's payload, which most robots
        that decode do first — each answer given ahead saves a run."""
        if record is None or record.uplink is None:
            return {}
        payload = orjson.loads(record.uplink).get("payloadHex")
        if not isinstance(payload, str) or not payload:
            return {}
        key = request_key("decodeCayenneLPP", [payload.upper()])
        return {key: self.runtime.answer(key, principal)}

    def _outcome_writes(
        self,
        doc: AnyRow,
        principal: Principal,
        outcome: Outcome,
        ids: list[str],
        now: int,
        record_id: str | None,
    ) -> Write:
        lines = [(_LEVELS.get(level, "info"), message) for level, message in outcome.lines]
        parts: list[NewRecord] = []
        bindings = outcome.bindings
        if outcome.error is not None:
            lines.append(("error", outcome.error))
        elif outcome.writes:
            items = [(ids[n], w.rec_type, w.data, w.tags) for n, w in enumerate(outcome.writes)]
            try:
                parts = self._shares.derived(principal, items, now=now)
            except SharelakeError as exc:
                lines.append(("error", f"nothing was written: {exc.message}"))
                bindings = None  # the run did not take effect: neither do its bindings
        if outcome.error is None and bindings is not None:  # the run took effect: its mails go now
            lines.extend(self._send(outcome.mails))
        if bindings is not None:
            self._planned_bindings[doc.id] = (self._stored_bindings(doc.id), bindings)
        return self._commit(doc, lines, parts, now, record_id, bindings=bindings)

    def _send(self, mails: list[Mail]) -> list[tuple[str, str]]:
        """Send a run's mails; a line in the robot's log for each that could not go."""
        problems: list[tuple[str, str]] = []
        for mail in mails:
            to = ", ".join(mail.to)
            if self._mailer is None:
                problems.append(("error", f"mail to {to} not sent: this server sends no mail"))
                continue
            try:
                self._mailer.send(to, mail.subject, mail.body, reply_to=mail.sender)
            except SharelakeError:
                problems.append(
                    ("error", f"mail to {to} not sent: the mail server could not be reached or refused it")
                )
        return problems

    def _stored_bindings(self, robot_id: str) -> str | None:
        with self._engine.connect() as conn:
            return store.get_bindings(conn, robot_id)

    def _bindings_of(self, robot_id: str) -> str | None:
        """What the robot's previous run left in `bindings`. The worker commits a batch of events at
        once, so a run planned earlier in this batch, not yet committed, counts: it is used while the
        stored value is still the one that run started from."""
        stored = self._stored_bindings(robot_id)
        planned = self._planned_bindings.get(robot_id)
        if planned is not None and planned[0] == stored:
            return planned[1]
        self._planned_bindings.pop(robot_id, None)
        return stored

    def _commit(
        self,
        doc: AnyRow,
        lines: list[tuple[str, str]],
        parts: list[NewRecord],
        now: int,
        record_id: str | None,
        *,
        bindings: str | None = None,
    ) -> Write:
        rows = [
            {
                "robot_id": doc.id,
                "at": now,
                "level": level,
                "message": message[:MAX_MESSAGE],
                "record_id": record_id,
            }
            for level, message in lines
        ]
        keep = self.log_keep

        def write(conn: Connection) -> None:
            # The records first: their events are decided from the consumers this transaction reads
            # before it touches the logs (the lock order in `services.consumers`).
            self._writes.insert(conn, parts)
            if bindings is not None:
                store.put_bindings(conn, doc.id, bindings, now)
            if rows:
                store.add_logs(conn, rows)
                store.trim_logs(conn, doc.id, keep)

        return write

    # -- lib functions backed by Python -----------------------------------------------------------
    def _read_by_id(self, principal: Principal, args: list[Any]) -> Any:
        rec_type, record_id = str(args[0]), str(args[1])
        try:
            return orjson.Fragment(self._shares.get(principal, rec_type, record_id))
        except NotFound:  # as an empty page rather than an exception: `objs.length` tells
            return orjson.Fragment(wire.envelope([], total_count=0, per_page=1))

    def _read_by_tags(self, principal: Principal, args: list[Any]) -> Any:
        rec_type = str(args[0])
        tags = wire.check_tags([str(t) for t in args[1]]) if isinstance(args[1], list) else []
        query = ListQuery(flt=Filter(rec_type=wire.check_rec_type(rec_type), tags=tags), page=Page())
        return orjson.Fragment(self._shares.list_json(principal, query))

    def _read_by_view(self, principal: Principal, args: list[Any]) -> Any:
        """lib.readShareByView: the envelope `GET /share/{viewRecType}?id=<viewId>&…` gives the owner."""
        if self._views is None:
            raise LibError("readShareByView: views are not available here")
        view_rec_type, view_id, variables = str(args[0]), str(args[1]), args[2]
        params = {str(k): str(v) for k, v in (variables or {}).items()}
        source = params.get("recType", "").strip() or None
        return orjson.Fragment(self._views.run(principal, view_rec_type, view_id, source, params))

    def _http(self, _principal: Principal, args: list[Any]) -> Any:
        """lib.get/post/put/delete: one request through the outbound guard, answered as Microshare's
        lib answers it, `{status, headers, body}` with the body as text."""
        method, url, headers, body = args
        try:
            answer = outbound.request(
                str(method),
                str(url),
                allow=self._http_allow,
                headers={str(k): str(v) for k, v in (headers or {}).items()},
                body=None if body is None else str(body).encode(),
                timeout=self._http_timeout,
            )
        except outbound.OutboundError as exc:
            raise LibError(f"lib.{str(method).lower()}: {url}: {exc}") from None
        return {"status": answer.status, "headers": answer.headers, "body": answer.text}

    # -- the log ------------------------------------------------------------------------------------
    def log(
        self, principal: Principal, rec_type: str, robot_id: str, *, limit: int = 200, offset: int = 0
    ) -> list[AnyRow]:
        """A robot's log lines, newest first, for its owner only: rows of `at` (epoch ms), `level`, `message`
        and `record_id` (the record whose run wrote the line; none for scheduled runs)."""
        return self.log_page(principal, rec_type, robot_id, limit=limit, offset=offset)[0]

    def log_page(
        self, principal: Principal, rec_type: str, robot_id: str, *, limit: int, offset: int
    ) -> tuple[list[AnyRow], int]:
        """One page of the log, and how many lines it holds in all."""
        doc = self._documents.get(principal, self._documents.kind("robo"), rec_type, robot_id)
        with self._engine.connect() as conn:
            return store.list_logs(conn, doc.id, limit, offset), store.count_logs(conn, doc.id)


def log_obj(row: AnyRow) -> dict[str, Any]:
    """A log line as the API shows it."""
    return {"at": to_iso(row.at), "level": row.level, "message": row.message, "recordId": row.record_id}
