"""A worker's watch on its own event loop: a loop blocked for longer than BLOCKED_AFTER is logged,
with the job whose code blocks it and where that code is, while it happens and again when it ends.

A handler that blocks the loop (time.sleep in an async function, CPU-bound work, a synchronous
client) holds up every other job of the worker, its acknowledgements and its timeouts. Lease
renewal does not depend on the loop (see upkeep.Renewer), so such a job is not handed out twice,
but the operator should hear of it: the fix is in the handler (await, or make it a plain function,
which runs in a thread).

How: a coroutine on the loop notes a heartbeat every TICK; a daemon thread compares it with the
clock. Jobs run through `first_step` and `resume`, which note which job's code is executing at each
step of its coroutine, so the thread can name the job (and, from the loop thread's current frame,
the line).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, TypeVar

log = logging.getLogger("bootstrap.jobs.watchdog")

BLOCKED_AFTER = 1.0  # seconds without a heartbeat of the loop before it counts as blocked
TICK = 0.1  # seconds between heartbeats, and between the thread's looks

T = TypeVar("T")


def _nothing() -> None:
    return None


class LoopWatchdog:
    def __init__(self, queue: str, blocked_after: float = BLOCKED_AFTER) -> None:
        self.queue = queue
        self.blocked_after = blocked_after
        # Called from the watching thread while the loop stays blocked, every `tell_every` seconds,
        # with what blocks it: the worker's heartbeat, which the loop cannot send meanwhile.
        self.on_blocked: Callable[[str], None] | None = None
        self.tell_every = 5.0
        self.current: tuple[str, str] | None = None  # (job id, task) whose code runs on the loop now
        self._beat = time.monotonic()
        self._blocked_by: str | None = None  # set by the thread once it reported a block
        self._loop_thread: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- on the event loop ----------------------------------------------------------------------

    async def step(self) -> None:
        """The loop's heartbeat (a `Background` step); says when a reported block is over."""
        now = time.monotonic()
        blocked_for, blocker = now - self._beat, self._blocked_by
        self._beat = now
        if blocker is not None:
            self._blocked_by = None
            log.warning("queue %s: the event loop was blocked for %.1fs %s", self.queue, blocked_for, blocker)
        await asyncio.sleep(TICK)

    def first_step(self, job_id: str, task: str, job: Coroutine[Any, Any, T]) -> tuple[bool, Any]:
        """Run `job` up to its first wait, noting that its code is what runs: (True, its value) when
        it finished without waiting, (False, what it waits on) else, for `resume`. Most jobs of a
        busy worker never wait: they cost no wrapper. What the job raises is raised."""
        self.current = (job_id, task)
        try:
            signal = job.send(None)
        except StopIteration as done:
            return True, done.value
        finally:
            self.current = None
        return False, signal

    def resume(
        self, job_id: str, task: str, job: Coroutine[Any, Any, T], waits_on: Any, on_wait: Callable[[], None] = _nothing
    ) -> Awaitable[T]:
        """The rest of a job whose `first_step` is waiting on `waits_on`, noting that its code is what
        runs whenever one of its steps runs; `on_wait` is called each time the job is about to wait
        (the receiver hands work to an idle worker then)."""
        return _Tracked(self, (job_id, task), job, on_wait, (waits_on,))

    # --- the watching thread ----------------------------------------------------------------------

    def start(self) -> None:
        self._loop_thread = threading.get_ident()  # called on the loop's thread
        self._beat = time.monotonic()
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name=f"watchdog-{self.queue}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)
            self._thread = None

    def _watch(self) -> None:
        told = 0.0
        while not self._stop.wait(TICK):
            now = time.monotonic()
            blocked_for = now - self._beat
            blocker, tell = self._blocked_by, self.on_blocked
            if blocker is not None and tell is not None and now - told >= self.tell_every:  # blocked: beat for it
                told = now
                tell(f"{blocker}, for {blocked_for:.0f}s")
            if blocked_for > self.blocked_after and self._blocked_by is None:
                self._blocked_by = self._culprit()
                log.warning(
                    "queue %s: the event loop has been blocked for %.1fs %s; every other job of this worker "
                    "waits meanwhile (leases are still renewed). Await instead of blocking, or make the "
                    "handler a plain function: it then runs in a thread",
                    self.queue,
                    blocked_for,
                    self._blocked_by,
                )

    def _culprit(self) -> str:
        """'by job X (task T) at file:line in function', as much as is known."""
        current = self.current
        who = f"by job {current[0]} (task {current[1]})" if current else "by code outside any job"
        frame = sys._current_frames().get(self._loop_thread) if self._loop_thread is not None else None
        if frame is None:
            return who
        where = traceback.extract_stack(frame)[-1]
        return f"{who} at {where.filename}:{where.lineno} in {where.name}"


class _Tracked:
    """An awaitable that steps `inner` itself, setting `watchdog.current` around each step."""

    def __init__(
        self,
        watchdog: LoopWatchdog,
        job: tuple[str, str],
        inner: Awaitable[Any],
        on_wait: Callable[[], None],
        waiting: tuple[Any, ...] = (),
    ) -> None:
        self.watchdog, self.job, self.inner, self.on_wait = watchdog, job, inner, on_wait
        self.waiting = waiting  # (what it waits on,) when its first step ran already (see `first_step`)

    def __await__(self) -> Generator[Any, Any, Any]:
        inner = self.inner.__await__()
        send: Any = inner.send
        value: Any = None
        if self.waiting:  # started by `first_step`: pass its wait on first
            self.on_wait()
            try:
                value, send = (yield self.waiting[0]), inner.send
            except GeneratorExit:
                inner.close()
                raise
            except BaseException as exc:
                value, send = exc, inner.throw
        while True:
            self.watchdog.current = self.job
            try:
                signal = send(value)
            except StopIteration as done:
                return done.value
            finally:
                self.watchdog.current = None
            self.on_wait()
            try:
                value, send = (yield signal), inner.send
            except GeneratorExit:
                inner.close()
                raise
            except BaseException as exc:  # thrown in (a cancellation, say): passed on to the job
                value, send = exc, inner.throw
