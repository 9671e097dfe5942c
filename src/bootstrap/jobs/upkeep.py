"""A worker's upkeep of its queue, each piece with its own interval:

- Reclaimer: jobs pending longer than the visibility timeout (their worker died) are taken over
  (XAUTOCLAIM), whether or not new jobs arrive, with their delivery counts (a job delivered too often
  goes to the failed store: see intake). It runs inside the broker's read loop, on the read
  connection, because the jobs it claims are delivered like freshly read ones.
- Renewer: the jobs this worker holds get their idle time reset (XCLAIM ... JUSTID), so a long job
  is not handed to a second worker while the first is still on it; from a thread of its own, so a
  blocked event loop cannot stop it.
- Heartbeat: an "alive" note in the workers hash for `bootstrap status` (with the hash of the
  generated wiring the worker runs), removed on shutdown.
- Promoter: retries and delayed jobs waiting in the delayed set are moved into the stream of their
  priority level when due (one Lua step).
- Janitor: consumers of dead workers (silent for DEAD_AFTER: no heartbeat, no read) that own no
  pending job any more in any priority level's stream (their jobs were taken over) are deleted from
  the consumer group of every level's stream, and their heartbeats removed; without it, every worker
  that ever ran stays listed by XINFO forever.

`Background` starts the event-loop ones at a worker's startup and stops them at its shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from bootstrap import RELEASE
from bootstrap.jobs.inflight import InFlight
from bootstrap.jobs.intake import salvage
from bootstrap.layout.keys import GROUP, NORMAL, PRIORITIES, QueueKeys, as_text, entry_ref, workers_key
from bootstrap.redact import mask

# The broker's logger: these lines read as they did when the broker did this itself.
log = logging.getLogger("bootstrap.jobs.broker")

HEARTBEAT_EVERY = 5.0  # seconds between a worker's "alive" notes
DEAD_AFTER = 2 * HEARTBEAT_EVERY  # seconds without a heartbeat or a read after which a worker is dead
SWEEP_EVERY = 5.0  # seconds between two looks for dead consumers
RENEW_RETRY = 0.25  # seconds between renewals while Redis fails them (see Reclaimer)


def renew_every(visibility_timeout: float) -> float:
    """Seconds between renewals of the jobs a worker holds: three per visibility timeout."""
    return max(0.5, visibility_timeout / 3)


class Reclaimer:
    """Takes over jobs idle longer than the visibility timeout, at most every quarter of it.

    After Redis was away (`outage`), not before their owners had the time to renew them: an outage
    longer than the visibility timeout leaves every running job idle past it, and a worker that
    took them over as Redis came back would run them while their owners still do. Owners retry
    their renewal every RENEW_RETRY seconds while Redis is away, so one renewal period and a second
    after Redis answers again, a job still idle has an owner that is really gone."""

    def __init__(self, keys: QueueKeys, consumer: str, visibility_timeout: float, in_flight: InFlight) -> None:
        self.keys = keys
        self.consumer = consumer
        self.in_flight = in_flight
        self.every = max(1.0, visibility_timeout / 4)
        self.grace = renew_every(visibility_timeout) + 1.0
        self.visibility_timeout = visibility_timeout
        self._next = 0.0  # the first read of a worker reclaims at once

    def due(self) -> bool:
        """True once per interval: time to look for abandoned jobs."""
        if time.monotonic() < self._next:
            return False
        self._next = time.monotonic() + self.every
        return True

    def outage(self) -> None:
        """Redis failed this worker's read: take nothing over until the owners could renew (above)."""
        self._next = max(self._next, time.monotonic() + self.grace)

    async def reclaim(self, conn: aioredis.Redis, room: Callable[[], int]) -> list[tuple[Any, Any, int]]:
        """Jobs pending longer than the visibility timeout, taken over, from every priority level's
        stream, highest first: as many as `room()` allows (asked again per round trip:
        acknowledgements free room meanwhile), each named by its entry reference (`entry_ref`) and
        with how many times it has now been delivered (Redis counts: XREADGROUP delivers once, each
        takeover once more). Entries this worker already holds are not delivered twice."""
        claimed: list[tuple[str, str, Any]] = []  # (level, entry id, fields)
        idle_ms = int(await self.longest_timeout(conn) * 1000)
        for level in PRIORITIES:
            stream, start = self.keys.stream_at(level), "0-0"
            while len(claimed) < room():
                try:
                    result = await conn.xautoclaim(
                        stream,
                        GROUP,
                        self.consumer,
                        min_idle_time=idle_ms,
                        start_id=start,
                        count=room() - len(claimed),
                    )
                except ResponseError as exc:  # a level never used has no stream yet: nothing to take over
                    if level == NORMAL or "NOGROUP" not in str(exc):
                        raise
                    break
                start, entries = as_text(result[0]), result[1]
                claimed += [
                    (level, as_text(entry_id), fields)
                    for entry_id, fields in entries
                    if entry_ref(level, as_text(entry_id)) not in self.in_flight
                ]
                if start == "0-0" or not entries:
                    break
        if not claimed:
            return []
        counts = await self._deliveries(conn, claimed)
        # Named: a job that kills its worker loses its own "started" line with the worker's buffer,
        # so this line is the first to name it (long before it reaches the failed store).
        named = ", ".join(f"{_job_name(fields, entry_id)} (delivery {n})"
                          for (_, entry_id, fields), n in list(zip(claimed, counts, strict=True))[:NAMED])  # fmt: skip
        more = f" and {len(claimed) - NAMED} more" if len(claimed) > NAMED else ""
        log.warning("queue %s: took over %d job(s) whose worker stopped responding: %s%s", self.keys.queue,
                    len(claimed), named, more)  # fmt: skip
        found = zip(claimed, counts, strict=True)
        return [(entry_ref(level, entry_id), fields, n) for (level, entry_id, fields), n in found]

    async def longest_timeout(self, conn: aioredis.Redis) -> float:
        """This worker's visibility timeout, or a longer one a live worker of the queue runs with (its
        heartbeat says): in a rollout that changes it, an owner renews every third of its own
        timeout, so taking over after a shorter one would run jobs their owners still run."""
        longest = self.visibility_timeout
        try:
            beats = await conn.hgetall(workers_key(self.keys.prefix))
        except (redis.RedisError, OSError):
            return longest  # the takeover itself then fails and is retried
        now = time.time()
        for raw in beats.values():
            try:
                beat = json.loads(raw)
                if beat.get("queue") == self.keys.queue and now - float(beat.get("seen", 0)) < DEAD_AFTER:
                    longest = max(longest, float(beat.get("visibility_timeout") or 0))
            except (ValueError, TypeError, AttributeError):
                continue  # not a heartbeat of ours
        return longest

    async def _deliveries(self, conn: aioredis.Redis, claimed: list[tuple[str, str, Any]]) -> list[int]:
        """How many times each claimed entry has been delivered, in one round trip."""
        pipe = conn.pipeline(transaction=False)
        for level, entry_id, _ in claimed:
            pipe.xpending_range(self.keys.stream_at(level), GROUP, min=entry_id, max=entry_id, count=1)
        counts = []
        for pending in await pipe.execute():
            counts.append(int(pending[0]["times_delivered"]) if pending else 1)
        return counts


NAMED = 10  # jobs a takeover line names


def _job_name(fields: Any, entry_id: str) -> str:
    """'job ID (task T)' from a stream entry's message, as far as it reads; else its entry id."""
    data = fields.get(b"data", fields.get("data")) if isinstance(fields, dict) else None
    known = salvage(data if isinstance(data, bytes) else str(data or "").encode())
    if not known.get("task_id"):
        return f"entry {entry_id}"
    task = f" (task {known['task_name']})" if known.get("task_name") else ""
    return f"job {known['task_id']}{task}"


class Renewer:
    """Resets the idle time of every job this worker holds, three times per visibility timeout.

    It runs in a thread of its own with its own (synchronous) Redis connection, not on the event
    loop: a handler that blocks the loop (time.sleep in an async function, a CPU-bound loop) cannot
    stop the renewal, so its job is never handed to a second worker while this process lives."""

    JOIN_WAIT = 1.0  # seconds `stop` waits for a renewal in flight (the thread is a daemon anyway)

    def __init__(
        self, client: redis.Redis, keys: QueueKeys, consumer: str, visibility_timeout: float, in_flight: InFlight
    ) -> None:
        self.client = client
        self.keys = keys
        self.consumer = consumer
        self.in_flight = in_flight
        self.every = renew_every(visibility_timeout)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False  # the last renewal failed (Redis away): said once, retried every RENEW_RETRY

    def renew(self) -> bool:
        """Renew the jobs held; False when Redis failed it."""
        ids = self.in_flight.held()
        if not ids:
            return True
        try:
            for stream, entry_ids in self.keys.by_stream(ids).items():  # one stream per priority level
                claimed: list[Any] = list(entry_ids)
                self.client.xclaim(stream, GROUP, self.consumer, min_idle_time=0, message_ids=claimed, justid=True)
        except Exception as exc:  # Redis away: tried again soon, so the renewal lands as it comes back
            if not self._failing:
                log.warning("queue %s: could not renew running jobs (%s); retrying", self.keys.queue, exc)
            self._failing = True
            return False
        if self._failing:
            log.info("queue %s: running jobs renewed again", self.keys.queue)
            self._failing = False
        return True

    def _run(self) -> None:
        wait = self.every
        while not self._stop.wait(wait):
            wait = self.every if self.renew() else RENEW_RETRY

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"renew-{self.keys.queue}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing (jobs still held are then taken over after the visibility timeout)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.JOIN_WAIT)
            self._thread = None


class Heartbeat:
    """Tells `bootstrap status` and `health` this process (a worker, or a scheduler) is alive, and
    which wiring it runs, every few seconds: JSON under `name` in the hash `key`, with `fields`,
    what `live()` says now, when it started and when it was last seen; removed on shutdown."""

    every = HEARTBEAT_EVERY

    def __init__(
        self,
        client: aioredis.Redis,
        key: str,
        name: str,
        fields: dict[str, Any],
        live: Callable[[], dict[str, Any]] = dict,
    ) -> None:
        self.client = client
        self.key = key
        self.name = name
        self.fields = {**fields, "host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
        self.live = live
        self.failing = False  # the last beat failed (said once, until one passes)

    async def beat(self) -> None:
        beat = {**self.fields, **self.live(), "seen": time.time()}
        await self.client.hset(self.key, self.name, json.dumps(beat))

    def beat_blocked(self, client: redis.Redis, blocked: str) -> None:
        """A beat from another thread while the event loop is blocked (see watchdog): the process
        lives, and `status` and `health` say what blocks it rather than calling it dead."""
        beat = {**self.fields, **self.live(), "seen": time.time(), "blocked": blocked}
        with contextlib.suppress(Exception):  # Redis away: the loop's beats say so once it runs again
            client.hset(self.key, self.name, json.dumps(beat))

    async def step(self) -> None:
        # A failed beat is said once per outage: Redis away is logged elsewhere too, but one that
        # answers and refuses writes (full, read-only) is not, while status soon calls this dead.
        try:
            await self.beat()
        except Exception as exc:
            if not self.failing:
                log.warning("%s: heartbeat failed (%s); `bootstrap status` and `health` will not see this "
                            "process until one passes", self.name, mask(str(exc)) or type(exc).__name__)  # fmt: skip
            self.failing = True
        else:
            if self.failing:
                log.info("%s: heartbeats pass again", self.name)
            self.failing = False
        await asyncio.sleep(self.every)

    async def remove(self) -> None:
        """Say goodbye so status stops listing this process."""
        with contextlib.suppress(Exception):
            await self.client.hdel(self.key, self.name)

    async def prune(self) -> None:
        """Remove the notes of processes silent for DEAD_AFTER (they died without a goodbye). For
        schedulers: a worker's note goes with its consumer (see Janitor)."""
        now, gone = time.time(), []
        for name, raw in (await self.client.hgetall(self.key)).items():
            try:
                seen = float(json.loads(raw).get("seen", 0))
            except (ValueError, TypeError, AttributeError):
                seen = 0.0
            if now - seen > DEAD_AFTER:
                gone.append(name)
        if gone:
            await self.client.hdel(self.key, *gone)


def worker_heartbeat(
    client: aioredis.Redis, keys: QueueKeys, consumer: str, in_flight: InFlight, visibility_timeout: float
) -> Heartbeat:
    """A worker's heartbeat: its queue, the jobs it runs, its wiring (read now, at start-up, right
    after the package was imported), its visibility timeout (see Reclaimer.longest_timeout), its
    release (admin.earlier_releases: a worker of a release before the field may not know pause)."""
    wiring = running_wiring(keys, workers=True)
    fields = {"queue": keys.queue, "wiring": wiring, "visibility_timeout": visibility_timeout, "release": RELEASE}
    return Heartbeat(client, workers_key(keys.prefix), consumer, fields, lambda: {"running": in_flight.running})


def running_wiring(keys: QueueKeys, *, workers: bool = False) -> str | None:
    """The wiring hash of the generated package this process runs (`codegen.render.wiring_hash` of
    the spec it was generated from; `workers`: of the files workers run): the package whose
    `brokers` module holds this queue's broker. None when there is none (a broker made by hand)."""
    from bootstrap.codegen.artifacts import package_wiring_hash

    for name, module in list(sys.modules.items()):
        brokers = getattr(module, "BROKERS", None) if name.endswith(".brokers") else None
        if isinstance(brokers, dict) and any(getattr(b, "keys", None) == keys for b in brokers.values()):
            file = getattr(module, "__file__", None)
            return package_wiring_hash(Path(file).parent, workers=workers) if file else None
    return None


# Move due jobs (retries, delayed jobs) into the stream of their priority level (the job's `priority`
# label; normal when it has none or an unknown one): ZRANGEBYSCORE + XADD + ZREM in one step, so a job
# is never in both places or in neither. KEYS: delayed set, the streams highest priority first (high,
# normal, low); ARGV: now, most jobs moved at once.
_PROMOTE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local levels = {high = KEYS[2], normal = KEYS[3], low = KEYS[4]}
for _, data in ipairs(due) do
  local stream = KEYS[3]
  local ok, job = pcall(cjson.decode, data)
  if ok and type(job) == 'table' and type(job.labels) == 'table' and type(job.labels.priority) == 'string' then
    stream = levels[job.labels.priority] or KEYS[3]
  end
  redis.call('XADD', stream, '*', 'data', data)
  redis.call('ZREM', KEYS[1], data)
end
return #due
"""


class Promoter:
    """Moves retries and delayed jobs whose time has come from the delayed set into the stream of
    their priority: at once while there are due ones, else every 50 ms."""

    def __init__(self, client: aioredis.Redis, keys: QueueKeys, batch: int) -> None:
        self.keys = keys
        self.batch = batch
        self._script = client.register_script(_PROMOTE)

    async def promote(self) -> int:
        """Due jobs moved now (at most one batch)."""
        keys = [self.keys.delayed, *self.keys.streams]
        return int(await self._script(keys=keys, args=[time.time(), self.batch]))

    async def step(self) -> None:
        try:
            moved = await self.promote()
        except Exception as exc:  # Redis away: say so once a second, not 20 times
            log.warning("queue %s: moving due jobs failed (%s)", self.keys.queue, exc)
            await asyncio.sleep(1)
            return
        if not moved:
            await asyncio.sleep(0.05)


# Delete consumers that own no pending entry in any priority level's stream and have been idle long
# enough in each, checked and deleted in one step: a consumer that took a job meanwhile is kept
# (deleting it would drop its pending entries, and with them the jobs). KEYS: the level streams (one
# queue's: one slot). ARGV: group, least idle time (ms), candidate names.
_DELETE_DEAD = """
local wanted = {}
for i = 3, #ARGV do wanted[ARGV[i]] = true end
local found = {}
for s = 1, #KEYS do
  local consumers = redis.pcall('XINFO', 'CONSUMERS', KEYS[s], ARGV[1])
  if type(consumers) == 'table' and not consumers.err then
    found[s] = consumers
    for _, consumer in ipairs(consumers) do
      local info = {}
      for j = 1, #consumer, 2 do info[consumer[j]] = consumer[j + 1] end
      if tonumber(info['pending']) > 0 or tonumber(info['idle']) < tonumber(ARGV[2]) then
        wanted[info['name']] = nil
      end
    end
  end
end
local deleted, done = {}, {}
for s, consumers in pairs(found) do
  for _, consumer in ipairs(consumers) do
    local name
    for j = 1, #consumer, 2 do if consumer[j] == 'name' then name = consumer[j + 1] end end
    if wanted[name] then
      redis.call('XGROUP', 'DELCONSUMER', KEYS[s], ARGV[1], name)
      if not done[name] then
        done[name] = true
        deleted[#deleted + 1] = name
      end
    end
  end
end
return deleted
"""


class Janitor:
    """Deletes the consumers (and heartbeats) of this queue's dead workers, every SWEEP_EVERY."""

    def __init__(self, client: aioredis.Redis, keys: QueueKeys, consumer: str) -> None:
        self.client = client
        self.keys = keys
        self.consumer = consumer
        self.workers = workers_key(keys.prefix)
        self._script = client.register_script(_DELETE_DEAD)

    async def sweep(self, now: float | None = None) -> list[str]:
        """The consumers deleted now (with their heartbeats)."""
        now = time.time() if now is None else now
        # Every level's stream: a consumer is dead only if it is idle and owns nothing in all of them.
        seen: dict[str, list[dict[str, Any]]] = {}
        for stream in self.keys.streams:
            with contextlib.suppress(ResponseError):  # a level's stream or group deleted meanwhile
                for c in await self.client.xinfo_consumers(stream, GROUP):
                    seen.setdefault(as_text(c["name"]), []).append(c)
        beats = {as_text(k): v for k, v in (await self.client.hgetall(self.workers)).items()}
        names = set(seen)
        candidates = [
            name
            for name, infos in seen.items()
            if name != self.consumer
            and all(int(c["pending"]) == 0 and int(c["idle"]) >= DEAD_AFTER * 1000 for c in infos)
            and not _alive(beats.get(name), now)
        ]
        streams = list(self.keys.streams)
        deleted = (
            [as_text(n) for n in await self._script(keys=streams, args=[GROUP, int(DEAD_AFTER * 1000), *candidates])]
            if candidates
            else []
        )
        # Heartbeats of this queue's workers that are gone: deleted above, or without a consumer at all.
        stale = [n for n in deleted if n in beats]
        stale += [
            n
            for n, raw in beats.items()
            if n not in names and n != self.consumer and _of_queue(raw, self.keys.queue) and not _alive(raw, now)
        ]
        if stale:
            await self.client.hdel(self.workers, *stale)
        if deleted:
            log.info("queue %s: removed %d consumer(s) of dead workers: %s", self.keys.queue, len(deleted),
                     ", ".join(deleted))  # fmt: skip
        return deleted

    async def step(self) -> None:
        try:
            await self.sweep()
        except Exception as exc:  # Redis away, or a stream deleted meanwhile: next time
            log.debug("queue %s: looking for dead consumers failed (%s)", self.keys.queue, exc)
        await asyncio.sleep(SWEEP_EVERY)


def _beat(raw: Any) -> dict[str, Any]:
    try:
        beat = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return beat if isinstance(beat, dict) else {}


def _alive(raw: Any, now: float) -> bool:
    """A heartbeat seen within DEAD_AFTER (an unreadable one counts as not alive)."""
    seen = _beat(raw).get("seen") if raw is not None else None
    return isinstance(seen, int | float) and now - seen < DEAD_AFTER


def _of_queue(raw: Any, queue: str) -> bool:
    return _beat(raw).get("queue") == queue


class Background:
    """Loops started together (a worker's startup) and stopped together (its shutdown). Each loop
    repeats one `step` until told to stop.

    Stopping does not rely on one cancellation: redis-py can swallow a cancellation that lands while a
    command runs (the loop then went on forever and held up the worker's exit), so every loop also
    checks a flag between steps, `stop` cancels until the loops end, and it waits a bounded time."""

    STOP_WAIT = 2.0  # seconds the loops get to end

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def start(self, *steps: Callable[[], Awaitable[None]]) -> None:
        self._stopping = False
        self._tasks += [asyncio.create_task(self._repeat(step)) for step in steps]

    async def _repeat(self, step: Callable[[], Awaitable[None]]) -> None:
        while not self._stopping:
            await step()

    async def stop(self) -> None:
        self._stopping = True
        tasks, self._tasks = self._tasks, []
        # Cancelled again and again until they end (a swallowed cancellation is followed by another),
        # for at most STOP_WAIT. asyncio.wait neither raises their errors nor loses our own cancellation.
        deadline = time.monotonic() + self.STOP_WAIT
        pending = set(tasks)
        while pending and (left := deadline - time.monotonic()) > 0:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=min(0.1, left))
        if pending:
            log.warning("%d background loop(s) did not stop within %gs; leaving them", len(pending), self.STOP_WAIT)
        for task in tasks:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: no "exception was never retrieved" at exit
