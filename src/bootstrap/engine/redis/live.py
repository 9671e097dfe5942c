"""Read what is live in Redis for a spec, in one small value the pure compare works on.

Round trips: CONFIG GET for the eviction policy (on every primary of a cluster), then one pipeline
holding XINFO GROUPS for every declared queue's stream, the schedule index, the data marker and
what is left of the layout before hash tags (legacy keys, looked up by name), then one pipeline
reading the schedules kept with each queue. Nothing else is looked at.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from bootstrap.connect.redis import UNKNOWN_POLICY, eviction_policies, is_cluster
from bootstrap.engine.redis.leftovers import Leftovers
from bootstrap.layout import schedules as stored
from bootstrap.layout.keys import QueueKeys, ScheduleKeys, as_text, marker_key

__all__ = ["UNKNOWN_POLICY", "Legacy", "RedisLive", "read_live_state"]


@dataclass(frozen=True)
class Legacy:
    """What is left of the key layout before hash tags (see layout.keys)."""

    # Queue -> (old key, new key) for each old key that exists.
    moves: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    # New keys that exist already: moving an old key onto one would overwrite it.
    taken: frozenset[str] = frozenset()
    # Queue -> consumer groups of its old stream (a queue whose old stream moves needs no new one).
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # The old global schedule hashes: id -> definition (None: unreadable), id -> last slot.
    schedules: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)
    last_slots: Mapping[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.moves or self.schedules or self.last_slots)


@dataclass(frozen=True)
class RedisLive:
    eviction_policy: str  # the server's maxmemory-policy, or UNKNOWN_POLICY where CONFIG is not allowed
    # Stream key -> the names of its consumer groups, for the declared queues whose stream exists.
    streams: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Schedule id -> its stored definition; None where the stored value is not a JSON object.
    schedules: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)
    # The data marker apply writes (layout.marker), as stored; None where there is none.
    marker: str | None = None
    # Schedule id -> the queue whose keys hold it (where that differs from its definition's queue,
    # or the definition is unreadable, this says where to delete it from).
    schedule_queues: Mapping[str, str] = field(default_factory=dict)
    legacy: Legacy = Legacy()
    # A cluster: primary ("host:port") -> its maxmemory-policy; empty on a standalone server.
    cluster_policies: Mapping[str, str] = field(default_factory=dict)
    # The declared queues whose own data marker (QueueKeys.marker) is there.
    queue_markers: frozenset[str] = frozenset()
    # Jobs the spec no longer runs (see leftovers): for plan to warn about, never touched.
    leftovers: Leftovers = field(default_factory=Leftovers)

    @property
    def cluster(self) -> bool:
        return bool(self.cluster_policies)

    def policies(self) -> dict[str, str]:
        """Where the eviction policy is set -> its value: "server", or each primary of a cluster."""
        return dict(self.cluster_policies) if self.cluster_policies else {"server": self.eviction_policy}


def read_live_state(client: redis.Redis, key_prefix: str, queues: Iterable[str]) -> RedisLive:
    """The live state of the named queues' streams and of all stored schedules under `key_prefix`."""
    policies = eviction_policies(client)
    cluster = is_cluster(client)
    names = list(queues)
    keys = [QueueKeys(key_prefix, queue) for queue in names]
    schedule_keys = ScheduleKeys(key_prefix)
    pipe = client.pipeline(transaction=False)
    for k in keys:
        pipe.xinfo_groups(k.stream)
        pipe.xinfo_groups(f"{k.legacy_base}:jobs")
        for old, new in k.legacy_moves():
            pipe.exists(old)
            pipe.exists(new)
    for k in keys:
        pipe.exists(k.marker)
    pipe.hgetall(schedule_keys.index)
    pipe.get(marker_key(key_prefix))
    pipe.hgetall(schedule_keys.legacy_definitions)
    pipe.hgetall(schedule_keys.legacy_last_slot)
    # Errors come back in place: a missing stream answers XINFO with "no such key".
    replies = pipe.execute(raise_on_error=False)
    index, marker, legacy_definitions, legacy_last = replies[-4:]
    marked = replies[-4 - len(keys) : -4]
    for reply in (*replies[-4:], *marked):
        if isinstance(reply, Exception):
            raise reply
    groups: dict[str, frozenset[str]] = {}
    legacy_groups: dict[str, frozenset[str]] = {}
    moves: dict[str, tuple[tuple[str, str], ...]] = {}
    taken: set[str] = set()
    at = 0
    for k in keys:
        new_groups, old_groups = _groups(replies[at]), _groups(replies[at + 1])
        at += 2
        if new_groups is not None:
            groups[k.stream] = new_groups
        if old_groups is not None:
            legacy_groups[k.queue] = old_groups
        found = []
        for old, new in k.legacy_moves():
            old_there, new_there = replies[at], replies[at + 1]
            at += 2
            if old_there == 1:
                found.append((old, new))
                if new_there == 1:
                    taken.add(new)
        if found:
            moves[k.queue] = tuple(found)
    where = {as_text(key): as_text(value) for key, value in index.items()}
    schedules, schedule_queues = _read_schedules(client, key_prefix, sorted(set(names) | set(where.values())))
    for schedule_id, queue in where.items():  # indexed, but its queue's hash lost it: nothing to read
        schedule_queues.setdefault(schedule_id, queue)
    legacy = Legacy(
        moves=moves,
        taken=frozenset(taken),
        groups=legacy_groups,
        schedules={as_text(key): stored.decode(value) for key, value in legacy_definitions.items()},
        last_slots={as_text(key): as_text(value) for key, value in legacy_last.items()},
    )
    return RedisLive(
        eviction_policy=next(iter(policies.values())) if not cluster else UNKNOWN_POLICY,
        streams=groups,
        schedules=schedules,
        marker=None if marker is None else as_text(marker),
        queue_markers=frozenset(k.queue for k, there in zip(keys, marked, strict=True) if there),
        schedule_queues=schedule_queues,
        legacy=legacy,
        cluster_policies=policies if cluster else {},
    )


def _groups(info: Any) -> frozenset[str] | None:
    if isinstance(info, redis.ResponseError):
        return None  # no such key, or a key that is not a stream: either way no queue there yet
    if isinstance(info, Exception):
        raise info
    return frozenset(as_text(group.get("name", b"")) for group in info)


def _read_schedules(
    client: redis.Redis, key_prefix: str, queues: list[str]
) -> tuple[dict[str, Mapping[str, Any] | None], dict[str, str]]:
    """Every schedule kept with the named queues: id -> definition, id -> queue holding it."""
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.hgetall(QueueKeys(key_prefix, queue).schedules)
    schedules: dict[str, Mapping[str, Any] | None] = {}
    held: dict[str, str] = {}
    for queue, found in zip(queues, pipe.execute() if queues else [], strict=True):
        for key, value in found.items():
            schedules[as_text(key)] = stored.decode(value)
            held[as_text(key)] = queue
    return schedules, held
