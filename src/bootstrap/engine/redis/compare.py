"""Spec + live Redis state -> operations. Pure: no I/O, so every case is tested on hand-built state.

The schedules hash is owned by bootstrap: entries not declared are deleted. The eviction policy is a
server setting: a wrong one is blocked, and changed only with --fix-redis; where it cannot be read,
a note says so and nothing changes. The data marker is written where it is missing, last.
"""

from __future__ import annotations

from bootstrap.engine.ops import Blocked, Operation
from bootstrap.engine.redis.live import UNKNOWN_POLICY, RedisLive
from bootstrap.engine.redis.operations import (
    CreateQueue,
    DeleteSchedule,
    PolicyUnknown,
    PutSchedule,
    SetEvictionPolicy,
    WriteMarker,
)
from bootstrap.layout import schedules as stored
from bootstrap.layout.keys import GROUP, QueueKeys, marker_key
from bootstrap.spec.model import Spec

SERVER = "server"  # what the eviction-policy operations act on


def compare(spec: Spec, live: RedisLive, *, fix_redis: bool = False) -> tuple[Operation, ...]:
    """The eviction policy first, then each queue missing its stream or group, then each schedule
    created or changed (in spec order), then each schedule deleted (by id), then the data marker."""
    return (
        *compare_policy(spec.redis.maxmemory_policy, live.eviction_policy, fix_redis),
        *compare_queues(spec, live),
        *compare_schedules(spec, live),
        *compare_marker(spec, live),
    )


def compare_marker(spec: Spec, live: RedisLive) -> list[Operation]:
    return [] if live.marker is not None else [WriteMarker("marker", marker_key(spec.redis.key_prefix))]


def compare_policy(wanted: str, policy: str, fix_redis: bool) -> list[Operation]:
    if policy == UNKNOWN_POLICY:
        return [PolicyUnknown(SERVER, wanted)]
    if policy == wanted:
        return []
    fix = SetEvictionPolicy(SERVER, policy, wanted)
    if fix_redis:
        return [fix]
    reason = (
        f"Redis runs with maxmemory-policy {policy}: queued jobs can be evicted "
        f"(expected {wanted}); run apply with --fix-redis to change it"
    )
    return [Blocked(SERVER, fix, reason)]


def compare_queues(spec: Spec, live: RedisLive) -> list[Operation]:
    ops: list[Operation] = []
    for queue in spec.queues:
        keys = QueueKeys(spec.redis.key_prefix, queue.name)
        if GROUP not in live.streams.get(keys.stream, frozenset()):
            ops.append(CreateQueue(queue.name, keys.stream, GROUP))
    return ops


def compare_schedules(spec: Spec, live: RedisLive) -> list[Operation]:
    ops: list[Operation] = []
    for schedule in spec.schedules:
        wanted = stored.definition(schedule)
        before = live.schedules.get(schedule.id)
        if before != wanted:
            ops.append(PutSchedule(schedule.id, wanted, before))
    declared = {s.id for s in spec.schedules}
    for schedule_id, before in sorted(live.schedules.items()):
        if schedule_id not in declared:
            ops.append(DeleteSchedule(schedule_id, before or {}))
    return ops
