"""Jobs the spec no longer runs, read for `plan` to warn about: a queue no longer declared whose
keys still hold jobs, and jobs waiting (or delayed) for a task their queue no longer declares (a
rename). Nothing is deleted: apply never touches them; `plan` says they are there before the workers
of the new wiring set them aside as "unknown task" (after handing them back for 10 minutes).

Both looks are bounded, as `plan`, `status` and `health` run them: a SCAN of at most SCANNED rounds
for the keys of undeclared queues (not on a Redis Cluster, which would need a scan per node), and the
oldest SAMPLED jobs of each level and of the delayed set for the task names, read in Redis (a Lua
script returns the names and their counts, never the jobs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from bootstrap.connect.redis import is_cluster
from bootstrap.layout.keys import QueueKeys, as_text
from bootstrap.spec.model import Spec

SCANNED = 20  # SCAN rounds of 1,000 keys
SAMPLED = 100  # jobs looked at per stream and in the delayed set


@dataclass(frozen=True)
class Leftovers:
    # Undeclared queue -> (waiting, delayed, failed) jobs its keys hold.
    queues: Mapping[str, tuple[int, int, int]] = field(default_factory=dict)
    # Declared queue -> task it no longer declares -> jobs of it among those sampled.
    tasks: Mapping[str, Mapping[str, int]] = field(default_factory=dict)


# The task names of one queue's oldest jobs, read in Redis: only the names come back, not the jobs
# (which may be large). KEYS: the level streams, then the delayed set; ARGV: how many per key.
_TASK_NAMES = """
local names, most = {}, tonumber(ARGV[1])
local function note(data)
  local name = data and string.match(data, '"task_name":%s*"([^"]*)"') or ''
  names[name] = (names[name] or 0) + 1
end
for i = 1, #KEYS - 1 do
  for _, entry in ipairs(redis.call('XRANGE', KEYS[i], '-', '+', 'COUNT', most)) do
    local fields = entry[2]
    for j = 1, #fields, 2 do
      if fields[j] == 'data' then note(fields[j + 1]) end
    end
  end
end
for _, data in ipairs(redis.call('ZRANGE', KEYS[#KEYS], 0, most - 1)) do note(data) end
local flat = {}
for name, count in pairs(names) do flat[#flat + 1] = name; flat[#flat + 1] = count end
return flat
"""


def read_leftovers(client: redis.Redis, spec: Spec) -> Leftovers:
    """What there is to warn about; nothing where this Redis user may not look (an ACL without SCAN
    or EVAL: the notes are a courtesy, never a reason for plan to fail)."""
    try:
        return _read(client, spec)
    except redis.ResponseError:  # NOPERM and the like
        return Leftovers()


def _read(client: redis.Redis, spec: Spec) -> Leftovers:
    prefix = spec.redis.key_prefix
    declared = {queue.name: {task.name for task in queue.tasks} for queue in spec.queues}
    undeclared = sorted(_queues_in(client, prefix) - set(declared))
    pipe = client.pipeline(transaction=False)
    for name in undeclared:
        keys = QueueKeys(prefix, name)
        for stream in keys.streams:
            pipe.xlen(stream)
        pipe.zcard(keys.delayed)
        pipe.hlen(keys.record_data("failed"))
    replies = iter(pipe.execute())
    levels = len(QueueKeys(prefix, "q").streams)
    queues: dict[str, tuple[int, int, int]] = {}
    for name in undeclared:
        waiting = sum(_number(next(replies)) for _ in range(levels))
        delayed, failed = _number(next(replies)), _number(next(replies))
        if waiting or delayed or failed:
            queues[name] = (waiting, delayed, failed)
    names = client.register_script(_TASK_NAMES)
    tasks: dict[str, dict[str, int]] = {}
    for name, known in declared.items():  # one call per queue: its keys are in one cluster slot
        keys = QueueKeys(prefix, name)
        flat = names(keys=[*keys.streams, keys.delayed], args=[SAMPLED])
        found = {as_text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}
        unknown = {task: count for task, count in found.items() if task and task not in known}
        if unknown:
            tasks[name] = dict(sorted(unknown.items()))
    return Leftovers(queues, tasks)


def _queues_in(client: redis.Redis, prefix: str) -> set[str]:
    """Queue names that keys under `prefix` belong to, from a bounded SCAN."""
    if is_cluster(client):
        return set()
    head = f"{prefix}:queue:{{"
    names: set[str] = set()
    cursor: Any = 0
    for _ in range(SCANNED):
        cursor, keys = client.scan(cursor, match=f"{_escaped(head)}*", count=1000)
        for key in keys:
            name, close, _ = as_text(key)[len(head) :].partition("}")
            if close:
                names.add(name)
        if not cursor or cursor in (b"0", "0"):
            break
    return names


def _escaped(text: str) -> str:
    """`text` as a literal in a SCAN MATCH pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def _number(reply: Any) -> int:
    return reply if isinstance(reply, int) else 0
