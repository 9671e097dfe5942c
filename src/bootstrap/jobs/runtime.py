"""What a process of the job layer runs with: the runtime contract with its connection URLs resolved
from the environment at start-up (they are templates in the contract, never baked into generated
files), cut per queue for the broker."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from bootstrap.jobs.contract import Runtime
from bootstrap.spec.interpolate import interpolate
from bootstrap.spec.model import ConnectRetry, RateLimit


@dataclass(frozen=True)
class QueueRuntime:
    """Everything a broker of one queue needs."""

    prefix: str
    queue: str
    redis_url: str
    visibility_timeout: float
    concurrency: int
    completed_max_age: float
    completed_max_count: int
    failed_max_age: float
    failed_max_count: int
    connect_timeout: float = 5.0
    socket_timeout: float = 5.0
    batch: int = 100  # messages read (and acknowledged) per round trip
    max_deliveries: int = 3  # deliveries without finishing before a job goes to the failed store
    connect_retry: ConnectRetry = field(default_factory=ConnectRetry)
    mode: str = "standalone"  # how Redis runs: see bootstrap.connect.redis
    sentinel_master: str = ""
    sentinel_hosts: str = ""  # resolved
    wait_replicas: int = 0  # enqueues wait until this many replicas hold the job (WAIT)
    wait_timeout: float = 0.0
    metrics_port: int = 0  # as declared: the scheduler's port (see jobs.metrics); 0: no metrics
    rate_limit: RateLimit | None = None  # jobs taken per window by all workers of the queue
    result_max_bytes: int = 65536  # a return value larger than this as JSON is not kept

    @property
    def url(self) -> str:
        """The Redis URL (what bootstrap.connect.redis makes clients from)."""
        return self.redis_url


def resolve_url(template: str) -> str:
    """A connection URL template from the spec (`${REDIS_URL:-...}`), with today's environment."""
    return interpolate(template, os.environ)


def queue_runtime(runtime: Runtime, queue: str) -> QueueRuntime:
    """The settings of `queue`'s broker, its Redis URL resolved now."""
    declared, redis = runtime.queue(queue), runtime.redis
    return QueueRuntime(
        prefix=redis.key_prefix,
        queue=queue,
        redis_url=resolve_url(redis.url),
        visibility_timeout=declared.visibility_timeout,
        concurrency=declared.concurrency,
        completed_max_age=declared.completed.max_age,
        completed_max_count=declared.completed.max_count,
        failed_max_age=declared.failed.max_age,
        failed_max_count=declared.failed.max_count,
        connect_timeout=redis.connect_timeout,
        socket_timeout=redis.socket_timeout,
        connect_retry=redis.connect_retry,
        max_deliveries=declared.max_deliveries,
        mode=redis.mode,
        sentinel_master=redis.sentinel_master,
        sentinel_hosts=resolve_url(redis.sentinel_hosts),
        wait_replicas=redis.wait_replicas,
        wait_timeout=redis.wait_timeout,
        metrics_port=runtime.metrics_port,
        rate_limit=declared.rate_limit,
        result_max_bytes=declared.result_max_bytes,
    )
