"""Pausing a queue: `bootstrap jobs pause QUEUE` sets the key `QueueKeys.paused`, `resume` deletes it.

While it exists, the queue's workers take no jobs (no reads, no takeovers of abandoned jobs), give
back the ones they read but had not started, and let running ones finish; jobs enqueued meanwhile
(scheduled fires and due retries included) wait in the stream. A worker looks at the key at most
every CHECK_EVERY seconds, and its blocking read lasts at most half a second, so it stops taking
jobs within a second of the pause.
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

import redis
import redis.asyncio as aioredis

from bootstrap.layout.keys import QueueKeys

CHECK_EVERY = 0.25  # seconds between two looks at the paused key (a running worker's cost: 4 EXISTS/s)


class PauseWatch:
    """A worker's cached view of its queue's paused key."""

    def __init__(self, keys: QueueKeys) -> None:
        self.key = keys.paused
        self.paused = False
        self._next = 0.0

    async def check(self, conn: aioredis.Redis) -> bool:
        """Whether the queue is paused, asking Redis at most every CHECK_EVERY seconds."""
        now = time.monotonic()
        if now >= self._next:
            self.paused = bool(await conn.exists(self.key))
            self._next = now + CHECK_EVERY
        return self.paused


# Said by `jobs pause` and `status` of a paused queue that workers of an earlier release serve.
EARLIER = (
    "{count} live worker(s) of this queue run a release before bootstrap 0.2.0 (their heartbeat names none): "
    "one from before `jobs pause` existed goes on taking jobs until it is stopped: {names}"
)


def pause(client: redis.Redis, keys: QueueKeys) -> bool:
    """Pause the queue; False if it was paused already (the first pause's note is kept)."""
    note = {"at": time.time(), "by": f"{socket.gethostname()}:{os.getpid()}"}
    return bool(client.set(keys.paused, json.dumps(note), nx=True))


def resume(client: redis.Redis, keys: QueueKeys) -> bool:
    """Resume the queue; False if it was not paused."""
    return bool(client.delete(keys.paused))


def paused_note(raw: Any) -> dict[str, Any]:
    """The note a pause left ({"at", "by"}); empty when unreadable (set by hand)."""
    try:
        note = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return note if isinstance(note, dict) else {}
