"""What operators ask of the job layer (`status`, `jobs ...`): queue depths, schedules, workers, and
the failed-job store. Synchronous Redis calls, pipelined: one round trip per question."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis

from bootstrap.connect.redis import is_cluster
from bootstrap.jobs import labels
from bootstrap.jobs.labels import ATTEMPT, RETRY_AFTERS, TRANSIENT, UNSERVED_SINCE
from bootstrap.jobs.records import COMPLETED, FAILED
from bootstrap.jobs.slots import latest_slot, next_slot, problem, unaligned
from bootstrap.layout import schedules as stored
from bootstrap.layout.keys import (
    GROUP,
    NORMAL,
    PRIORITIES,
    QueueKeys,
    ScheduleKeys,
    as_text,
    marker_key,
    schedulers_key,
    workers_key,
)
from bootstrap.layout.marker import read_marker
from bootstrap.spec.durations import format_duration
from bootstrap.spec.model import Spec

WORKER_SEEN_WITHIN = 30.0  # seconds: a worker (or scheduler) whose last heartbeat is older counts as gone
RESET = (ATTEMPT, TRANSIENT, RETRY_AFTERS, UNSERVED_SINCE)  # what a retried failed job starts afresh


@dataclass(frozen=True)
class QueueStats:
    queue: str
    waiting: int  # in the stream, not yet handed to a worker
    running: int  # handed to a worker, not acknowledged
    delayed: int  # waiting for a retry delay
    completed: int  # records kept
    failed: int  # records kept (the failed-job store)
    paused: bool = False  # `bootstrap jobs pause`: workers take no jobs


def queue_stats(client: redis.Redis, spec: Spec) -> list[QueueStats]:
    return queues_stats(client, spec.redis.key_prefix, [q.name for q in spec.queues])


def queues_stats(client: redis.Redis, prefix: str, queues: Iterable[str]) -> list[QueueStats]:
    """The stats of the named queues (a worker's metrics ask for its own queue only); waiting and
    running summed over each queue's priority levels' streams."""
    pipe = client.pipeline(transaction=False)
    keys = [QueueKeys(prefix, name) for name in queues]
    levels = len(PRIORITIES)
    for k in keys:
        for stream in k.streams:
            pipe.xlen(stream)
            pipe.xinfo_groups(stream)
        pipe.zcard(k.delayed)
        pipe.zcard(k.records(COMPLETED))
        pipe.zcard(k.records(FAILED))
        pipe.exists(k.paused)
    results = pipe.execute(raise_on_error=False)
    stats, per_queue = [], 2 * levels + 4
    for i, k in enumerate(keys):
        mine = results[i * per_queue : (i + 1) * per_queue]
        waiting = running = 0
        for length, groups in zip(mine[0 : 2 * levels : 2], mine[1 : 2 * levels : 2], strict=True):
            length = length if isinstance(length, int) else 0
            group: dict[str, Any] = {}
            if isinstance(groups, list):
                group = next((g for g in groups if as_text(g.get("name")) == GROUP), {})
            pending = int(group.get("pending", 0))
            waiting, running = waiting + max(0, length - pending), running + pending
        delayed, completed, failed, paused = mine[2 * levels :]
        stats.append(
            QueueStats(k.queue, waiting, running, _int(delayed), _int(completed), _int(failed), paused=_int(paused) > 0)
        )
    return stats


def data_marker(client: redis.Redis, spec: Spec) -> dict[str, Any] | None:
    """The marker apply wrote (layout.marker); None: Redis lost its data, or apply never ran."""
    return read_marker(client.get(marker_key(spec.redis.key_prefix)))


OTHERS_SCANNED = 20  # SCAN rounds of 1,000 keys: a look around, not a walk of a huge keyspace


def other_prefixes(client: redis.Redis, spec: Spec) -> list[str]:
    """Key prefixes of other deployments whose markers this database holds (`P:marker`), found by a
    bounded SCAN: where this spec's marker is missing, a changed `key_prefix` looks the same as lost
    data, and `apply` would then start a second, empty deployment beside the first. Not looked for
    on a Redis Cluster (a scan per node)."""
    if is_cluster(client):
        return []
    found: set[str] = set()
    cursor: Any = 0
    for _ in range(OTHERS_SCANNED):
        try:
            # Strings only: ours are; BullMQ 5's `<prefix>:<queue>:marker` keys are sorted sets.
            cursor, keys = client.scan(cursor, match="*:marker", count=1000, _type="string")
        except redis.ResponseError:  # an ACL without SCAN: nothing to say, rather than fail status
            return []
        for key in keys:
            name = as_text(key).removesuffix(":marker")
            if ":queue:{" not in name:  # a queue's data marker names its deployment's too
                found.add(name)
        if not cursor or cursor == b"0":
            break
    found.discard(spec.redis.key_prefix)
    return sorted(found)


def stored_schedules(client: redis.Redis, spec: Spec) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """Every stored schedule's raw definition and last handled slot, by raw id. Each schedule is
    kept with the queue it fires into: the declared queues and those the index names are read."""
    keys = ScheduleKeys(spec.redis.key_prefix)
    queues = sorted({as_text(q) for q in client.hgetall(keys.index).values()} | {q.name for q in spec.queues})
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.hgetall(keys.of(queue).schedules)
        pipe.hgetall(keys.of(queue).last_slot)
    replies = pipe.execute()
    definitions: dict[Any, Any] = {}
    last_slots: dict[Any, Any] = {}
    for i in range(0, len(replies), 2):
        definitions.update(replies[i])
        last_slots.update({k: v for k, v in replies[i + 1].items() if k in replies[i]})
    return definitions, last_slots


def schedule_states(client: redis.Redis, spec: Spec, now: float | None = None) -> list[dict[str, Any]]:
    """Each stored schedule with its last handled slot and its next one; `problem` says why one
    cannot fire (a cron that never fires, an unreadable definition), and then it has no next run."""
    now = time.time() if now is None else now
    definitions, last_slots = stored_schedules(client, spec)
    rows = []
    for raw_id, raw in sorted(definitions.items()):
        definition = stored.decode(raw) or {}
        schedule_id = as_text(raw_id)
        last = last_slots.get(raw_id)
        last_slot = float(last) if last is not None else None
        enabled = definition.get("enabled", True)
        trouble = problem(definition, now)
        fires = enabled and trouble is None
        rows.append(
            {
                "id": schedule_id,
                "queue": definition.get("queue"),
                "task": definition.get("task"),
                "when": f"cron {definition['cron']}" if definition.get("cron") else _every(definition.get("every")),
                "priority": fired_level(spec, definition),
                "enabled": enabled,
                "last_run": last_slot,
                "next_run": _next_run(definition, last_slot, now) if fires else None,
                "latest_due": latest_slot(definition, now, last_slot) if trouble is None else None,
                "problem": trouble,
            }
        )
    return rows


def fired_level(spec: Spec, definition: dict[str, Any]) -> str:
    """The priority level a schedule's jobs go to: its own, else its task's (as the spec declares
    it), else normal; as the scheduler decides it."""
    if definition.get("priority"):
        return str(definition["priority"])
    queue = next((q for q in spec.queues if q.name == definition.get("queue")), None)
    task = next((t for t in queue.tasks if t.name == definition.get("task")), None) if queue else None
    return task.priority if task is not None else NORMAL


def described_when(schedule: dict[str, Any]) -> str:
    """A schedule row's `when`, with its priority level when that is not normal."""
    level = schedule.get("priority", NORMAL)
    return schedule["when"] if level == NORMAL else f"{schedule['when']}, {level} priority"


def workers(client: redis.Redis, spec: Spec, now: float | None = None) -> list[dict[str, Any]]:
    """Workers whose heartbeat is recent, by queue and name."""
    return sorted(_seen(client, workers_key(spec.redis.key_prefix), now), key=lambda b: (b["queue"], b["name"]))


def earlier_releases(workers: list[dict[str, Any]], queue: str) -> list[str]:
    """The live workers of `queue` whose heartbeat names no release: releases before 0.2.0, among
    them those from before `jobs pause`, which go on taking jobs from a paused queue."""
    return [w["name"] for w in workers if w.get("queue") == queue and "release" not in w]


def schedulers(client: redis.Redis, spec: Spec, now: float | None = None) -> list[dict[str, Any]]:
    """Schedulers whose heartbeat is recent (seen as workers are, see WORKER_SEEN_WITHIN), by name."""
    return sorted(_seen(client, schedulers_key(spec.redis.key_prefix), now), key=lambda b: b["name"])


def _seen(client: redis.Redis, key: str, now: float | None) -> list[dict[str, Any]]:
    """The heartbeats in the hash `key` seen within WORKER_SEEN_WITHIN, each with its `name`."""
    now = time.time() if now is None else now
    seen = []
    for name, raw in client.hgetall(key).items():
        beat = json.loads(raw)
        if now - float(beat.get("seen", 0)) <= WORKER_SEEN_WITHIN:
            seen.append({"name": as_text(name), **beat})
    return seen


def failed_jobs(client: redis.Redis, keys: QueueKeys, limit: int = 50) -> list[dict[str, Any]]:
    ids: Any = client.zrevrange(keys.records(FAILED), 0, limit - 1)
    if not ids:
        return []
    return [json.loads(r) for r in client.hmget(keys.record_data(FAILED), ids) if r is not None]


def failed_job(client: redis.Redis, keys: QueueKeys, job_id: str) -> dict[str, Any] | None:
    raw = client.hget(keys.record_data(FAILED), job_id)
    return json.loads(raw) if raw else None


def retry_failed(client: redis.Redis, keys: QueueKeys, job_ids: list[str]) -> list[str]:
    """Put failed jobs back on their queue as new first attempts (same id, arguments and labels; the
    counters reset: attempt, transient retries and retry-afters, so the job has all its attempts and
    all its RetryAfter requests again, and a task no worker served has its whole wait again) and
    take them out of the failed store, atomically per job.
    Returns the ids re-enqueued: not those no longer in the store (another retry took them)."""
    from taskiq import TaskiqMessage  # here: `status` and `health` must not load taskiq

    done = []
    for job_id in job_ids:
        record = failed_job(client, keys, job_id)
        if record is None:
            continue
        kept = {k: v for k, v in record.get("labels", {}).items() if k not in RESET}
        message = TaskiqMessage(
            task_id=record["id"],
            task_name=record["task"],
            labels=kept,
            args=record.get("args", []),
            kwargs=record.get("kwargs", {}),
        )
        level = str(message.labels.get(labels.PRIORITY, NORMAL))
        level = level if level in PRIORITIES else NORMAL  # back onto its own level
        dedupe = "1" if labels.dedupe_or_false(message.labels) else ""  # its id is taken again while it waits
        taken = client.eval(
            _RETRY, 4, keys.record_data(FAILED), keys.records(FAILED), keys.stream_at(level), keys.ids,
            job_id, message.model_dump_json().encode(), dedupe, time.time(),
        )  # fmt: skip
        if taken:
            done.append(job_id)
    return done


# Take a failed job out of the failed store and put it back on its queue, in one step, only if it is
# still there: of two retries at once (a form sent twice, the dashboard and `jobs retry` together),
# one enqueues it. KEYS (the queue's slot): failed data, failed index, the level's stream, id index.
# ARGV: job id, message, '1' when its id deduplicates, now.
_RETRY = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[3] == '1' then redis.call('HSET', KEYS[4], ARGV[1], ARGV[4]) end
redis.call('XADD', KEYS[3], '*', 'data', ARGV[2])
return 1
"""


def all_failed_ids(client: redis.Redis, keys: QueueKeys) -> list[str]:
    return [as_text(i) for i in client.zrange(keys.records(FAILED), 0, -1)]


def purge_failed(client: redis.Redis, keys: QueueKeys) -> int:
    pipe = client.pipeline(transaction=True)
    pipe.zcard(keys.records(FAILED))
    pipe.delete(keys.records(FAILED), keys.record_data(FAILED))
    count, _ = pipe.execute()
    return int(count)


def _next_run(definition: dict[str, Any], last_slot: float | None, now: float) -> float:
    """When the schedule fires next: an unaligned `every` one never handled fires when a scheduler
    first sees it (now, as far as status can tell)."""
    if last_slot is None and unaligned(definition):
        return now
    return next_slot(definition, max(now, last_slot or 0), last_slot)


def _every(seconds: Any) -> str:
    """`every 15m`, as the spec writes it (not `every 900.0s`)."""
    return f"every {format_duration(float(seconds))}" if isinstance(seconds, int | float) else f"every {seconds}"


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int) else 0
