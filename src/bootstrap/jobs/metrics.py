"""Prometheus metrics of the job layer, served over HTTP by each worker and each scheduler.

Ports: `metrics: {port: P}` in bootstrap.yaml (or the environment variable BOOTSTRAP_METRICS_PORT,
read when a process starts, which wins) is the scheduler's port; the worker of the queue declared
n-th (from 0) serves on P + 1 + n, so a host running the scheduler and one worker per queue (what
`bootstrap up` and `python -m PACKAGE.worker` do) needs no further setting. 0 turns metrics off. A
port that is taken is logged once and the process runs on without metrics: metrics never stop jobs.

Per job, a few numbers are added to in memory (no lock, no label lookup: see `JobMetrics`);
queue depths are read from Redis only when Prometheus scrapes, at most once per `CACHE_SECONDS`.
Each process has its own registry, with the process collector (memory, CPU, open files). Imported
only where metrics are on: a process without them does not load prometheus_client.
"""

from __future__ import annotations

import logging
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from bootstrap.jobs.metrics_port import PORT_ENV

log = logging.getLogger("bootstrap.jobs.metrics")

CACHE_SECONDS = 2.0  # queue depths read from Redis at most this often, however often scraped
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, float("inf"))
LATENESS_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600, float("inf"))


class MetricsServer:
    """One process's registry and its HTTP endpoint (`/metrics`, any path in fact)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._server: Any = None
        self.port: int | None = None  # the port served on, once started

    def start(self, port: int, what: str) -> bool:
        """Serve on `port` (all interfaces); False, logged, when it cannot (port 0: off, silently)."""
        if port == 0 or self._server is not None:
            return False
        try:
            self._server, _ = start_http_server(port, addr="0.0.0.0", registry=self.registry)
        except OSError as exc:
            log.warning(
                "%s: cannot serve metrics on port %d (%s); running without metrics (set %s to another "
                "port, or 0 for none)", what, port, exc.strerror or exc, PORT_ENV,
            )  # fmt: skip
            return False
        self.port = port
        log.info("%s: metrics on http://0.0.0.0:%d/metrics", what, port)
        return True

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


# --- jobs -----------------------------------------------------------------------------------------


class Durations:
    """A histogram kept as plain counts: one bisect and two additions per observation."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * len(DURATION_BUCKETS)  # per bucket, not cumulative
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(DURATION_BUCKETS, seconds)] += 1
        self.total += seconds


class TaskSeries:
    """The counts of one (queue, task)."""

    __slots__ = ("completed", "failed", "retried", "started", "took_completed", "took_failed", "took_retried")

    def __init__(self) -> None:
        self.started = self.completed = self.failed = self.retried = 0
        self.took_completed, self.took_failed, self.took_retried = Durations(), Durations(), Durations()


class JobMetrics(Collector):
    """Jobs started, completed, failed (for good: in the failed store), retried (failed, tried again
    later), and how long attempts took, per queue and task.

    Per job this is the hottest path metrics have, so the counts are plain numbers written by the
    worker's event loop alone (prometheus_client's own counters take a lock per increment: ~10x the
    cost) and turned into metrics when scraped, in the HTTP server's thread. A scrape may see one job
    half counted (its bucket, not yet its sum): the next one is exact."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._series: dict[tuple[str, str], TaskSeries] = {}
        registry.register(self)

    def task(self, queue: str, task: str) -> TaskSeries:
        series = self._series.get((queue, task))
        if series is None:
            series = self._series[(queue, task)] = TaskSeries()
        return series

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        labels = ["queue", "task"]
        counters = {
            "started": CounterMetricFamily("bootstrap_jobs_started", "Job attempts started", labels=labels),
            "completed": CounterMetricFamily("bootstrap_jobs_completed", "Jobs completed", labels=labels),
            "retried": CounterMetricFamily(
                "bootstrap_jobs_retried", "Job attempts failed and retried later", labels=labels
            ),
            "failed": CounterMetricFamily(
                "bootstrap_jobs_failed", "Jobs failed for good (put in the failed-job store)", labels=labels
            ),
        }
        duration = HistogramMetricFamily(
            "bootstrap_job_duration_seconds",
            "How long job attempts ran, by outcome (completed, failed, retried)",
            labels=[*labels, "outcome"],
        )
        for (queue, task), series in list(self._series.items()):
            for name, family in counters.items():
                family.add_metric([queue, task], getattr(series, name))
            for outcome in ("completed", "retried", "failed"):
                took: Durations = getattr(series, f"took_{outcome}")
                counts, total = list(took.counts), took.total
                buckets = [(_LE[i], float(sum(counts[: i + 1]))) for i in range(len(counts))]
                duration.add_metric([queue, task, outcome], buckets, total)
        yield from counters.values()
        yield duration


_LE = ["+Inf" if bound == float("inf") else repr(float(bound)) for bound in DURATION_BUCKETS]  # Prometheus' `le`


# --- queues, read from Redis on scrape ----------------------------------------------------------------


@dataclass(frozen=True)
class Depth:
    queue: str
    counts: Mapping[str, int]  # state (waiting, running, delayed, completed, failed) -> jobs


class QueueDepths(Collector):
    """`bootstrap_queue_jobs{queue, state}`: jobs waiting, running, delayed (for a retry), and the
    completed and failed records kept. `read` does the Redis round trip; its result is cached for
    `CACHE_SECONDS`. A failed read yields `bootstrap_queue_read_ok 0` and no depths."""

    def __init__(self, read: Callable[[], Iterable[Depth]], cache_seconds: float = CACHE_SECONDS) -> None:
        self.read = read
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()  # one read at a time, however many scrapes arrive together
        self._at = -float("inf")
        self._cached: list[Depth] = []
        self._ok = True
        self._failing = False

    def depths(self) -> tuple[bool, list[Depth]]:
        with self._lock:
            now = time.monotonic()
            if now - self._at >= self.cache_seconds:
                self._at = now
                try:
                    self._cached, self._ok = list(self.read()), True
                    self._failing = False
                except Exception as exc:  # Redis away: the scrape still answers, saying so
                    self._cached, self._ok = [], False
                    if not self._failing:
                        log.warning("metrics: cannot read queue depths from Redis (%s: %s)", type(exc).__name__, exc)
                    self._failing = True
            return self._ok, self._cached

    def describe(self) -> Iterator[Metric]:
        return iter(())  # nothing known before the first scrape; no Redis read at registration

    def collect(self) -> Iterator[Metric]:
        ok, depths = self.depths()
        read_ok = GaugeMetricFamily("bootstrap_queue_read_ok", "1 when the last read of queue depths from Redis worked")
        read_ok.add_metric([], 1.0 if ok else 0.0)
        yield read_ok
        jobs = GaugeMetricFamily(
            "bootstrap_queue_jobs",
            "Jobs per queue and state: waiting, running, delayed (retries and delayed jobs), completed and failed "
            "(records kept)",
            labels=["queue", "state"],
        )
        for depth in depths:
            for state, count in depth.counts.items():
                jobs.add_metric([depth.queue, state], float(count))
        yield jobs


def redis_depths(client: Any, prefix: str, queues: Iterable[str]) -> Callable[[], list[Depth]]:
    """A reader of queue depths through `bootstrap.jobs.admin` (the numbers `bootstrap status` shows)."""
    names = list(queues)

    def read() -> list[Depth]:
        from bootstrap.jobs import admin

        return [
            Depth(s.queue, {"waiting": s.waiting, "running": s.running, "delayed": s.delayed,
                            "completed": s.completed, "failed": s.failed})
            for s in admin.queues_stats(client, prefix, names)
        ]  # fmt: skip

    return read


# --- schedules --------------------------------------------------------------------------------------


class ScheduleMetrics:
    """Slots fired, slots missed (more than the grace late: no scheduler ran then; skipped or run
    once, as the misfire policy says), and how late fired jobs were enqueued, per schedule."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.fires = Counter(
            "bootstrap_schedule_fires", "Jobs a schedule fired (one per slot)", ("schedule",), registry=registry
        )
        self.misses = Counter(
            "bootstrap_schedule_misses",
            "Slots missed while no scheduler ran (skipped or coalesced, per the misfire policy)",
            ("schedule",),
            registry=registry,
        )
        self.lateness = Histogram(
            "bootstrap_schedule_lateness_seconds",
            "How long after its slot a schedule's job was enqueued",
            ("schedule",),
            buckets=LATENESS_BUCKETS,
            registry=registry,
        )

    def seen(self, schedule: str) -> None:
        """Show a schedule's series (at 0) before its first fire or miss."""
        self.fires.labels(schedule)
        self.misses.labels(schedule)
        self.lateness.labels(schedule)

    def fired(self, schedule: str, late: float) -> None:
        self.fires.labels(schedule).inc()
        self.lateness.labels(schedule).observe(max(0.0, late))

    def missed(self, schedule: str) -> None:
        self.misses.labels(schedule).inc()
