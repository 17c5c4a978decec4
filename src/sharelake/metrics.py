"""Prometheus metrics without a client library: counters, gauges and histograms in this process,
rendered in the text exposition format at `GET /metrics`.

Hot paths only add to a float in a dict (no locks: a lost increment under a thread race is an
acceptable price for not taking a lock per request; CPython makes `+=` on a dict item rarely lose).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

LabelValues = tuple[str, ...]


class Counter:
    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name, self.help, self.labels = name, help_text, tuple(labels)
        self.values: dict[LabelValues, float] = {}

    def inc(self, amount: float = 1.0, *labels: str) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def samples(self) -> Iterable[tuple[str, LabelValues, float]]:
        for labels, value in self.values.items():
            yield self.name, labels, value

    kind = "counter"


class Gauge:
    """A value read when scraped."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self.name, self.help, self.labels, self.read = name, help_text, (), read

    def samples(self) -> Iterable[tuple[str, LabelValues, float]]:
        yield self.name, (), float(self.read())


class Histogram:
    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Sequence[float]) -> None:
        self.name, self.help, self.labels = name, help_text, ()
        self.bounds = sorted(buckets)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def samples(self) -> Iterable[tuple[str, LabelValues, float]]:
        running = 0
        for bound, count in zip([*self.bounds, math.inf], self.counts, strict=True):
            running += count
            yield f"{self.name}_bucket", ("+Inf" if bound == math.inf else repr(bound),), float(running)
        yield f"{self.name}_sum", (), self.sum
        yield f"{self.name}_count", (), float(running)


Metric = Counter | Gauge | Histogram
M = TypeVar("M", Counter, Gauge, Histogram)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class Metrics:
    """Everything sharelake measures; one instance per app (tests get fresh ones)."""

    def __init__(self) -> None:
        self._all: list[Metric] = []
        self.ingest_requests = self.add(
            Counter(
                "sharelake_ingest_requests_total", "Write requests (POST /share/...) by status.", ["status"]
            )
        )
        self.ingest_records = self.add(Counter("sharelake_ingest_records_total", "Records stored by writes."))
        self.ingest_duplicates = self.add(
            Counter("sharelake_ingest_duplicates_total", "Uplink repeats merged into an earlier record.")
        )
        self.ingest_seconds = self.add(
            Histogram("sharelake_ingest_seconds", "Write request latency, commit included.", LATENCY_BUCKETS)
        )
        self.http_requests = self.add(
            Counter(
                "sharelake_http_requests_total",
                "Other HTTP requests by method and status.",
                ["method", "status"],
            )
        )
        self.commit_batch = self.add(
            Histogram(
                "sharelake_commit_batch_jobs",
                "Write jobs per group commit.",
                (1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            )
        )
        self.commit_seconds = self.add(
            Histogram(
                "sharelake_commit_seconds", "Time to write and commit one group commit.", LATENCY_BUCKETS
            )
        )
        self.worker_events = self.add(Counter("sharelake_worker_events_total", "Outbox events processed."))
        self.worker_failures = self.add(
            Counter("sharelake_worker_failures_total", "Outbox event attempts that failed.")
        )
        self.decode_errors = self.add(
            Counter("sharelake_decode_errors_total", "Unpacked records whose decoder reported errors.")
        )

    def add(self, metric: M) -> M:
        self._all.append(metric)
        return metric

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self._all.append(Gauge(name, help_text, read))

    def render(self) -> str:
        lines: list[str] = []
        for metric in self._all:
            lines.append(f"# HELP {metric.name} {metric.help}")
            lines.append(f"# TYPE {metric.name} {metric.kind}")
            for name, values, value in metric.samples():
                if name.endswith("_bucket"):
                    label = f'{{le="{values[0]}"}}'
                elif values:
                    pairs = ",".join(
                        f'{key}="{_escape(v)}"' for key, v in zip(metric.labels, values, strict=False)
                    )
                    label = f"{{{pairs}}}"
                else:
                    label = ""
                lines.append(f"{name}{label} {_number(value)}")
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)
