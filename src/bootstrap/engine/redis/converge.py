"""Compare the spec's queues and schedules with Redis, and execute the resulting operations.

The schedules hash is owned by bootstrap: entries not declared are removed. The eviction policy is
a server setting: a wrong one is reported, and changed only with --fix-redis.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

from bootstrap.connect.redis import UNKNOWN_POLICY, eviction_policy
from bootstrap.engine.ops import Blocked, Operation, Plan
from bootstrap.engine.redis.operations import CreateQueue, DeleteSchedule, PolicyUnknown, PutSchedule, SetEvictionPolicy
from bootstrap.errors import ApplyFailed
from bootstrap.layout import schedules as stored
from bootstrap.layout.keys import GROUP, QueueKeys, ScheduleKeys, as_text
from bootstrap.redact import mask
from bootstrap.spec.model import Spec


def compare(spec: Spec, client: redis.Redis, *, fix_redis: bool = False) -> tuple[Operation, ...]:
    ops: list[Operation] = []
    wanted_policy = spec.redis.maxmemory_policy
    policy = eviction_policy(client)
    if policy == UNKNOWN_POLICY:
        ops.append(PolicyUnknown("server", wanted_policy))
    elif policy != wanted_policy:
        fix = SetEvictionPolicy("server", policy, wanted_policy)
        ops.append(
            fix
            if fix_redis
            else Blocked(
                "server",
                fix,
                f"Redis runs with maxmemory-policy {policy}: queued jobs can be evicted "
                f"(expected {wanted_policy}); run apply with --fix-redis to change it",
            )
        )
    pipe = client.pipeline(transaction=False)
    queue_keys = [QueueKeys(spec.redis.key_prefix, q.name) for q in spec.queues]
    for keys in queue_keys:
        pipe.exists(keys.stream)
    schedule_keys = ScheduleKeys(spec.redis.key_prefix)
    pipe.hgetall(schedule_keys.definitions)
    *exists, live_raw = pipe.execute()  # one round trip for every queue and the schedules
    for keys, present in zip(queue_keys, exists, strict=True):
        if not present or not _has_group(client, keys.stream):
            ops.append(CreateQueue(keys.queue, keys.stream, GROUP))
    live = {as_text(k): stored.decode(v) for k, v in live_raw.items()}
    for schedule in spec.schedules:
        wanted = stored.definition(schedule)
        before = live.get(schedule.id)
        if before != wanted:
            ops.append(PutSchedule(schedule.id, wanted, before))
    declared = {s.id for s in spec.schedules}
    for schedule_id, before in sorted(live.items()):
        if schedule_id not in declared:
            ops.append(DeleteSchedule(schedule_id, before or {}))
    return tuple(ops)


def _has_group(client: redis.Redis, stream: str) -> bool:
    try:
        groups: list[dict[str, Any]] = client.xinfo_groups(stream)
    except redis.ResponseError:
        return False
    return any(as_text(g.get("name", b"")) == GROUP for g in groups)


def execute(
    spec: Spec, client: redis.Redis, plan: Plan, report: Callable[[str], None], done_before: list[Operation]
) -> list[Operation]:
    """Run every changing Redis operation of `plan`; return them. Raise ApplyFailed on the first
    failure, naming what completed before it (`done_before` and these)."""
    keys = ScheduleKeys(spec.redis.key_prefix)
    done: list[Operation] = []
    for op in plan.changes:
        try:
            if isinstance(op, SetEvictionPolicy):
                client.config_set("maxmemory-policy", op.after)
                try:  # keep it across a Redis restart where the server has a config file
                    client.config_rewrite()
                except redis.ResponseError as exc:
                    report(
                        f"  note: the policy is set until Redis restarts (CONFIG REWRITE: {exc}); "
                        f"put `maxmemory-policy {op.after}` in its configuration"
                    )
            elif isinstance(op, CreateQueue):
                try:
                    client.xgroup_create(op.stream, op.group_name, id="0", mkstream=True)
                except redis.ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise
            elif isinstance(op, PutSchedule):
                client.hset(keys.definitions, op.collection, stored.encode(op.definition))
                if not op.definition.get("enabled", True):
                    # A schedule enabled again later starts afresh: its disabled time is not "missed".
                    client.hdel(keys.last_slot, op.collection)
            elif isinstance(op, DeleteSchedule):
                client.hdel(keys.definitions, op.collection)
                client.hdel(keys.last_slot, op.collection)
            else:
                continue  # another side's operation (MongoDB)
        except redis.RedisError as exc:
            raise ApplyFailed(
                f"{op.group}: {op.describe()[0]} failed: {mask(str(exc))}", [*done_before, *done], op
            ) from None
        for line in op.describe():
            report(f"{op.symbol} {line}" if not line.startswith("  ") else line)
        done.append(op)
    return done
