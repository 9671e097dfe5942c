"""Run Redis operations, one executor per operation type (the EXECUTORS table at the end).

Every transaction (MULTI/EXEC) here touches the keys of one queue only, so it is single-slot on a
cluster; the schedule index is written on its own, after the definition it points to.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from bootstrap.connect.redis import is_cluster, primaries
from bootstrap.engine.ops import Operation, Report
from bootstrap.engine.redis.operations import (
    CreateQueue,
    DeleteSchedule,
    MoveKeys,
    MoveSchedules,
    PutSchedule,
    SetEvictionPolicy,
    WriteMarker,
)
from bootstrap.errors import OperationFailed
from bootstrap.layout import schedules as stored
from bootstrap.layout.keys import QueueKeys, ScheduleKeys, as_text
from bootstrap.layout.marker import new_marker
from bootstrap.redact import mask


@dataclass(frozen=True)
class Target:
    """Where Redis operations go: the client, and the keys of the spec's schedules."""

    client: redis.Redis
    schedules: ScheduleKeys


def execute(target: Target, op: Operation, report: Report) -> None:
    """Run one Redis operation; raise OperationFailed with a message that says what went wrong."""
    executor = EXECUTORS.get(type(op))
    if executor is None:
        raise TypeError(f"no Redis executor for {type(op).__name__}")
    try:
        executor(target, op, report)
    except redis.RedisError as exc:
        raise OperationFailed(f"{op.group}: {op.headline()} failed: {mask(str(exc))}", op) from None


def _set_eviction_policy(target: Target, op: Operation, report: Report) -> None:
    assert isinstance(op, SetEvictionPolicy)
    client = target.client
    where = {"target_nodes": primaries(client)[op.collection]} if is_cluster(client) else {}
    client.config_set("maxmemory-policy", op.after, **where)
    try:  # keep it across a Redis restart where the server has a config file
        client.config_rewrite(**where)
    except redis.ResponseError as exc:
        report(
            f"  note: the policy is set until Redis restarts (CONFIG REWRITE: {exc}); "
            f"put `maxmemory-policy {op.after}` in its configuration"
        )


def _create_queue(target: Target, op: Operation, report: Report) -> None:
    assert isinstance(op, CreateQueue)
    try:
        target.client.xgroup_create(op.stream, op.group_name, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):  # the group exists already: the goal is met
            raise


def _move_keys(target: Target, op: Operation, report: Report) -> None:
    assert isinstance(op, MoveKeys)
    pipe = target.client.pipeline()  # MULTI/EXEC: a queue moves whole or not at all
    for old, new in op.moves:
        pipe.rename(old, new)
    pipe.execute()


def _move_schedules(target: Target, op: Operation, report: Report) -> None:
    assert isinstance(op, MoveSchedules)
    client, keys = target.client, target.schedules
    definitions = client.hgetall(op.definitions_key)
    last_slots = client.hgetall(op.last_slot_key)
    pipe = client.pipeline()  # standalone only (compare blocks it on a cluster): one transaction
    for raw_id, raw in definitions.items():
        schedule_id = as_text(raw_id)
        decoded = stored.decode(raw)
        queue = decoded.get("queue") if decoded else None
        if not isinstance(queue, str):
            continue  # unreadable: dropped, apply stores the declared definition again
        queue_keys = QueueKeys(keys.prefix, queue)
        pipe.hsetnx(queue_keys.schedules, schedule_id, raw)
        pipe.hset(keys.index, schedule_id, queue)
        last = last_slots.get(raw_id)
        if last is not None:
            pipe.hsetnx(queue_keys.last_slot, schedule_id, last)
    pipe.delete(op.definitions_key, op.last_slot_key)
    pipe.execute()


def _put_schedule(target: Target, op: Operation, report: Report) -> None:
    assert isinstance(op, PutSchedule)
    client, keys, schedule_id = target.client, target.schedules, op.collection
    queue = QueueKeys(keys.prefix, str(op.definition["queue"]))
    last = None
    if op.held_in:  # moving to another queue: take the last slot along, delete it there first
        old = QueueKeys(keys.prefix, op.held_in)
        last = client.hget(old.last_slot, schedule_id)
        pipe = client.pipeline()
        pipe.hdel(old.schedules, schedule_id)
        pipe.hdel(old.last_slot, schedule_id)
        pipe.execute()
    pipe = client.pipeline()  # MULTI/EXEC: schedulers never see half of it
    pipe.hset(queue.schedules, schedule_id, stored.encode(op.definition))
    if not op.definition.get("enabled", True):
        # A schedule enabled again later starts afresh: its disabled time is not "missed".
        pipe.hdel(queue.last_slot, schedule_id)
    elif op.retimed:  # see PutSchedule.retimed: slots of the new timing count from now
        pipe.hset(queue.last_slot, schedule_id, repr(time.time()))
    elif last is not None:
        pipe.hset(queue.last_slot, schedule_id, last)
    pipe.execute()
    client.hset(keys.index, schedule_id, queue.queue)


def _delete_schedule(target: Target, op: Operation, report: Report) -> None:
    assert isinstance(op, DeleteSchedule)
    client, keys = target.client, target.schedules
    held_in = op.held_in or op.before.get("queue")
    if isinstance(held_in, str) and held_in:
        queue = QueueKeys(keys.prefix, held_in)
        pipe = client.pipeline()
        pipe.hdel(queue.schedules, op.collection)
        pipe.hdel(queue.last_slot, op.collection)
        pipe.execute()
    client.hdel(keys.index, op.collection)


def _write_marker(target: Target, op: Operation, report: Report) -> None:
    assert isinstance(op, WriteMarker)
    marker = new_marker()
    for key in op.queue_keys:  # before the marker: it is written last, once everything else is there
        target.client.set(key, marker, nx=True)
    target.client.set(op.key, marker, nx=True)  # another apply wrote it meanwhile: keep theirs


EXECUTORS: dict[type[Operation], Callable[[Target, Operation, Report], None]] = {
    SetEvictionPolicy: _set_eviction_policy,
    MoveKeys: _move_keys,
    MoveSchedules: _move_schedules,
    CreateQueue: _create_queue,
    PutSchedule: _put_schedule,
    DeleteSchedule: _delete_schedule,
    WriteMarker: _write_marker,
}
