"""A queue's rate limit (`rate_limit: {max: 10, per: 1s}` in queues.yaml), shared by all its workers.

The jobs workers take are logged in one sorted set per queue (`QueueKeys.rate`: member -> Redis
server time in ms). A worker asks for as many permits as it has room for before each read; one Lua
step drops the entries older than the window, grants up to what is left of `max`, and logs the
grants, so in any window of `per` seconds at most `max` jobs are taken, whichever workers take them
and however their clocks differ (the script reads Redis's clock). Permits the read did not use (the
queue had fewer jobs) are handed back at once. A job counts when a worker takes it from the stream,
as in BullMQ; retries and jobs given back count again when taken again.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass

import redis.asyncio as aioredis

from bootstrap.layout.keys import QueueKeys
from bootstrap.spec.model import RateLimit

# KEYS: the rate set. ARGV: max, window (ms), permits wanted, a token unique to this call.
# Returns {granted, ms until the oldest entry leaves the window (0 when some were granted)}.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local left = tonumber(ARGV[1]) - redis.call('ZCARD', KEYS[1])
local granted = math.min(math.max(left, 0), tonumber(ARGV[3]))
for i = 1, granted do
  redis.call('ZADD', KEYS[1], now, ARGV[4] .. ':' .. i)
end
if granted > 0 then
  redis.call('PEXPIRE', KEYS[1], window + 1000)
  return {granted, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = window
if oldest[2] then wait = math.max(1, tonumber(oldest[2]) + window - now) end
return {0, wait}
"""

# KEYS: the rate set. ARGV: the token, the first unused permit number, the number granted.
_REFUND = """
for i = tonumber(ARGV[2]), tonumber(ARGV[3]) do
  redis.call('ZREM', KEYS[1], ARGV[1] .. ':' .. i)
end
return 0
"""


@dataclass(frozen=True)
class Permits:
    granted: int
    wait: float  # seconds until a permit frees up (when none was granted)
    token: str


class RateLimiter:
    def __init__(self, client: aioredis.Redis, keys: QueueKeys, limit: RateLimit) -> None:
        self.key = keys.rate
        self.limit = limit
        self._acquire = client.register_script(_ACQUIRE)
        self._refund = client.register_script(_REFUND)
        self._prefix = uuid.uuid4().hex[:12]
        self._calls = itertools.count()

    async def acquire(self, wanted: int) -> Permits:
        """Up to `wanted` (and at most `max`) permits to take jobs now."""
        token = f"{self._prefix}:{next(self._calls)}"
        granted, wait = await self._acquire(
            keys=[self.key], args=[self.limit.max, int(self.limit.per * 1000), min(wanted, self.limit.max), token]
        )
        return Permits(int(granted), int(wait) / 1000, token)

    async def refund(self, permits: Permits, used: int) -> None:
        """Hand back the permits a read did not use."""
        if used < permits.granted:
            await self._refund(keys=[self.key], args=[permits.token, used + 1, permits.granted])
