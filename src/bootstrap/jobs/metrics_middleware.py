"""The worker's metrics: a Taskiq middleware that counts each job's start and outcome, and serves
them (with the queue's depths, read from Redis on scrape) on the worker's metrics port.

It runs after the jobs middleware (`JobsMiddleware`, which decides whether a failed job is retried)
and tells a retry from a failure for good by the labels that middleware changes on a retry: the
attempt number, the count of transient retries, or the count of RetryAfter requests. The fast
receiver calls `started`, `completed` and `failed` directly; under the stock receiver the Taskiq
hooks do.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult

from bootstrap.connect import redis as redis_connect
from bootstrap.jobs import labels
from bootstrap.jobs.broker import StreamBroker
from bootstrap.jobs.message import Message

if TYPE_CHECKING:
    from bootstrap.jobs.metrics import JobMetrics, MetricsServer, TaskSeries


def _retry_labels(message: Message) -> tuple[Any, Any, Any]:
    return (
        message.labels.get(labels.ATTEMPT),
        message.labels.get(labels.TRANSIENT),
        message.labels.get(labels.RETRY_AFTERS),  # a RetryAfter: again later, no attempt spent
    )


SCRAPE_WAIT = 2.0  # seconds a scrape's Redis read may take (connect, then each command)


class MetricsMiddleware(TaskiqMiddleware):
    """`port`: where this worker serves its metrics (0: nowhere, but `make_broker` then adds none)."""

    def __init__(self, broker: StreamBroker, port: int) -> None:
        super().__init__()
        self.stream_broker = broker
        self.queue = broker.runtime.queue
        self.port = port
        # Made when first needed: every process importing the wiring (enqueue, the scheduler) makes
        # this middleware, and only workers count or serve anything.
        self._made: tuple[MetricsServer, JobMetrics] | None = None
        self._client: Any = None
        self._before: dict[str, tuple[Any, Any, Any]] = {}  # job id -> its retry labels when it started
        self._tasks: dict[str, TaskSeries] = {}  # task name -> its counts (this worker has one queue)

    def _metrics(self) -> tuple[MetricsServer, JobMetrics]:
        """The server and the job counts on its registry, made at the first call."""
        if self._made is None:
            from bootstrap.jobs.metrics import JobMetrics, MetricsServer  # prometheus_client: only here

            server = MetricsServer()
            self._made = (server, JobMetrics(server.registry))
        return self._made

    @property
    def jobs(self) -> JobMetrics:
        return self._metrics()[1]

    # --- the worker's life ----------------------------------------------------------------------------

    def startup(self) -> None:
        """In a worker only (enqueue and the scheduler start brokers too): serve the metrics. Taskiq
        calls this from the broker's start-up, which the receiver awaits before the worker's first
        read: loading prometheus_client and starting the HTTP thread stay out of the first jobs' path
        (tests/integration/jobs/test_metrics.py checks the order)."""
        if not self.stream_broker.is_worker_process or self.port == 0:
            return
        from bootstrap.jobs.metrics import QueueDepths, redis_depths

        server, _ = self._metrics()
        runtime = self.stream_broker.runtime
        # The HTTP thread's own client (scrapes are rare), one try of at most SCRAPE_WAIT per command:
        # a hung Redis must not hold a scrape past Prometheus's default scrape_timeout (10 s), which
        # would show the worker as down instead of `bootstrap_queue_read_ok 0`.
        waits = replace(runtime, connect_timeout=min(runtime.connect_timeout, SCRAPE_WAIT),
                        socket_timeout=min(runtime.socket_timeout, SCRAPE_WAIT))  # fmt: skip
        self._client = redis_connect.sync_client(waits, once=True)
        server.registry.register(QueueDepths(redis_depths(self._client, runtime.prefix, [self.queue])))
        server.start(self.port, f"worker {self.queue}")

    def shutdown(self) -> None:
        if self._made is not None:
            self._made[0].stop()
        if self._client is not None:
            self._client.close()
            self._client = None

    # --- around a job -------------------------------------------------------------------------------------

    def _series(self, task: str) -> TaskSeries:
        series = self._tasks.get(task)
        if series is None:
            series = self._tasks[task] = self.jobs.task(self.queue, task)
        return series

    def started(self, message: Message) -> None:
        self._before[message.task_id] = _retry_labels(message)
        self._series(message.task_name).started += 1

    def completed(self, message: Message, duration: float) -> None:
        self._before.pop(message.task_id, None)
        series = self._series(message.task_name)
        series.completed += 1
        series.took_completed.observe(duration)

    def failed(self, message: Message, duration: float) -> None:
        """After the jobs middleware handled the failure: retried if it changed the retry labels."""
        before = self._before.pop(message.task_id, None)
        series = self._series(message.task_name)
        if before is not None and before != _retry_labels(message):
            series.retried += 1
            series.took_retried.observe(duration)
        else:
            series.failed += 1
            series.took_failed.observe(duration)

    # --- taskiq's hooks (the stock receiver) ------------------------------------------------------------

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        self.started(message)
        return message

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        if not result.is_err:
            self.completed(message, result.execution_time)

    def on_error(self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException) -> None:
        self.failed(message, result.execution_time)
