"""Run Redis operations, one executor per operation type (the EXECUTORS table at the end)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis

from bootstrap.engine.ops import Operation, Report
from bootstrap.engine.redis.operations import CreateQueue, DeleteSchedule, PutSchedule, SetEvictionPolicy, WriteMarker
from bootstrap.errors import OperationFailed
from bootstrap.layout import schedules as stored
from bootstrap.layout.keys import ScheduleKeys
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
        raise OperationFailed(f"{op.group}: {op.describe()[0]} failed: {mask(str(exc))}", op) from None


def _set_eviction_policy(target: Target, op: Operation, report: Report) -> None:
    assert isinstance(op, SetEvictionPolicy)
    target.client.config_set("maxmemory-policy", op.after)
    try:  # keep it across a Redis restart where the server has a config file
        target.client.config_rewrite()
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


def _put_schedule(target: Target, op: Operation, report: Report) -> None:
    assert isinstance(op, PutSchedule)
    pipe = target.client.pipeline()  # MULTI/EXEC: schedulers never see half of it
    pipe.hset(target.schedules.definitions, op.collection, stored.encode(op.definition))
    if not op.definition.get("enabled", True):
        # A schedule enabled again later starts afresh: its disabled time is not "missed".
        pipe.hdel(target.schedules.last_slot, op.collection)
    pipe.execute()


def _delete_schedule(target: Target, op: Operation, report: Report) -> None:
    assert isinstance(op, DeleteSchedule)
    pipe = target.client.pipeline()
    pipe.hdel(target.schedules.definitions, op.collection)
    pipe.hdel(target.schedules.last_slot, op.collection)
    pipe.execute()


def _write_marker(target: Target, op: Operation, report: Report) -> None:
    assert isinstance(op, WriteMarker)
    target.client.set(op.key, new_marker(), nx=True)  # another apply wrote it meanwhile: keep theirs


EXECUTORS: dict[type[Operation], Callable[[Target, Operation, Report], None]] = {
    SetEvictionPolicy: _set_eviction_policy,
    CreateQueue: _create_queue,
    PutSchedule: _put_schedule,
    DeleteSchedule: _delete_schedule,
    WriteMarker: _write_marker,
}
