"""A leaner Taskiq receiver for the generated tasks (`taskiq worker --receiver
bootstrap.jobs.receiver:FastReceiver`, which the launcher passes).

Taskiq's receiver resolves dependencies, builds result models, and creates several asyncio tasks per
job; for our tasks none of that is needed. Here long-lived coroutines take jobs handed over by the
broker's read loop (`_Intake`), run each handler directly (its timeout enforced by a sweep, see
`deadlines`, rather than a timer or an extra task per job) and apply the same retry/record/log
behaviour (JobsMiddleware) as under the stock receiver. `concurrency` slots bound the jobs that run
or ran and are not acknowledged yet (the crash bound, see acks); one coroutine more than slots
lets one send acknowledgements while the others run jobs. A coroutine runs jobs back to back while
it can and wakes another only when it is about to wait: jobs that do not wait cost no task switch.
Jobs arrive read and checked by the broker (see `intake`); a job's timeout is its task's, from the
spec, never a label's.
On shutdown it stops reading, lets running jobs finish (up to --wait-tasks-timeout) and gives jobs it
read but never started back to the queue. Anything else falls back to the stock receiver.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable
from typing import Any

from taskiq import TaskiqResult
from taskiq.receiver import Receiver

from bootstrap.errors import BootstrapError, JobTimedOut
from bootstrap.jobs.broker import SHUTDOWN_STEP, Delivery, StreamBroker, bounded
from bootstrap.jobs.contract import TaskContract
from bootstrap.jobs.deadlines import Deadlines
from bootstrap.jobs.message import Message, of
from bootstrap.jobs.metrics_middleware import MetricsMiddleware
from bootstrap.jobs.middleware import JobsMiddleware
from bootstrap.jobs.user_middlewares import Hooks

log = logging.getLogger("bootstrap.jobs.receiver")


class FastReceiver(Receiver):
    intake: _Intake  # set by listen

    def __init__(self, *args: Any, max_async_tasks: int | None = None, **kwargs: Any) -> None:
        kwargs["max_async_tasks"] = max_async_tasks
        super().__init__(*args, **kwargs)
        self.concurrency = max(1, max_async_tasks or 1)
        self.jobs = next((m for m in self.broker.middlewares if isinstance(m, JobsMiddleware)), None)
        self.metrics = next((m for m in self.broker.middlewares if isinstance(m, MetricsMiddleware)), None)
        self.hooks = Hooks(())  # the user's middlewares: known once the broker started (see listen)
        self.deadlines = Deadlines()

    async def listen(self, finish_event: asyncio.Event) -> None:
        broker = self.broker
        if self.jobs is None or not isinstance(broker, StreamBroker):
            return await super().listen(finish_event)
        if self.run_startup and not await _started(broker, finish_event):
            return None
        # The user's middlewares: bootstrap's own (jobs, metrics) are called directly below.
        self.hooks = Hooks(m for m in broker.middlewares if not isinstance(m, JobsMiddleware | MetricsMiddleware))
        log.info("queue %s: listening, concurrency %d", broker.runtime.queue, self.concurrency)
        intake = self.intake = _Intake(broker, self.concurrency)

        async def work() -> None:
            while (message := await intake.take()) is not None:
                handed = False  # the job's slot went to its acknowledgement (see acks.finished)
                try:
                    handed = await self._run(message)
                except Exception:  # Redis away while retrying or recording: not acknowledged, so it runs again
                    broker.abandon(message)  # no longer renewed: else it would stay ours, never run again
                    log.exception(
                        "queue %s: could not finish handling a job; it will be delivered again after "
                        "the visibility timeout",
                        broker.runtime.queue,
                    )
                finally:
                    if not handed:
                        intake.release(1)

        workers = [asyncio.create_task(work()) for _ in range(self.concurrency + 1)]
        reader = asyncio.create_task(intake.pump(finish_event))
        sweeper = asyncio.create_task(self.deadlines.sweep())
        stop = asyncio.create_task(finish_event.wait())
        await asyncio.wait({reader, stop, *workers}, return_when=asyncio.FIRST_COMPLETED)
        # From here on every wait is bounded by the shutdown timeout, counted from now; asyncio.wait
        # rather than wait_for, which can lose a cancellation on Python 3.11.
        deadline = time.monotonic() + (self.wait_tasks_timeout if self.wait_tasks_timeout is not None else math.inf)
        broker.stop_listening()
        # No job starts from here on, and the jobs read but not started go back at once, for the
        # queue's other workers, rather than after the running ones finished; idle workers end.
        intake.close()
        await bounded(broker.release_unstarted(), SHUTDOWN_STEP, "giving back unstarted jobs")
        await asyncio.wait({reader}, timeout=min(3.0, _left(deadline) or 3.0))  # a blocking read ends within 1 s
        reader.cancel()
        await bounded(broker.release_unstarted(), SHUTDOWN_STEP, "giving back unstarted jobs")  # that read's
        _, overran = await asyncio.wait(workers, timeout=_left(deadline)) if workers else (set(), set())
        for task in overran:  # not acknowledged: delivered again after the visibility timeout
            task.cancel()
        if overran:
            cut: list[str] = []
            await bounded(_collect(broker.hand_back_cut(), cut), SHUTDOWN_STEP, "handing back the jobs cut short")
            log.warning(
                "queue %s: %d job(s) did not finish within the shutdown timeout (%s): delivered again after "
                "the visibility timeout, this delivery not counted against max_deliveries",
                broker.runtime.queue, len(overran), ", ".join(cut[:10]) or "not handed back",
            )  # fmt: skip
        stop.cancel()
        sweeper.cancel()
        for task in (reader, *workers):
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return None

    async def _run(self, message: Delivery) -> bool:
        """Run one job; True when it ran to its end under this receiver and its slot now waits for
        its acknowledgement (queued, see acks.finished), False when the slot is free again."""
        broker = self.intake.broker
        job: Message | None = message.job  # read and checked by the broker (see intake)
        task = broker.find_task(job.task_name) if job is not None else None
        func = task.original_func if task is not None else None
        direct = getattr(func, "bootstrap_direct", None)
        if job is None or direct is None or self.jobs is None:  # not one of ours: taskiq's way
            await super().callback(broker.ackable(message))
            return False
        declared: TaskContract | None = getattr(func, "bootstrap_task", None)
        timeout = declared.timeout if declared is not None else None  # the spec's, not a label's
        if not broker.may_start(message):  # paused: given back, not run
            return False
        broker.started(message)
        kick, watchdog = self.intake.kick, broker.watchdog
        if self.hooks:
            kick()  # a middleware may wait: another worker goes on meanwhile
            job = await self.hooks.pre_execute(of(job))  # taskiq's model, as middlewares expect
        self.jobs.started(job)
        if self.metrics is not None:
            self.metrics.started(job)
        running = asyncio.current_task() if timeout is not None else None
        if running is not None and timeout is not None:
            self.deadlines.start(running, timeout)  # see `deadlines`: no timer per job
        started = time.perf_counter()
        try:
            run = direct(job)
            done, value = watchdog.first_step(job.task_id, job.task_name, run)
            if not done:  # it waits: the rest is tracked the same way, another worker goes on meanwhile
                value = await watchdog.resume(job.task_id, job.task_name, run, value, kick)
        except BaseException as exc:  # the job failed (or timed out): retry or record it
            expired = running is not None and self.deadlines.finish(running)
            error: BaseException = exc
            if isinstance(exc, asyncio.CancelledError) and expired and running is not None and not running.cancelling():
                error = JobTimedOut(f"the job ran longer than its timeout of {timeout:g}s")
            elif not isinstance(exc, Exception):  # cancelled from elsewhere (a shutdown that overran)
                raise
            took = time.perf_counter() - started
            kick()  # a retry is a round trip to Redis
            await self.jobs.failed(job, error, took)
            if self.metrics is not None:  # after: the jobs middleware decided whether it is retried
                self.metrics.failed(job, took)
            if self.hooks:
                kick()
                await self.hooks.after(of(job), _result(job, None, took, error), error)
        else:
            if running is not None:
                self.deadlines.finish(running)  # a handler that swallowed our cancellation completed all the same
            took = time.perf_counter() - started
            if timeout is not None and took > timeout:  # only a blocked loop keeps a timeout from firing
                log.warning(
                    "job %s finished after %.1fs, past its timeout of %gs: it blocked the event loop, where "
                    "no timeout can interrupt it (await instead of blocking, or make the handler a plain "
                    "function: it then runs in a thread, and its timeout applies)",
                    job.task_id,
                    took,
                    timeout,
                )
            self.jobs.completed(job, took, value)
            if self.metrics is not None:
                self.metrics.completed(job, took)
            if self.hooks:
                kick()
                await self.hooks.after(of(job), _result(job, value, took, None), None)
        broker.finished(message)  # acknowledged with the next flush; the slot is held until then
        return True


class _Intake:
    """Jobs read and not yet started, between the broker's read loop (`pump`) and the receiver's
    workers (`take`), and the worker's `concurrency` slots: a job holds one from when it is taken
    until its acknowledgement is safe from a crash (see acks), so at most `concurrency` jobs run or ran
    unacknowledged. A worker that finds no job it may start sends the queued acknowledgements itself
    (group commit), else waits as idle. Only a coroutine about to wait wakes an idle one (`kick`),
    once there is something to do: jobs that do not wait run back to back in one coroutine, with no
    task switch. A worker so woken sends the queued acknowledgements before it starts a job: jobs
    that wait on I/O do not keep the slots of finished jobs held while new ones start. What is read
    stays bounded by the broker's prefetch."""

    def __init__(self, broker: StreamBroker, concurrency: int) -> None:
        self.broker = broker
        self.acks = broker.acks
        self.concurrency = concurrency
        self.free = concurrency  # slots not held
        self.ready: deque[Delivery] = deque()
        self.idle: deque[asyncio.Future[None]] = deque()
        self.space: asyncio.Future[None] | None = None  # the reader waits on it while prefetch is full
        self.closed = False
        self._draining = False  # a worker sends acknowledgements: the slots they free are its to use
        self.acks.on_landed = self.release
        self.acks.on_refused = self.hold_again

    async def pump(self, finish_event: asyncio.Event) -> None:
        # At most half the prefetch waits here: the broker's next read (made once this batch is
        # handed over) then has room for the other half, so reads stay batched.
        most = max(1, self.broker.prefetch // 2)
        async for message in self.broker.deliveries():
            if finish_event.is_set() or self.closed:
                return
            self.ready.append(message)
            self.kick()
            while len(self.ready) >= most and not self.closed:
                self.space = asyncio.get_running_loop().create_future()
                await self.space  # set by the next job taken

    async def take(self) -> Delivery | None:
        """The next job to run, with a slot; None once closed."""
        acks = self.acks
        woken = False  # by `kick`: some coroutine is about to wait, so acknowledgements go first
        while True:
            if woken and acks.held and not acks.flushing:
                woken = False
                await self._drain()
                continue
            if self.free > 0 and self.ready:
                self.free -= 1
                message = self.ready.popleft()
                space = self.space
                if space is not None and not space.done():
                    space.set_result(None)
                return message
            if acks.held and not acks.flushing:  # nothing this worker may start: acknowledge what ran
                await self._drain()
                continue
            if self.closed:
                return None
            idle = asyncio.get_running_loop().create_future()
            self.idle.append(idle)
            await idle
            woken = True

    async def _drain(self) -> None:
        """Send the queued acknowledgements (see acks.drain); the slots they free are this worker's
        to use, and before each further round trip an idle worker is woken for them."""
        self._draining = True
        try:
            await self.acks.drain(self.kick, self._nothing_runs)
        finally:
            self._draining = False

    def _nothing_runs(self) -> bool:
        """Every slot is free or held by a finished job waiting for its acknowledgement."""
        return self.free + self.acks.held == self.concurrency

    def kick(self) -> None:
        """The running coroutine is about to wait: wake an idle worker if there is work for it (a job
        and a free slot, or acknowledgements nobody is sending)."""
        if (self.free > 0 and self.ready) or (self.acks.held and not self.acks.flushing):
            while self.idle:
                idle = self.idle.popleft()
                if not idle.done():
                    idle.set_result(None)
                    return

    def release(self, slots: int) -> None:
        """Slots given back (a job's acknowledgement landed, or a job that was not run)."""
        self.free += slots
        if not self._draining:  # else the draining worker goes on with them itself
            self.kick()

    def hold_again(self, slots: int) -> None:
        """Slots given back with a flush not waited for that Redis then refused: held again until its
        batch lands (see acks.flush). Taken from the free ones, below zero while the jobs started
        with them run: no job starts until as many slots came back."""
        self.free -= slots

    def close(self) -> None:
        """No more jobs: what is read but not started stays unstarted (the broker gives it back)."""
        self.closed = True
        self.ready.clear()
        for idle in self.idle:
            if not idle.done():
                idle.set_result(None)
        self.idle.clear()
        if self.space is not None and not self.space.done():
            self.space.set_result(None)


async def _started(broker: StreamBroker, finish_event: asyncio.Event) -> bool:
    """Start the broker; False when a stop (SIGTERM, Ctrl-C: taskiq sets `finish_event`) came first:
    its connect retries, Redis being away, may last minutes. A start-up error of ours (a server that
    refuses the credentials, or stayed away through every retry) ends the process with its one line
    (exit 1), not a traceback: its supervisor restarts it, or gives up and says so."""
    queue = broker.runtime.queue

    async def start() -> SystemExit | None:
        # A handler or middleware that cannot be used ends the worker (SystemExit, see wiring): raised
        # from this task it would reach the event loop, which prints a traceback; the caller raises it.
        try:
            await broker.startup()
        except SystemExit as exc:
            return exc
        return None

    startup = asyncio.ensure_future(start())
    stop = asyncio.ensure_future(finish_event.wait())
    await asyncio.wait({startup, stop}, return_when=asyncio.FIRST_COMPLETED)
    stop.cancel()
    if not startup.done():
        startup.cancel()
        await asyncio.wait({startup})
        log.info("queue %s: stopped while starting", queue)
        return False
    try:
        ended = startup.result()
    except BootstrapError as exc:
        log.error("queue %s: could not start: %s", queue, exc)
        raise SystemExit(1) from None
    if ended is not None:
        raise ended
    return True


def _result(job: Message, value: Any, took: float, error: BaseException | None) -> TaskiqResult[Any]:
    """The job's outcome as taskiq's middlewares expect it."""
    return TaskiqResult(is_err=error is not None, log=None, return_value=value, execution_time=took,
                        labels=job.labels, error=error)  # fmt: skip


def _left(deadline: float) -> float | None:
    """Seconds until `deadline`; None when there is none (wait as long as it takes)."""
    return None if deadline == math.inf else max(0.0, deadline - time.monotonic())


async def _collect(step: Awaitable[list[str]], into: list[str]) -> None:
    """`step`'s result into `into` (for `bounded`, which says only whether it finished)."""
    into.extend(await step)
