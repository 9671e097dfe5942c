"""Read what is live in Redis for a spec, in one small value the pure compare works on.

Round trips: CONFIG GET for the eviction policy, then one pipeline holding XINFO GROUPS for every
declared queue's stream, HGETALL of the stored schedules and GET of the data marker. Nothing else is
looked at.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from bootstrap.connect.redis import UNKNOWN_POLICY, eviction_policy
from bootstrap.layout import schedules as stored
from bootstrap.layout.keys import QueueKeys, ScheduleKeys, as_text, marker_key

__all__ = ["UNKNOWN_POLICY", "RedisLive", "read_live_state"]


@dataclass(frozen=True)
class RedisLive:
    eviction_policy: str  # the server's maxmemory-policy, or UNKNOWN_POLICY where CONFIG is not allowed
    # Stream key -> the names of its consumer groups, for the declared queues whose stream exists.
    streams: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Schedule id -> its stored definition; None where the stored value is not a JSON object.
    schedules: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)
    # The data marker apply writes (layout.marker), as stored; None where there is none.
    marker: str | None = None


def read_live_state(client: redis.Redis, key_prefix: str, queues: Iterable[str]) -> RedisLive:
    """The live state of the named queues' streams and of all stored schedules under `key_prefix`."""
    policy = eviction_policy(client)
    streams = [QueueKeys(key_prefix, queue).stream for queue in queues]
    pipe = client.pipeline(transaction=False)
    for stream in streams:
        pipe.xinfo_groups(stream)
    pipe.hgetall(ScheduleKeys(key_prefix).definitions)
    pipe.get(marker_key(key_prefix))
    # Errors come back in place: a missing stream answers XINFO with "no such key".
    *infos, definitions, marker = pipe.execute(raise_on_error=False)
    for reply in (definitions, marker):
        if isinstance(reply, Exception):
            raise reply
    groups: dict[str, frozenset[str]] = {}
    for stream, info in zip(streams, infos, strict=True):
        if isinstance(info, redis.ResponseError):
            continue  # no such key, or a key that is not a stream: either way no queue there yet
        if isinstance(info, Exception):
            raise info
        groups[stream] = frozenset(as_text(group.get("name", b"")) for group in info)
    schedules = {as_text(key): stored.decode(value) for key, value in definitions.items()}
    return RedisLive(
        eviction_policy=policy,
        streams=groups,
        schedules=schedules,
        marker=None if marker is None else as_text(marker),
    )
