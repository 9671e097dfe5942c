"""Job timeouts for the fast receiver: one sweep every SWEEP seconds cancels the jobs past their
deadline, instead of a timer per job.

`asyncio.timeout` schedules a timer for each job and cancels it after: about 11 us of CPU per job
here, a tenth of what a no-op job costs in all. A timeout fires up to SWEEP seconds late, which is
nothing next to the seconds or minutes a task declares.

The sweep runs on the event loop, so it can only cancel a job while the job waits inside its
handler: `finish` is called as soon as the handler returned or raised, before the receiver awaits
anything else, so a job is never cancelled outside its handler (in its acknowledgement, say). As with
`asyncio.timeout`, the cancellation is withdrawn (`uncancel`) once it has done its work, and only a
cancellation of ours becomes a timeout: one from elsewhere (a shutdown) goes on.
"""

from __future__ import annotations

import asyncio
import time

SWEEP = 0.1  # seconds between sweeps: how late a timeout may fire


class Deadlines:
    def __init__(self) -> None:
        self._running: dict[asyncio.Task[object], float] = {}  # job coroutine's task -> its deadline
        self._expired: set[asyncio.Task[object]] = set()  # cancelled by a sweep, not finished yet

    def start(self, task: asyncio.Task[object], timeout: float) -> None:
        """`task` runs a job that may take `timeout` seconds from now."""
        self._running[task] = time.monotonic() + timeout

    def finish(self, task: asyncio.Task[object]) -> bool:
        """The job of `task` returned or raised. True when a sweep cancelled it for its timeout (its
        CancelledError, if it raised one, is then a timeout)."""
        self._running.pop(task, None)
        if task not in self._expired:
            return False
        self._expired.discard(task)
        task.uncancel()  # our cancellation did its work; another (a shutdown) stays requested
        return True

    async def sweep(self) -> None:
        """Cancel the jobs past their deadline, every SWEEP seconds, until cancelled."""
        while True:
            await asyncio.sleep(SWEEP)
            self.sweep_once()

    def sweep_once(self) -> None:
        now = time.monotonic()
        for task, deadline in list(self._running.items()):
            if deadline <= now and task not in self._expired:
                self._expired.add(task)
                task.cancel()
