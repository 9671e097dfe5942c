"""Spec + live Redis state -> operations. Pure: no I/O, so every case is tested on hand-built state.

The schedules are owned by bootstrap: entries not declared are deleted. The eviction policy is a
server setting (of every primary, on a cluster): a wrong one is blocked, and changed only with
--fix-redis; where it cannot be read, a note says so and nothing changes. Keys of the layout before
hash tags (layout.keys) are moved first, on a standalone server; on a cluster that is blocked. The
data marker is written where it is missing, last.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from bootstrap.engine.ops import Blocked, Operation
from bootstrap.engine.redis.leftovers import SAMPLED
from bootstrap.engine.redis.live import UNKNOWN_POLICY, RedisLive
from bootstrap.engine.redis.operations import (
    CreateQueue,
    DeleteSchedule,
    JobsLeftBehind,
    MoveKeys,
    MoveSchedules,
    PolicyUnknown,
    PutSchedule,
    SetEvictionPolicy,
    WriteMarker,
)
from bootstrap.layout import schedules as stored
from bootstrap.layout.keys import GROUP, QueueKeys, ScheduleKeys, marker_key
from bootstrap.spec.model import Spec

SERVER = "server"  # what the eviction-policy operations act on (on a cluster: each primary)

CLUSTER_MOVE = (
    "these keys have the layout before hash tags, and Redis Cluster cannot rename a key into another "
    "slot. Run this bootstrap's apply against the standalone Redis before moving to the cluster (it "
    "moves them there), or drain the queue (no job waiting or running), stop its workers and "
    "schedulers, and delete the old keys"
)


def compare(spec: Spec, live: RedisLive, *, fix_redis: bool = False) -> tuple[Operation, ...]:
    """The eviction policy first, then moving keys of the old layout, then each queue missing its
    stream or group, then each schedule created or changed (in spec order), then each schedule
    deleted (by id), then the data marker."""
    moves = compare_legacy(spec, live)
    return (
        *(op for where, policy in live.policies().items()
          for op in compare_policy(spec.redis.maxmemory_policy, policy, fix_redis, where)),
        *moves,
        *compare_queues(spec, live, moving=_moving_streams(moves)),
        *compare_schedules(spec, live, legacy=any(isinstance(op, MoveSchedules) for op in moves)),
        *compare_marker(spec, live),
        *compare_leftovers(live),
    )  # fmt: skip


def compare_leftovers(live: RedisLive) -> list[Operation]:
    """Notes on jobs the spec no longer runs (see engine.redis.leftovers): apply leaves them be."""
    notes: list[Operation] = []
    for queue, (waiting, delayed, failed) in live.leftovers.queues.items():
        notes.append(JobsLeftBehind(queue, (
            f"queue {queue} is no longer declared, but its keys hold {waiting} waiting (or running), {delayed} "
            f"delayed and {failed} failed job(s): apply leaves them as they are, and no worker runs them; declare "
            "the queue again to run them (and to see them with `bootstrap jobs`)"
        )))  # fmt: skip
    for queue, tasks in live.leftovers.tasks.items():
        count, names = sum(tasks.values()), ", ".join(tasks)
        notes.append(JobsLeftBehind(queue, (
            f"{count} job(s) waiting or delayed for task(s) {names}, which queue {queue} no longer declares (among "
            f"its oldest {SAMPLED} per level): workers of the new wiring hand them back for 10 minutes, then set "
            "them aside in the failed store as 'unknown task'; keep the old name until they ran, or let the old "
            "workers finish them first"
        )))  # fmt: skip
    return notes


def compare_marker(spec: Spec, live: RedisLive) -> list[Operation]:
    """The data marker, and each declared queue's own (QueueKeys.marker), where missing."""
    missing = tuple(QueueKeys(spec.redis.key_prefix, q.name).marker for q in spec.queues
                    if q.name not in live.queue_markers)  # fmt: skip
    if live.marker is not None and not missing:
        return []
    return [WriteMarker("marker", marker_key(spec.redis.key_prefix), missing, live.marker is None)]


def compare_policy(wanted: str, policy: str, fix_redis: bool, where: str = SERVER) -> list[Operation]:
    if policy == UNKNOWN_POLICY:
        return [PolicyUnknown(where, wanted)]
    if policy == wanted:
        return []
    fix = SetEvictionPolicy(where, policy, wanted)
    if fix_redis:
        return [fix]
    server = "Redis" if where == SERVER else f"Redis node {where}"
    reason = (
        f"{server} runs with maxmemory-policy {policy}: queued jobs can be evicted "
        f"(expected {wanted}); run apply with --fix-redis to change it"
    )
    return [Blocked(where, fix, reason)]


def compare_legacy(spec: Spec, live: RedisLive) -> list[Operation]:
    """Moving what is left of the layout before hash tags: queue by queue, then the schedules."""
    legacy = live.legacy
    ops: list[Operation] = []
    for queue, moves in sorted(legacy.moves.items()):
        move = MoveKeys(queue, moves)
        taken = [new for _, new in moves if new in legacy.taken]
        if live.cluster:
            ops.append(Blocked(queue, move, CLUSTER_MOVE))
        elif taken:
            reason = (
                f"{', '.join(taken)} exist(s) already under the new name (a newer worker wrote there): "
                "keep one of each pair (drain or delete the other) and plan again"
            )
            ops.append(Blocked(queue, move, reason))
        else:
            ops.append(move)
    if legacy.schedules or legacy.last_slots:
        keys = ScheduleKeys(spec.redis.key_prefix)
        ids = sorted(set(legacy.schedules) | set(legacy.last_slots))
        placed = tuple((sid, _queue_of(legacy.schedules.get(sid))) for sid in ids)
        move_schedules = MoveSchedules("schedules", keys.legacy_definitions, keys.legacy_last_slot, placed)
        ops.append(Blocked("schedules", move_schedules, CLUSTER_MOVE) if live.cluster else move_schedules)
    return ops


def _queue_of(definition: Mapping[str, Any] | None) -> str:
    queue = definition.get("queue") if definition is not None else None
    return queue if isinstance(queue, str) else ""


def _moving_streams(ops: list[Operation]) -> set[str]:
    """The queues whose old stream (with its consumer group) this plan moves to the new name."""
    return {
        op.collection for op in ops if isinstance(op, MoveKeys) and any(old.endswith(":jobs") for old, _ in op.moves)
    }


def compare_queues(spec: Spec, live: RedisLive, moving: AbstractSet[str] = frozenset()) -> list[Operation]:
    ops: list[Operation] = []
    for queue in spec.queues:
        keys = QueueKeys(spec.redis.key_prefix, queue.name)
        if GROUP in live.streams.get(keys.stream, frozenset()):
            continue
        if queue.name in moving and GROUP in live.legacy.groups.get(queue.name, frozenset()):
            continue  # the old stream moves here, group and all
        ops.append(CreateQueue(queue.name, keys.stream, GROUP))
    return ops


def compare_schedules(spec: Spec, live: RedisLive, legacy: bool = False) -> list[Operation]:
    """With `legacy`, the old schedule hashes are moved first (MoveSchedules): compared as moved."""
    current: dict[str, Mapping[str, Any] | None] = dict(live.schedules)
    held: dict[str, str] = dict(live.schedule_queues)
    if legacy:
        for schedule_id, definition in live.legacy.schedules.items():
            queue = _queue_of(definition)
            if queue and schedule_id not in current:
                current[schedule_id], held[schedule_id] = definition, queue
    ops: list[Operation] = []
    for schedule in spec.schedules:
        wanted = stored.definition(schedule)
        before = stored.with_defaults(current.get(schedule.id))
        where = held.get(schedule.id, "")
        if before != wanted or (where and where != schedule.queue):
            ops.append(PutSchedule(schedule.id, wanted, before, where if where != schedule.queue else ""))
    declared = {s.id for s in spec.schedules}
    for schedule_id in sorted(set(current) | set(held)):
        if schedule_id not in declared:
            gone = current.get(schedule_id) or {}
            where = held.get(schedule_id, "")
            ops.append(DeleteSchedule(schedule_id, gone, where if where != gone.get("queue") else ""))
    return ops
