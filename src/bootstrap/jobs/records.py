"""Records of finished jobs per queue: completed and failed, each kept at most `max_age` and at most
`max_count` (newest kept). Taskiq has neither a failed-job store nor retention by count.

A record is JSON in a hash (id -> record) indexed by a sorted set (id by finish time). Records are
written by the acknowledging script (jobs.acks): writing them, trimming both limits and
acknowledging the finished jobs happen in one Lua script over the queue's keys (one cluster slot),
so index and data never disagree and no record is written for a job that stays unacknowledged.
"""

from __future__ import annotations

import json
import time
from typing import Any

import orjson
import redis.asyncio as aioredis

from bootstrap.layout.keys import QueueKeys

COMPLETED, FAILED = "completed", "failed"
OUTCOMES = (COMPLETED, FAILED)  # their order in the acknowledging script's KEYS

# Lua: write records into (index, data) and trim both limits. `items[first..last]` holds id, record,
# id, record... (the script's ARGV, read in place: Lua's unpack takes some 8000 values at most, so
# never the whole batch at once). One HSET and one ZADD per 500 records: a call from Lua costs Redis
# more than the write itself.
STORE_FUNCTION = """
local function store(index, data, now, oldest, max_count, items, first, last)
  for i = first, last, 1000 do
    local upto = math.min(i + 999, last)
    redis.call('HSET', data, unpack(items, i, upto))
    local scored = {}
    for j = i, upto, 2 do
      scored[#scored + 1] = now
      scored[#scored + 1] = items[j]
    end
    redis.call('ZADD', index, unpack(scored))
  end
  -- Both limits drop the oldest first: count what goes (ZCOUNT and ZCARD return numbers, no
  -- lists), then pop that many; at steady state one record per call, in two calls.
  local drop = redis.call('ZCARD', index) - tonumber(max_count)
  local aged = redis.call('ZCOUNT', index, '-inf', '(' .. oldest)
  if aged > drop then drop = aged end
  local dropped = 0
  while drop > 0 do
    local popped = redis.call('ZPOPMIN', index, math.min(drop, 500))
    if #popped == 0 then break end  -- never loop in Redis, whatever the arguments
    local ids = {}
    for j = 1, #popped, 2 do ids[#ids + 1] = popped[j] end
    redis.call('HDEL', data, unpack(ids))
    drop = drop - #ids
    dropped = dropped + #ids
  end
  return dropped
end
"""


class Records:
    def __init__(self, client: aioredis.Redis, keys: QueueKeys) -> None:
        self.client = client
        self.keys = keys

    @staticmethod
    def key_list_of(keys: QueueKeys) -> list[str]:
        """Index and data of each outcome, in OUTCOMES order."""
        return [key for outcome in OUTCOMES for key in (keys.records(outcome), keys.record_data(outcome))]

    @staticmethod
    def segment(outcome: str, records: list[dict[str, Any]], max_age: float, max_count: int) -> list[Any]:
        """One batch of records as the acknowledging script reads it: outcome number (1-based, in
        OUTCOMES order), oldest time kept, max count, number of records, then id, record pairs.
        Reading the records is `bootstrap.jobs.admin`'s business (the CLI is synchronous)."""
        now = time.time()
        args: list[Any] = [OUTCOMES.index(outcome) + 1, now - max_age, max_count, len(records)]
        for record in records:
            record.setdefault("finished_at", now)
            args += [record["id"], encode(record)]
        return args


# Datetimes and dataclasses go to `default` (str) as json.dumps sent them, not orjson's own forms.
_ORJSON = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
SHOWN = 200  # characters of a field that cannot be JSON kept as its text


def encode(record: dict[str, Any]) -> bytes:
    """A record as JSON: orjson (several times faster than json.dumps; this runs for every job), or
    json where orjson cannot (an integer beyond 64 bits). Values JSON has no type for become text,
    as json.dumps(default=str) wrote them (orjson writes NaN and Infinity as null, and an Enum as its
    value). Never raises: it runs in the acknowledging flush, which a failure here would fail; a
    field neither can write (a key JSON cannot name, a value that contains itself) is kept as text."""
    try:
        return orjson.dumps(record, default=str, option=_ORJSON)
    except TypeError:
        pass
    try:
        return json.dumps(record, default=str).encode()
    except (TypeError, ValueError, RecursionError):
        return json.dumps({key: _writable(value) for key, value in record.items()}, default=str).encode()


def _writable(value: Any) -> Any:
    """`value` if json can write it, else a short text saying what it was."""
    try:
        json.dumps(value, default=str)
        return value
    except (TypeError, ValueError, RecursionError) as exc:
        try:
            shown = repr(value)
        except RecursionError:
            shown = f"a {type(value).__name__} nested too deeply"
        shown = shown if len(shown) <= SHOWN else shown[: SHOWN - 3] + "..."
        return f"not JSON ({type(exc).__name__}: {exc}): {shown}"
