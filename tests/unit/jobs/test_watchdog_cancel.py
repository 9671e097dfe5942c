"""Cancellation of a job run by watchdog.first_step + resume, at its first wait (the one
first_step hands to resume) and at a later one: the job sees the CancelledError where it waits,
its code is named while it handles it, and a cancellation it does not handle ends the task as
cancelled (a shutdown's)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from bootstrap.jobs.watchdog import LoopWatchdog


async def _run(watchdog: LoopWatchdog, job: Coroutine[Any, Any, Any]) -> Any:
    done, value = watchdog.first_step("j", "t", job)
    if not done:
        value = await watchdog.resume("j", "t", job, value)
    return value


@pytest.mark.parametrize("waits_before", [0, 1, 2])
def test_a_cancellation_reaches_the_job_where_it_waits(waits_before: int) -> None:
    watchdog = LoopWatchdog("q")
    seen: list[Any] = []

    async def job() -> str:
        for _ in range(waits_before):
            await asyncio.sleep(0)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append(watchdog.current)
            await asyncio.sleep(0)  # it may still wait after handling it
            return "handled"
        return "slept"

    async def main() -> str:
        task = asyncio.create_task(_run(watchdog, job()))
        for _ in range(waits_before + 2):
            await asyncio.sleep(0)
        task.cancel()
        return str(await task)

    value = asyncio.run(main())
    assert value == "handled"
    assert seen == [("j", "t")]
    assert watchdog.current is None


@pytest.mark.parametrize("waits_before", [0, 1])
def test_an_unhandled_cancellation_ends_the_task_cancelled(waits_before: int) -> None:
    watchdog = LoopWatchdog("q")
    finished: list[str] = []

    async def job() -> None:
        for _ in range(waits_before):
            await asyncio.sleep(0)
        try:
            await asyncio.sleep(30)
        finally:
            finished.append("cleanup")

    async def main() -> bool:
        task = asyncio.create_task(_run(watchdog, job()))
        for _ in range(waits_before + 2):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.wait({task})
        return task.cancelled()

    assert asyncio.run(main())
    assert finished == ["cleanup"]
    assert watchdog.current is None


def test_an_exception_thrown_into_a_future_the_job_waits_on_is_raised_in_the_job() -> None:
    watchdog = LoopWatchdog("q")

    async def job(future: asyncio.Future[int]) -> int:
        try:
            return await future
        except KeyError:
            return -1

    async def main() -> int:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(_run(watchdog, job(future)))
        await asyncio.sleep(0)
        future.set_exception(KeyError("x"))
        return int(await task)

    assert asyncio.run(main()) == -1
