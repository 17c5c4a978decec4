"""wrk, the load generator: Lua scripts that send varied bodies, single and concurrent runs, parsing
its report. Every run uses one wrk thread; the servers under test share the machine's cores with it."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    rate: float  # requests per second
    timeouts: int


_COUNTER_LUA = """
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer %(token)s"}
local counter = 0
init = function(args)
  counter = tonumber(args[1] or "0") or 0
end
request = function()
  counter = counter + 1
  local body = '{"device":"sensor-' .. (counter %% 100) .. '","seq":' .. counter .. ',"temp":21.5,"hum":40}'
  return wrk.format("POST", nil, headers, body)
end
"""

# Cycles through a file of pre-generated bodies, one per line, from the line given as the script's
# argument (so successive runs send bodies not sent before).
_BODIES_LUA = """
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer %(token)s"}
local bodies = {}
local i = 0
init = function(args)
  for line in io.lines("%(path)s") do bodies[#bodies + 1] = line end
  i = tonumber(args[1] or "0") or 0
end
request = function()
  i = i + 1
  return wrk.format("POST", nil, headers, bodies[(i - 1) %% #bodies + 1])
end
"""


def counter_script(tmp: Path, token: str) -> Path:
    path = tmp / "counter.lua"
    path.write_text(_COUNTER_LUA % {"token": token})
    return path


def bodies_script(tmp: Path, name: str, token: str, bodies: list[bytes]) -> Path:
    data = tmp / f"{name}.bodies"
    with data.open("wb") as out:
        for body in bodies:
            if b"\n" in body:
                raise ValueError("a wrk body must fit on one line")
            out.write(body + b"\n")
    path = tmp / f"{name}.lua"
    path.write_text(_BODIES_LUA % {"token": token, "path": str(data)})
    return path


def _wrk_args(url: str, script: Path, seconds: float, connections: int, start: int) -> list[str]:
    return [
        "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "30s", "-s", str(script), url,
        "--", str(start),
    ]  # fmt: skip


def _parse_wrk(out: str) -> WrkResult:
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"{non2xx.group(1)} requests failed:\n{out}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    done = re.search(r"(\d+) requests in", out)
    if not rate or not done:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    timeouts = re.search(r"timeout (\d+)", out)
    return WrkResult(int(done.group(1)), float(rate.group(1)), int(timeouts.group(1)) if timeouts else 0)


def wrk(url: str, script: Path, seconds: float, connections: int, start: int = 0) -> WrkResult:
    out = subprocess.run(
        _wrk_args(url, script, seconds, connections, start), capture_output=True, text=True, check=True
    ).stdout
    return _parse_wrk(out)


def wrk_together(runs: list[tuple[str, Path, int]], seconds: float, connections: int) -> WrkResult:
    """Several wrk processes at once (one per server), `connections` each; their sum."""
    procs = [
        subprocess.Popen(
            _wrk_args(url, script, seconds, connections, start), stdout=subprocess.PIPE, text=True
        )
        for url, script, start in runs
    ]
    results = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"wrk failed:\n{out}")
        results.append(_parse_wrk(out))
    return WrkResult(
        sum(r.requests for r in results), sum(r.rate for r in results), sum(r.timeouts for r in results)
    )


def need_wrk() -> None:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: run scripts/bench-setup (apt-get install wrk)")
