"""The generic sandbox robots will share with codecs: calls, console, limits, and the engine process."""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import pytest

from sharelake.sandbox import (
    EngineFailure,
    JsHost,
    MemoryLimitExceeded,
    Sandbox,
    SandboxError,
    ScriptError,
    TimeLimitExceeded,
)


@pytest.fixture
def host(v8_host: JsHost) -> JsHost:
    return v8_host  # robots' sandboxes run in V8


@pytest.fixture
def sandbox(host: JsHost) -> Iterator[Sandbox]:
    with Sandbox(host=host) as box:
        yield box


ROBOT = """
var seen = 0;
function main(text, auth) {
  var record = JSON.parse(text).objs[0];
  seen += 1;
  console.log('robot saw', record.recType);
  return {recType: record.recType, temperature: record.data.t, seen: seen, auth: auth};
}
"""


def test_run_then_call_with_json(sandbox: Sandbox) -> None:
    sandbox.run(ROBOT)
    text = json.dumps({"meta": {}, "objs": [{"recType": "io.demo", "data": {"t": 21.5}}]})
    answer = sandbox.call("main", json.dumps([text, "token"]))
    assert json.loads(answer) == {"recType": "io.demo", "temperature": 21.5, "seen": 1, "auth": "token"}
    assert sandbox.take_log() == [("log", "robot saw io.demo")]


def test_call_results_are_json_text(sandbox: Sandbox) -> None:
    sandbox.run(
        "function nothing() {} function nan() { return [NaN, 1e400]; } function s() { return 'a\\u2028b'; }"
    )
    assert sandbox.call("nothing") == "null"
    assert json.loads(sandbox.call("nan")) == [None, None]
    assert json.loads(sandbox.call("s")) == "a\u2028b"


def test_arguments_are_data_never_code(sandbox: Sandbox) -> None:
    sandbox.run("function echo(x) { return x; }")
    sneaky = '"); throw new Error("injected"); ("'
    assert json.loads(sandbox.call("echo", json.dumps([sneaky]))) == sneaky


def test_calling_what_is_not_a_function(sandbox: Sandbox) -> None:
    with pytest.raises(ScriptError, match="TypeError: nope is not a function"):
        sandbox.call("nope")


def test_a_script_error_is_a_script_error(sandbox: Sandbox) -> None:
    with pytest.raises(ScriptError, match="syntax error: SyntaxError"):
        sandbox.run("function (")
    with pytest.raises(ScriptError, match="ReferenceError: missing is not defined"):
        sandbox.run("missing()")
    sandbox.run("var fine = 1;")  # a failed script is not kept
    assert sandbox.evaluate("String(fine)") == "1"


def test_sandboxes_are_isolated(host: JsHost) -> None:
    with Sandbox(host=host) as one, Sandbox(host=host) as two:
        one.run("Object.prototype.polluted = 1; var g = 'one';")
        two.run("var g = 'two';")
        assert one.evaluate("g + typeof ({}).polluted") == "onenumber"
        assert two.evaluate("g + typeof ({}).polluted") == "twoundefined"


def test_after_a_time_limit_the_context_is_rebuilt_from_its_scripts(sandbox: Sandbox) -> None:
    sandbox.run("var count = 0; function tick() { return ++count; } function spin() { for (;;) {} }")
    assert sandbox.call("tick") == "1"
    assert sandbox.call("tick") == "2"
    with pytest.raises(TimeLimitExceeded, match="100 ms"):
        sandbox.call("spin")
    assert sandbox.call("tick") == "1"


def test_the_memory_limit(host: JsHost) -> None:
    with Sandbox(host=host, memory_limit=16 << 20, time_limit=5.0) as box:
        box.run("var keep = [];")
        with pytest.raises(MemoryLimitExceeded):
            box.evaluate("(function () { for (;;) keep.push(new Array(10000).fill(0.5)); })()")
        assert box.evaluate("String(keep.length)") == "0"


def test_console_lines_are_bounded(sandbox: Sandbox) -> None:
    sandbox.run("for (var i = 0; i < 150; i++) console.log(i);")
    lines = sandbox.take_log()
    assert len(lines) == 101
    assert lines[0] == ("log", "0")
    assert lines[-1] == ("warn", "50 more console lines dropped")


def test_a_closed_sandbox_refuses_work(host: JsHost) -> None:
    box = Sandbox(host=host)
    box.run("var x = 1;")
    box.close()
    with pytest.raises(SandboxError, match="closed"):
        box.evaluate("'x'")


def test_an_engine_that_will_not_stop_is_killed_and_restarted() -> None:
    # V8 checks for termination late inside some built-ins (filling a huge array takes seconds to stop);
    # the host kills its process once the grace period is over.
    host = JsHost(grace=0.3)
    try:
        with Sandbox(host=host, time_limit=0.05) as box:
            box.run("var ready = 'yes';")
            started = time.monotonic()
            with pytest.raises(TimeLimitExceeded, match="engine was restarted"):
                box.evaluate("(new Array(2 ** 27).fill(0), 'done')")
            assert time.monotonic() - started < 3
            assert box.evaluate("ready") == "yes"
    finally:
        host.close()


def test_an_engine_crash_is_reported_and_recovered(host: JsHost) -> None:
    with Sandbox(host=host, time_limit=5.0) as box:
        box.run("function spin() { for (;;) {} }")
        box.evaluate("'warm'")
        pid = host.pid
        assert pid is not None

        def crash_once_running() -> None:
            deadline = time.monotonic() + 5
            while not host.busy and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.05)
            os.kill(pid, signal.SIGKILL)

        killer = threading.Thread(target=crash_once_running)
        killer.start()
        with pytest.raises(EngineFailure, match="stopped unexpectedly"):
            box.call("spin")
        killer.join()
        assert box.evaluate("typeof spin") == "function"
        assert host.pid not in (None, pid)


def test_the_interpreter_exits_cleanly_after_a_timeout() -> None:
    # mini-racer's own API once left a thread behind after a JS timeout and the process never exited.
    script = textwrap.dedent(
        """
        from datetime import UTC, datetime
        from sharelake.decoders import JavaScriptCodec
        codec = JavaScriptCodec("function decodeUplink(i) { while (true) {} }")
        print(codec(b"", 1, datetime.now(UTC)).errors[0])
        """
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "the script ran past its time limit of 100 ms"
    assert time.monotonic() - started < 15


def test_a_sandbox_dropped_without_close_frees_its_context(host: JsHost) -> None:
    box = Sandbox(host=host)
    box.run("var big = new Array(1000).fill(1);")
    del box
    gc.collect()
    assert len(host.orphans) == 1
    with Sandbox(host=host) as other:
        assert other.evaluate("'alive'") == "alive"
    assert len(host.orphans) == 0


def test_a_sandbox_keeps_its_globals_in_v8_only() -> None:
    # QuickJS serves codecs' fresh contexts (templates); a context that keeps its globals is V8's.
    with pytest.raises(ValueError, match="V8 only"):
        Sandbox(host=JsHost("quickjs"))
