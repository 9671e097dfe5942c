"""Job timeouts by sweep (no server): a job past its deadline is cancelled within a sweep, a job in
time never is, and a cancellation from elsewhere is never taken for a timeout."""

from __future__ import annotations

import asyncio

from bootstrap.jobs.deadlines import SWEEP, Deadlines


async def run_job(deadlines: Deadlines, seconds: float, timeout: float) -> tuple[str, bool]:
    """A job sleeping `seconds` with a `timeout`: ('done' | 'cancelled', whether it timed out)."""
    task = asyncio.current_task()
    assert task is not None
    deadlines.start(task, timeout)
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        expired = deadlines.finish(task)
        if expired and not task.cancelling():
            return "cancelled", True
        raise
    return "done", deadlines.finish(task)


def test_a_job_past_its_deadline_is_cancelled_within_a_sweep_and_one_in_time_is_not() -> None:
    async def test() -> None:
        deadlines = Deadlines()
        sweeper = asyncio.create_task(deadlines.sweep())
        loop = asyncio.get_running_loop()
        started = loop.time()
        late, in_time = await asyncio.gather(run_job(deadlines, 5, 0.2), run_job(deadlines, 0.05, 5))
        took = loop.time() - started
        sweeper.cancel()
        assert late == ("cancelled", True)
        assert in_time == ("done", False)
        assert 0.2 <= took < 0.2 + SWEEP + 1.0  # fired after its deadline, at most a sweep (+ a loaded machine) late
        assert not deadlines._running and not deadlines._expired

    asyncio.run(test())


def test_a_shutdown_cancelling_a_timed_out_job_stays_a_cancellation() -> None:
    async def test() -> None:
        deadlines = Deadlines()
        job = asyncio.create_task(run_job(deadlines, 5, 0.0))
        await asyncio.sleep(0)  # the job sleeps, past its deadline
        deadlines.sweep_once()  # cancelled for its timeout ...
        job.cancel()  # ... and by a shutdown, before it ran again
        done, _ = await asyncio.wait({job}, timeout=5)
        assert done and job.cancelled()
        assert not deadlines._running and not deadlines._expired

    asyncio.run(test())


def test_the_sweep_never_cancels_the_next_job_of_a_coroutine_whose_job_finished_in_time() -> None:
    async def test() -> None:
        deadlines = Deadlines()
        sweeper = asyncio.create_task(deadlines.sweep())
        first = await run_job(deadlines, 0.0, 0.05)  # in time; the same coroutine moves on ...
        second = await asyncio.sleep(0.05 + 3 * SWEEP, "untimed job done")  # ... past the first's deadline
        sweeper.cancel()
        assert first == ("done", False)
        assert second == "untimed job done"

    asyncio.run(test())


def test_a_job_that_cleans_up_after_its_cancellation_still_times_out() -> None:
    async def job(deadlines: Deadlines) -> str:
        task = asyncio.current_task()
        assert task is not None
        deadlines.start(task, 0.0)
        try:
            try:
                await asyncio.sleep(5)
            finally:
                await asyncio.sleep(0.01)  # cleanup that awaits, then the cancellation goes on
        except asyncio.CancelledError:
            if deadlines.finish(task) and not task.cancelling():
                return "timed out"
            raise
        return "done"

    async def test() -> None:
        deadlines = Deadlines()
        running = asyncio.create_task(job(deadlines))
        await asyncio.sleep(0)
        deadlines.sweep_once()
        assert await asyncio.wait_for(running, 5) == "timed out"
        assert not running.cancelling()  # our cancellation withdrawn: a later await is not cancelled

    asyncio.run(test())
