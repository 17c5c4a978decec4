"""Running a robot: its script in a fresh sandbox per run, with record-and-replay for what needs Python.

A lib call that needs Python (a read, an LPP decode) looks its answer up in a table injected before the run.
When the answer is missing the call records the request, where the script cannot hide it, and throws. The
runtime reads the pending requests after the run (even if the script swallowed the exception), answers them
in Python, and runs the script again from the start in a fresh context with the table extended — until a run
finishes with nothing pending. Only that last run counts: its console lines and its buffered writes.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from sqlalchemy.exc import SQLAlchemyError

from sharelake.domain.errors import SharelakeError
from sharelake.domain.principal import Principal
from sharelake.domain.scopes import Scope
from sharelake.robots.lib import LibError, Library
from sharelake.sandbox import (
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_TIME_LIMIT,
    EngineFailure,
    JsHost,
    MemoryLimitExceeded,
    Sandbox,
    ScriptError,
    TimeLimitExceeded,
)

log = logging.getLogger(__name__)

MAX_RUNS = 16  # runs of one event (the first, then one per round of answers)
MAX_LOOKUPS = 256  # Python answers one event may ask for
SETUP_TIME_LIMIT = 1.0  # installing the lib and the answers table (not the robot's own time)

Answers = dict[str, dict[str, str]]  # request key → {"v": answer JSON} or {"e": error message}


@dataclass(frozen=True, slots=True)
class Written:
    """One `lib.writeShare` of the final run."""

    rec_type: str
    data: dict[str, Any]
    tags: list[str]


@dataclass(frozen=True, slots=True)
class Mail:
    """A mail a run sends: `sender` is the address replies go to (None: the server's own)."""

    sender: str | None
    to: list[str]
    subject: str
    body: str


@dataclass(slots=True)
class Outcome:
    runs: int  # how many times the script ran (1 + replays)
    lines: list[tuple[str, str]] = field(default_factory=list)  # (level, message) of the last run
    writes: list[Written] = field(default_factory=list)  # empty when `error` is set
    error: str | None = None
    has_main: bool = False
    bindings: str | None = None  # JSON of what the run left in `bindings`; None when it failed
    mails: list[Mail] = field(default_factory=list)  # empty when `error` is set
    returned: Any = None  # what main returned (as JSON holds it)


@dataclass(slots=True)
class _Attempt:
    pending: list[str]
    writes: list[Any]
    lines: list[tuple[str, str]]
    error: str | None
    has_main: bool
    bindings: str | None = None
    mails: list[Any] = field(default_factory=list)
    returned: Any = None


def request_key(name: str, args: list[Any]) -> str:
    """The key JavaScript gives a request (`JSON.stringify([name, args])`), for answering ahead of time."""
    return json.dumps([name, args], separators=(",", ":"), ensure_ascii=False)


class Runtime:
    """Runs robots' scripts; limits apply per run (`time_limit`) and per event (`max_runs`, `total_time`)."""

    def __init__(
        self,
        library: Library,
        *,
        time_limit: float = DEFAULT_TIME_LIMIT,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        max_runs: int = MAX_RUNS,
        total_time: float = 2.0,
        host: JsHost | None = None,
    ) -> None:
        self.library = library
        self.time_limit = time_limit
        self.memory_limit = memory_limit
        self.max_runs = max_runs
        self.total_time = total_time
        self._host = host

    def run(
        self,
        script: str,
        *,
        text: str,
        auth: str,
        principal: Principal,
        ids: list[str],
        now: int,
        answers: Mapping[str, dict[str, str]] | None = None,
        call_main: bool = True,
        bindings: str | None = None,
        respond: Callable[[str, Principal], dict[str, str]] | None = None,
    ) -> Outcome:
        """Run `main(text, auth)` until it needs nothing more from Python; never raises for the script's faults.

        `answers` may answer requests ahead of time (a guess at what the script will ask saves a run).
        With `call_main=False` only the script's top level runs (the check made when a robot is saved).
        `bindings`: the JSON object the previous successful run left in the global `bindings` (`{}` if none).
        `respond` answers requests instead of `answer` (a test run answers side effects without making them).
        Database errors while answering propagate: the worker retries the event later.
        """
        table: Answers = dict(answers or {})
        started = time.monotonic()
        looked_up = 0
        for run in range(1, self.max_runs + 1):
            setup = {
                "text": text,
                "auth": auth,
                "scopes": [[s.resource, s.operation] for s in principal.scopes],
                "scopeText": _scope_text(principal.scopes),
                "ids": ids,
                "now": now,
                "answers": table,
                "bindings": bindings,
            }
            attempt = self._attempt(script, orjson.dumps(setup).decode(), call_main)
            new = [key for key in dict.fromkeys(attempt.pending) if key not in table]
            if not new:
                if attempt.pending:  # asked again for what it was given: a lib bug, never loop on it
                    return Outcome(run, attempt.lines, error="the robot kept asking for answers it had")
                return self._finish(run, attempt)
            looked_up += len(new)
            if looked_up > MAX_LOOKUPS:
                return Outcome(
                    run, attempt.lines, error=f"the robot asked for more than {MAX_LOOKUPS} lookups"
                )
            for key in new:
                table[key] = (respond or self.answer)(key, principal)
            if time.monotonic() - started > self.total_time:
                return Outcome(
                    run,
                    attempt.lines,
                    error=f"the robot's runs took longer than {self.total_time:g} s in all",
                )
        return Outcome(
            self.max_runs,
            error=f"the robot still needed answers after {self.max_runs} runs (each read or decode it "
            "makes in turn costs a run)",
        )

    def check(self, script: str, principal: Principal) -> str | None:
        """Why a script cannot be saved (it does not compile, its top level fails, it defines no main)."""
        # No scopes: the top level reads nothing (it has no auth either); decoding works.
        outcome = self.run(
            script, text="", auth="", principal=replace(principal, scopes=()), ids=[], now=0, call_main=False
        )
        if outcome.error is not None:
            return outcome.error
        if not outcome.has_main:
            return "the script defines no main(text, auth) function"
        return None

    # -- one run ------------------------------------------------------------------------------------
    def _attempt(self, script: str, setup_json: str, call_main: bool) -> _Attempt:
        sandbox = Sandbox(
            time_limit=self.time_limit,
            memory_limit=self.memory_limit,
            setup_time_limit=self.time_limit,  # the script's top level runs on the robot's own time
            host=self._host,
        )
        top_error: str | None = None
        try:
            try:
                sandbox.evaluate(
                    f"(function () {{ {self.library.source()}; return ''; }})()", time_limit=SETUP_TIME_LIMIT
                )
                sandbox.evaluate(
                    f"(__sl_robot_setup({json.dumps(setup_json)}), '')", time_limit=SETUP_TIME_LIMIT
                )
            except (ScriptError, TimeLimitExceeded, MemoryLimitExceeded) as exc:
                return _Attempt([], [], [], f"the robot's lib could not be set up: {exc}", False)
            started = time.monotonic()
            try:
                sandbox.run(script)
            except ScriptError as exc:
                top_error = str(exc)
            remaining = max(0.005, self.time_limit - (time.monotonic() - started))
            finish = "__sl_robot_main()" if call_main and top_error is None else "__sl_robot_state()"
            state = orjson.loads(sandbox.evaluate(finish, time_limit=remaining))
            lines = sandbox.take_log()
        except TimeLimitExceeded:
            limit = f"{self.time_limit * 1000:.0f} ms"
            return _Attempt(
                [], [], sandbox.take_log(), f"the robot ran past its time limit of {limit}", False
            )
        except MemoryLimitExceeded:
            limit = f"{self.memory_limit >> 20} MiB"
            return _Attempt(
                [], [], sandbox.take_log(), f"the robot ran past its memory limit of {limit}", False
            )
        except EngineFailure as exc:
            return _Attempt([], [], [], f"the JavaScript engine failed: {exc}", False)
        except (ScriptError, orjson.JSONDecodeError) as exc:  # the state itself could not be read
            return _Attempt([], [], sandbox.take_log(), f"the robot's run could not be read: {exc}", False)
        finally:
            sandbox.close()
        if not isinstance(state, dict):
            return _Attempt([], [], lines, "the robot's run could not be read", False)
        error = top_error if top_error is not None else state.get("error")
        return _Attempt(
            pending=[str(k) for k in state.get("pending", [])],
            writes=list(state.get("writes", [])),
            lines=lines,
            error=None if error is None else str(error),
            has_main=bool(state.get("hasMain")),
            bindings=state.get("bindings") if isinstance(state.get("bindings"), str) else None,
            mails=list(state.get("mails", [])),
            returned=state.get("returned"),
        )

    def _finish(self, runs: int, attempt: _Attempt) -> Outcome:
        if attempt.error is not None:
            return Outcome(runs, attempt.lines, error=attempt.error, has_main=attempt.has_main)
        writes: list[Written] = []
        for rec_type, data_json, tags in attempt.writes:
            try:
                data = orjson.loads(data_json)
            except (orjson.JSONDecodeError, TypeError) as exc:  # e.g. a lone surrogate JavaScript let through
                return Outcome(
                    runs, attempt.lines, error=f"writeShare: the record is not storable JSON ({exc})"
                )
            writes.append(Written(str(rec_type), data, [str(t) for t in tags]))
        mails = [
            Mail(None if sender is None else str(sender), [str(t) for t in to], str(subject), str(body))
            for sender, to, subject, body in attempt.mails
        ]
        return Outcome(
            runs,
            attempt.lines,
            writes=writes,
            has_main=attempt.has_main,
            bindings=attempt.bindings,
            mails=mails,
            returned=attempt.returned,
        )

    def answer(self, key: str, principal: Principal) -> dict[str, str]:
        """The answer to one request (its key as JavaScript makes it), as the table holds answers."""
        try:
            name, args = orjson.loads(key)
        except (orjson.JSONDecodeError, ValueError):
            return {"e": "a lib request that cannot be read"}
        answer = self.library.answer(str(name)) if isinstance(name, str) else None
        if answer is None or not isinstance(args, list):
            return {"e": f"lib.{name} has no answer here"}
        try:
            return {"v": orjson.dumps(answer(principal, args)).decode()}
        except (LibError, SharelakeError) as exc:
            return {"e": str(exc)}
        except SQLAlchemyError:
            raise  # the database, not the robot: the event is retried
        except Exception as exc:
            log.exception("lib.%s failed", name)
            return {"e": f"lib.{name} failed: {type(exc).__name__}"}


def _scope_text(scopes: tuple[Scope, ...]) -> str:
    return ",".join(str(s) for s in scopes)
