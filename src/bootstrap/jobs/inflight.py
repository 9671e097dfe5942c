"""What one worker holds: the stream entries it read and has not acknowledged yet, and which of them
it started running. Shared by the broker's read loop (take), the receiver (start), acknowledgement
(let go), renewal and the heartbeat (read), and shutdown (give back the unstarted ones).

Pure bookkeeping, no I/O: ids are stream entry ids as text. Renewal reads it from a thread of its
own (see upkeep.Renewer), so every access holds a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable


class InFlight:
    def __init__(self) -> None:
        self._held: set[str] = set()  # delivered to this worker and not acknowledged yet
        # ... of which the receiver started running these: their delivery count and job id
        self._started: dict[str, tuple[int, str]] = {}
        self._lock = threading.Lock()

    def hold(self, ids: Iterable[str]) -> None:
        """Entries just read: ours from now on (renewed while held, given back if never started)."""
        with self._lock:
            self._held.update(ids)

    def start(self, entry_id: str, deliveries: int = 1, job_id: str = "") -> None:
        """The receiver began running this job: it is no longer just prefetched."""
        with self._lock:
            self._started[entry_id] = (deliveries, job_id)

    def let_go(self, entry_id: str) -> None:
        """Acknowledged, abandoned or nothing to run: no longer held, no longer renewed."""
        with self._lock:
            self._held.discard(entry_id)
            self._started.pop(entry_id, None)

    def gave_back(self, ids: Iterable[str]) -> None:
        """Unstarted entries handed back to the stream (see `unstarted`)."""
        with self._lock:
            self._held.difference_update(ids)

    def __contains__(self, entry_id: object) -> bool:
        with self._lock:
            return entry_id in self._held

    def held(self) -> list[str]:
        """Every entry this worker holds, started or not: the ones to renew."""
        with self._lock:
            return list(self._held)

    def unstarted(self) -> list[str]:
        """Entries read but never started: the ones to give back on shutdown."""
        with self._lock:
            return [i for i in self._held if i not in self._started]

    def running_jobs(self) -> dict[str, tuple[int, str]]:
        """Entries started and still held: entry -> (deliveries, job id)."""
        with self._lock:
            return {i: job for i, job in self._started.items() if i in self._held}

    @property
    def running(self) -> int:
        with self._lock:
            return len(self._started)

    @property
    def waiting(self) -> int:
        """Held but not started (prefetched): what counts against the prefetch limit."""
        with self._lock:
            return len(self._held) - len(self._started)
