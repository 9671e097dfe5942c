"""The event-loop watchdog and plain-function handlers, in process (no server)."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from bootstrap.jobs.handlers import Job, call_handler, import_handler, in_thread, wants_job
from bootstrap.jobs.watchdog import LoopWatchdog

JOB = Job(id="j-1", queue="q", task="t", attempt=1, labels={})


async def run(
    watchdog: LoopWatchdog,
    job_id: str,
    task: str,
    job: Coroutine[Any, Any, Any],
    on_wait: Callable[[], None] = lambda: None,
) -> Any:
    """A job run as the receiver runs it: its first step at once, the rest (if it waits) tracked."""
    done, value = watchdog.first_step(job_id, task, job)
    if not done:
        value = await watchdog.resume(job_id, task, job, value, on_wait)
    return value


def test_tracking_names_the_job_whose_code_runs_and_passes_everything_through() -> None:
    watchdog = LoopWatchdog("q")
    seen: list[Any] = []

    async def job(fail: bool) -> str:
        seen.append(watchdog.current)
        await asyncio.sleep(0)
        seen.append(watchdog.current)
        if fail:
            raise ValueError("boom")
        return "result"

    async def main() -> None:
        waits: list[int] = []
        assert await run(watchdog, "a", "t", job(False), lambda: waits.append(1)) == "result"
        assert waits == [1]  # told once: the job waited once
        assert watchdog.current is None  # nobody's code runs between steps
        with pytest.raises(ValueError, match="boom"):
            await run(watchdog, "b", "t", job(True))
        # A cancellation (a timeout) reaches the job inside, and ends it.
        cancelled = []

        async def waits() -> None:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancelled.append(watchdog.current)
                raise

        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await run(watchdog, "c", "t", waits())
        assert cancelled == [("c", "t")]

    asyncio.run(main())
    assert seen == [("a", "t"), ("a", "t"), ("b", "t"), ("b", "t")]


def test_a_job_that_never_waits_finishes_in_its_first_step_and_what_it_raises_is_raised() -> None:
    watchdog = LoopWatchdog("q")

    async def at_once(fail: bool) -> str:
        assert watchdog.current == ("d", "t")
        if fail:
            raise KeyError("k")
        return "done"

    assert watchdog.first_step("d", "t", at_once(False)) == (True, "done")
    assert watchdog.current is None
    with pytest.raises(KeyError):
        watchdog.first_step("d", "t", at_once(True))
    assert watchdog.current is None


def test_a_blocked_loop_is_reported_with_the_job_and_line_then_when_it_ends(caplog: pytest.LogCaptureFixture) -> None:
    watchdog = LoopWatchdog("q", blocked_after=0.3)

    async def blocking() -> None:
        time.sleep(0.8)  # the mistake

    async def main() -> None:
        watchdog.start()
        beating = asyncio.create_task(_beat(watchdog))
        await asyncio.sleep(0.2)
        await run(watchdog, "j-9", "slow-task", blocking())
        await asyncio.sleep(0.3)
        beating.cancel()
        watchdog.stop()

    with caplog.at_level(logging.WARNING, logger="bootstrap.jobs.watchdog"):
        asyncio.run(main())
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert "has been blocked for" in lines[0] and "by job j-9 (task slow-task) at " in lines[0]
    assert "test_watchdog.py" in lines[0] and "in blocking" in lines[0]
    assert re.search(r"was blocked for \d+\.\ds by job j-9 \(task slow-task\)", lines[1]), lines[1]


async def _beat(watchdog: LoopWatchdog) -> None:
    while True:
        await watchdog.step()


def test_a_plain_function_runs_in_a_daemon_thread_and_a_timeout_leaves_it_running() -> None:
    started, release = threading.Event(), threading.Event()
    names: list[str] = []

    def slow(x: int, job: Job) -> int:
        names.append(threading.current_thread().name)
        assert threading.current_thread().daemon
        started.set()
        release.wait(5)
        return x + 1

    async def main() -> None:
        release.set()
        assert await call_handler(slow, JOB, {"x": 1}) == 2
        release.clear()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await call_handler(slow, JOB, {"x": 1})
        assert started.is_set()
        release.set()  # the thread ends on its own; its result is dropped, the loop is not troubled

        def fails() -> None:
            raise KeyError("k")

        with pytest.raises(KeyError):
            await in_thread(fails, "t")

    asyncio.run(main())
    assert names == ["job-j-1", "job-j-1"]


def test_handlers_must_be_functions_and_a_plain_one_cannot_ask_for_the_async_db() -> None:
    assert import_handler("tests.support.handlers_for_tests:sync_sleep").__name__ == "sync_sleep"
    with pytest.raises(TypeError, match="must be a function"):
        import_handler("os:sep")
    with pytest.raises(TypeError, match="is a plain function and asks for db"):
        import_handler("tests.unit.jobs.test_watchdog:plain_with_db")


def plain_with_db(db: Any) -> None:
    """Not a valid handler: a plain function cannot use the async database."""


def test_a_handler_that_takes_no_job_gets_none_made_and_its_thread_is_named_after_the_job() -> None:
    names: list[str] = []

    def plain(x: int) -> int:
        names.append(threading.current_thread().name)
        return x * 2

    async def takes_job(job: Job, x: int) -> tuple[str, int]:
        return job.id, job.attempt + x

    async def main() -> None:
        assert not wants_job(plain) and wants_job(takes_job)
        assert await call_handler(plain, None, {"x": 2}, job_id="j-9") == 4
        assert await call_handler(takes_job, JOB, {"x": 2}) == ("j-1", 3)

    asyncio.run(main())
    assert names == ["job-j-9"]
