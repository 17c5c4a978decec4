"""The sandbox's names where this package used to define them: the sandbox is `sharelake.sandbox` now."""

from __future__ import annotations

from sharelake.sandbox import DEFAULT_MEMORY_LIMIT as DEFAULT_MEMORY_LIMIT
from sharelake.sandbox import DEFAULT_SETUP_TIME_LIMIT as DEFAULT_SETUP_TIME_LIMIT
from sharelake.sandbox import DEFAULT_TIME_LIMIT as DEFAULT_TIME_LIMIT
from sharelake.sandbox import ConsoleLine as ConsoleLine
from sharelake.sandbox import EngineFailure as EngineFailure
from sharelake.sandbox import JsHost as JsHost
from sharelake.sandbox import MemoryLimitExceeded as MemoryLimitExceeded
from sharelake.sandbox import Sandbox as Sandbox
from sharelake.sandbox import SandboxError as SandboxError
from sharelake.sandbox import ScriptError as ScriptError
from sharelake.sandbox import TimeLimitExceeded as TimeLimitExceeded
from sharelake.sandbox import default_host as default_host
from sharelake.sandbox import error_for as error_for
from sharelake.sandbox import prelude as prelude
