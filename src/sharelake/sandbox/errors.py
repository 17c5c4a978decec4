"""What the sandbox raises, all `SandboxError`:

SandboxError                 base; carries nothing but its message
├── ScriptError              the script threw, did not compile, or produced no string
├── TimeLimitExceeded        it ran past its time limit (the context is discarded and rebuilt on next use)
├── MemoryLimitExceeded      it ran past its memory limit (same)
└── EngineFailure            the engine process could not start or died (a crash is also reported as such)
"""

from __future__ import annotations


class SandboxError(Exception):
    pass


class ScriptError(SandboxError):
    pass


class TimeLimitExceeded(SandboxError):
    pass


class MemoryLimitExceeded(SandboxError):
    pass


class EngineFailure(SandboxError):
    pass
