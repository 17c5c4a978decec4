"""The JavaScript sandbox shared by codecs (decoders/) and robots (robots/): engine processes, limits, contexts.

- `host.JsHost`: an engine process (V8 or QuickJS) and its watchdog, which kills it when a call overruns
  its time limit by more than `grace` whatever the script does;
- `context.Sandbox`: one context of its own whose globals persist between calls (robots);
- templates (`JsHost.open_template` / `fresh_eval`): a script set evaluated in fresh global state every call
  (codecs, DESIGN §6);
- `errors`: what all of them raise.

It knows nothing of decoders, robots or storage.
"""

from __future__ import annotations

from sharelake.sandbox.context import (
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_SETUP_TIME_LIMIT,
    DEFAULT_TIME_LIMIT,
    ConsoleLine,
    Sandbox,
    error_for,
    prelude,
)
from sharelake.sandbox.errors import (
    EngineFailure,
    MemoryLimitExceeded,
    SandboxError,
    ScriptError,
    TimeLimitExceeded,
)
from sharelake.sandbox.host import ENGINES, Engine, JsHost, default_host

__all__ = [
    "DEFAULT_MEMORY_LIMIT",
    "DEFAULT_SETUP_TIME_LIMIT",
    "DEFAULT_TIME_LIMIT",
    "ENGINES",
    "ConsoleLine",
    "Engine",
    "EngineFailure",
    "JsHost",
    "MemoryLimitExceeded",
    "Sandbox",
    "SandboxError",
    "ScriptError",
    "TimeLimitExceeded",
    "default_host",
    "error_for",
    "prelude",
]
