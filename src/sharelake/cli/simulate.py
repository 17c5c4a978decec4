"""`sharelake simulate`: realistic uplinks POSTed at a steady rate to a running sharelake (or Microshare).

The bodies come from `sharelake.sources.simulate`; this module paces them (R per second, many in flight over a
connection pool), counts what the server answered and prints a summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

import click
import httpx
import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sharelake import __version__
from sharelake.domain import records as wire
from sharelake.domain.errors import Invalid
from sharelake.sources.simulate import NETWORKS, Delivery, Simulator

# Longest sleep between checks for Ctrl-C when the rate is low.
_NAP = 0.1


@dataclass(slots=True)
class Stats:
    sent: int = 0
    duplicates_sent: int = 0
    accepted: int = 0
    merged: int = 0  # duplicates the server answered with the first delivery's record id
    errors: Counter[str] = field(default_factory=Counter)
    reasons: dict[str, str] = field(default_factory=dict)  # the first error message per status
    latencies: list[float] = field(default_factory=list)
    started: float = 0.0
    last_send: float = 0.0
    asked_rate: float = 0.0
    _first_ids: dict[int, str] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return self.accepted + sum(self.errors.values())

    @property
    def rate(self) -> float:
        """Sends per second, over the time the sends took (one interval counted per send)."""
        if not self.sent:
            return 0.0
        span = self.last_send - self.started + 1 / self.asked_rate
        return self.sent / span if span > 0 else 0.0

    def answered(self, delivery: Delivery, record_id: str | None) -> None:
        if not delivery.twinned or record_id is None:
            return
        # A server that de-duplicates answers a frame's second delivery with the first one's record id.
        first = self._first_ids.pop(delivery.frame, None)
        if first is None:
            self._first_ids[delivery.frame] = record_id
        elif first == record_id:
            self.merged += 1

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return math.nan
        return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]

    def summary(self) -> list[str]:
        frames = self.sent - self.duplicates_sent
        lines = [
            f"sent {self.sent} uplinks ({frames} frames, {self.duplicates_sent} duplicates) "
            f"at {self.rate:.1f}/s (asked {self.asked_rate:g}/s)",
            f"accepted {self.accepted}, duplicates merged {self.merged}, errors {sum(self.errors.values())}",
        ]
        for status, n in sorted(self.errors.items()):
            reason = self.reasons.get(status)
            lines.append(f"  {status}: {n}" + (f" ({reason})" if reason else ""))
        if self.latencies:
            p50, p95, p99 = (self.percentile(p) * 1000 for p in (0.50, 0.95, 0.99))
            lines.append(f"latency p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms")
        return lines


@dataclass(frozen=True, slots=True)
class Target:
    url: str  # …/share/{recType}[?query]
    headers: dict[str, str]

    @classmethod
    def of(cls, base: str, rec_type: str, token: str, network: str) -> Target:
        spec = NETWORKS[network]
        url = f"{base.rstrip('/')}/share/{quote(rec_type, safe='')}"
        if spec.query:
            url += f"?{spec.query}"
        return cls(
            url=url,
            headers={
                "Content-Type": "application/json",
                "Authorization": token if spec.bare_token else f"Bearer {token}",
                "User-Agent": f"sharelake-simulate/{__version__}",
            },
        )


async def send(
    target: Target,
    source: Iterator[Delivery],
    *,
    rate: float,
    count: int | None = None,
    duration: float | None = None,
    concurrency: int = 32,
    timeout: float = 10.0,
    stop: asyncio.Event | None = None,
    stats: Stats | None = None,
) -> Stats:
    """POST deliveries at `rate` per second until `count` were sent, `duration` passed or `stop` is set."""
    stats = stats or Stats()
    stats.asked_rate = rate
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(concurrency)
    tasks: set[asyncio.Task[None]] = set()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        stats.started = start = loop.time()
        for index in itertools.count():
            if count is not None and index >= count:
                break
            # Each send has its own due time, so a late wake-up is caught up on, not carried forward.
            due = start + index / rate
            if duration is not None and due - start >= duration:
                break
            while not stop.is_set() and (wait := due - loop.time()) > 0:
                await asyncio.sleep(min(wait, _NAP))
            if stop.is_set():
                break
            await slots.acquire()
            delivery = next(source, None)
            if delivery is None:  # a finite source ran out
                slots.release()
                break
            stats.sent += 1
            stats.duplicates_sent += delivery.duplicate
            stats.last_send = loop.time()
            task = asyncio.create_task(_post(client, target, delivery, stats))
            tasks.add(task)

            def finished(task: asyncio.Task[None]) -> None:
                tasks.discard(task)
                slots.release()

            task.add_done_callback(finished)
        if tasks:
            await asyncio.gather(*tasks)
    return stats


async def _post(client: httpx.AsyncClient, target: Target, delivery: Delivery, stats: Stats) -> None:
    began = time.perf_counter()
    try:
        response = await client.post(target.url, content=delivery.body, headers=target.headers)
    except httpx.HTTPError as exc:
        name = type(exc).__name__
        stats.errors[name] += 1
        stats.reasons.setdefault(name, str(exc)[:120])
        return
    stats.latencies.append(time.perf_counter() - began)
    if 200 <= response.status_code < 300:
        stats.accepted += 1
        stats.answered(delivery, _record_id(response.content) if delivery.twinned else None)
        return
    status = str(response.status_code)
    stats.errors[status] += 1
    if status not in stats.reasons:
        stats.reasons[status] = _error_message(response.content)


def _record_id(body: bytes) -> str | None:
    with contextlib.suppress(orjson.JSONDecodeError, AttributeError, IndexError, KeyError, TypeError):
        record_id = orjson.loads(body)["objs"][0]["id"]
        return record_id if isinstance(record_id, str) else None
    return None


def _error_message(body: bytes) -> str:
    with contextlib.suppress(orjson.JSONDecodeError, AttributeError, KeyError, TypeError):
        message = orjson.loads(body)["error"]["message"]
        if isinstance(message, str):
            return message[:120]
    return body[:120].decode("utf-8", "replace")


@click.command()
@click.option("--network", type=click.Choice(list(NETWORKS)), required=True, help="Whose JSON to send.")
@click.option("--devices", type=click.IntRange(1, 1_000_000), default=10, show_default=True)
@click.option(
    "--rate", type=click.FloatRange(0.01, 1_000_000), default=10.0, show_default=True, help="Uplinks/s."
)
@click.option(
    "--url",
    envvar="SHARELAKE_URL",
    default="http://127.0.0.1:8000",
    show_default=True,
    help="Base URL of the server (or SHARELAKE_URL).",
)
@click.option(
    "--token", envvar="SHARELAKE_PIPE_TOKEN", default=None, help="Pipe token (or SHARELAKE_PIPE_TOKEN)."
)
@click.option(
    "--rec-type", default=None, help="recType to post to (default: io.sharelake.simulated.NETWORK)."
)
@click.option("--duration", type=click.FloatRange(0, min_open=True), default=None, help="Seconds to run.")
@click.option("--count", type=click.IntRange(1), default=None, help="Uplinks to send (duplicates included).")
@click.option(
    "--duplicates",
    type=click.FloatRange(0, 1),
    default=0.05,
    show_default=True,
    help="Share of frames delivered a second time (through another gateway).",
)
@click.option("--gateways", type=click.IntRange(1, 1000), default=3, show_default=True)
@click.option("--seed", type=int, default=None, help="Same seed, same devices and frames.")
@click.option(
    "--concurrency", type=click.IntRange(1, 10_000), default=32, show_default=True, help="Requests in flight."
)
@click.option(
    "--timeout", type=click.FloatRange(0.1), default=10.0, show_default=True, help="Seconds per request."
)
@click.option("--dry-run", is_flag=True, help="Print a few bodies (or --count) and send nothing.")
def simulate(
    network: str,
    devices: int,
    rate: float,
    url: str,
    token: str | None,
    rec_type: str | None,
    duration: float | None,
    count: int | None,
    duplicates: float,
    gateways: int,
    seed: int | None,
    concurrency: int,
    timeout: float,
    dry_run: bool,
) -> None:
    """Send realistic LoRaWAN uplinks, as NETWORK's server would, to URL/share/RECTYPE.

    Valid Cayenne LPP payloads, increasing frame counters, several gateways and occasional duplicates.
    Runs until --count or --duration, or Ctrl-C; then prints what the server answered.
    """
    if count is not None and duration is not None:
        raise click.UsageError("give --count or --duration, not both")
    rec_type = rec_type or f"io.sharelake.simulated.{network}"
    try:
        wire.check_rec_type(rec_type)
    except Invalid as exc:
        raise click.BadParameter(exc.message, param_hint="--rec-type") from None
    source = Simulator(network, devices, gateways=gateways, duplicates=duplicates, seed=seed)
    if dry_run:
        _dry_run(Target.of(url, rec_type, "<pipe token>", network), source, count or 3)
        return
    if not token:
        raise click.UsageError("a pipe token is needed: --token or SHARELAKE_PIPE_TOKEN")
    target = Target.of(url, rec_type, token, network)
    click.echo(f"simulating {devices} {network} devices → {target.url.split('?')[0]}", err=True)
    stats = Stats()
    try:
        asyncio.run(_run(network, target, source, stats, rate, count, duration, concurrency, timeout))
    finally:
        for line in stats.summary():
            click.echo(line)
    if stats.errors:
        sys.exit(1)


def _dry_run(target: Target, source: Simulator, count: int) -> None:
    click.echo(f"POST {target.url}")
    for name, value in target.headers.items():
        click.echo(f"{name}: {value}")
    for delivery in itertools.islice(source, count):
        click.echo("")
        click.echo(orjson.dumps(orjson.loads(delivery.body), option=orjson.OPT_INDENT_2).decode())


async def _run(
    label: str,
    target: Target,
    source: Simulator,
    stats: Stats,
    rate: float,
    count: int | None,
    duration: float | None,
    concurrency: int,
    timeout: float,
) -> None:
    stop = asyncio.Event()
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set() and main is not None:
            main.cancel()  # a second Ctrl-C: do not wait for the answers in flight
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, on_signal)
    total = count if count is not None else math.ceil(rate * duration) if duration is not None else None
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "{task.fields[rate]:.1f}/s  accepted {task.fields[accepted]}  errors {task.fields[errors]}"
        ),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        bar = progress.add_task(label, total=total, rate=0.0, accepted=0, errors=0)

        async def refresh() -> None:
            while True:
                progress.update(
                    bar,
                    completed=stats.done,
                    rate=stats.rate,
                    accepted=stats.accepted,
                    errors=sum(stats.errors.values()),
                )
                await asyncio.sleep(0.2)

        painter = asyncio.create_task(refresh())
        try:
            await send(
                target,
                source,
                rate=rate,
                count=count,
                duration=duration,
                concurrency=concurrency,
                timeout=timeout,
                stop=stop,
                stats=stats,
            )
        except asyncio.CancelledError:
            pass
        finally:
            painter.cancel()
            progress.update(
                bar, completed=stats.done, accepted=stats.accepted, errors=sum(stats.errors.values())
            )
