"""Records of finished jobs per queue: completed and failed, each kept at most `max_age` and at most
`max_count` (newest kept). Taskiq has neither a failed-job store nor retention by count.

A record is JSON in a hash (id -> record) indexed by a sorted set (id by finish time); writing one
and trimming both limits happen in one Lua script, so the two never disagree.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis.asyncio as aioredis

from bootstrap.layout.keys import QueueKeys

COMPLETED, FAILED = "completed", "failed"

# KEYS: index, data. ARGV: now, oldest time kept, max count, then id, record pairs (one or many).
_STORE = """
for i = 4, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i])
end
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])
local excess = redis.call('ZCARD', KEYS[1]) - #old - tonumber(ARGV[3])
if excess > 0 then
  local oldest = redis.call('ZRANGE', KEYS[1], #old, #old + excess - 1)
  for _, id in ipairs(oldest) do table.insert(old, id) end
end
for i = 1, #old, 500 do
  local chunk = {unpack(old, i, math.min(i + 499, #old))}
  redis.call('ZREM', KEYS[1], unpack(chunk))
  redis.call('HDEL', KEYS[2], unpack(chunk))
end
return #old
"""


class Records:
    def __init__(self, client: aioredis.Redis, keys: QueueKeys) -> None:
        self.client = client
        self.keys = keys
        self._store = client.register_script(_STORE)

    def _call(self, outcome: str, records: list[dict[str, Any]], max_age: float, max_count: int) -> dict[str, Any]:
        now = time.time()
        args: list[Any] = [now, now - max_age, max_count]
        for record in records:
            record.setdefault("finished_at", now)
            args += [record["id"], json.dumps(record, default=str)]
        return {"keys": [self.keys.records(outcome), self.keys.record_data(outcome)], "args": args}

    async def queue_store(
        self, pipe: Any, outcome: str, records: list[dict[str, Any]], max_age: float, max_count: int
    ) -> None:
        """Write records and trim to both limits, as one command in `pipe` (run when it runs).
        Reading the records is `bootstrap.jobs.admin`'s business (the CLI is synchronous)."""
        await self._store(**self._call(outcome, records, max_age, max_count), client=pipe)

    def store_call(
        self, outcome: str, records: list[dict[str, Any]], max_age: float, max_count: int
    ) -> tuple[list[str], list[Any]]:
        """The keys and arguments of writing `records` (see `_STORE`), for a caller that writes them
        in a script of its own (the acknowledgement's: `bootstrap.jobs.acks`)."""
        call = self._call(outcome, records, max_age, max_count)
        return call["keys"], call["args"]
