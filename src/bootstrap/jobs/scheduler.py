"""A Taskiq scheduler that fires each schedule slot exactly once across any number of replicas.

Taskiq's own scheduler keeps last-run times in memory and has no lock: two replicas fire twice, and
a restart fires interval schedules at once. Here the Taskiq loop is only a one-second ticker; at each
tick the scheduler works out which slots are due from state in Redis (the last slot handled per
schedule) and claims each slot with a Lua script that, in one atomic step, checks that no replica
took it, records it, and enqueues the job. A job can therefore neither be fired twice nor be lost
between "claimed" and "enqueued". A schedule `bootstrap apply` deleted is not claimed any more, even by
a replica that has not reloaded the schedules yet (else it would fire it and recreate its state).
A schedule's state lives with the queue it fires into (layout.keys), so the claim is single-slot on
Redis Cluster.

First fires: an `every` schedule without `align: true` fires as soon as a scheduler first sees it,
then every interval after (see `slots`); an aligned one, or a cron, waits for its next slot.

A fired job goes to the priority level the schedule declares (`priority:`), else to its task's
(the task's `priority` label), else to normal; its `priority` label says so, so a retry keeps it.

Missed slots: a slot is on time while no more than MISFIRE_GRACE seconds late. Slots later than that
were missed while no scheduler ran; the schedule's misfire policy decides: `skip` records them as
handled without firing (and logs it), `run_once` fires one job for the whole missed stretch.

Redis that lost its data (no marker written by apply, no stored schedules: restarted without
persistence, flushed): the scheduler says so loudly and fires the schedules declared when its wiring
was generated (the contract carries them) until apply stores them again. A stored definition that
cannot fire (a cron naming no date that exists, an unreadable one) is logged once and skipped. A tick
never raises: Taskiq runs each in a task nobody awaits, whose exception would only surface as "Task
exception was never retrieved"; a failing tick (Redis away) is logged once, and retried next second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import redis.exceptions
from taskiq import ScheduledTask, ScheduleSource, TaskiqMessage, TaskiqScheduler

from bootstrap import logs
from bootstrap.errors import BootstrapError
from bootstrap.jobs.broker import SHUTDOWN_STEP, StreamBroker, bounded
from bootstrap.jobs.labels import PRIORITY
from bootstrap.jobs.metrics_port import base_port
from bootstrap.jobs.middleware import RETRY
from bootstrap.jobs.slots import due_slots, problem, unaligned
from bootstrap.jobs.upkeep import Heartbeat, running_wiring
from bootstrap.layout import schedules as stored
from bootstrap.layout.keys import NORMAL, as_text, marker_key, schedulers_key
from bootstrap.layout.marker import LOST_DATA
from bootstrap.redact import mask
from bootstrap.spec.model import Schedule

if TYPE_CHECKING:
    from bootstrap.jobs.metrics import MetricsServer, ScheduleMetrics

log = logging.getLogger("bootstrap.jobs.scheduler")

MISFIRE_GRACE = 5.0  # seconds a slot may be late and still count as on time

# KEYS (all of the queue the schedule fires into: one slot): last slots, the stream of the job's
# priority level, stored definitions. ARGV: schedule id, slot, fire ('1') or skip, the message, '1'
# when the definition is a declared one (Redis lost its data): fired only while the queue holds no
# stored definition (the data marker, a key of its own slot, is checked by the source at every
# reload, each second); and '1' for a schedule's first slot, claimed only while no slot was ever
# handled (replicas see a schedule first at different instants: an unaligned one's first slot is each
# one's own "now").
_CLAIM = """
local definition = redis.call('HGET', KEYS[3], ARGV[1])
if definition then
  local ok, decoded = pcall(cjson.decode, definition)
  if not ok or type(decoded) ~= 'table' or decoded['enabled'] == false then return 0 end
elseif ARGV[5] ~= '1' or redis.call('HLEN', KEYS[3]) > 0 then
  return 0
end
local handled = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[6] == '1' and handled then return 0 end
local last = tonumber(handled or '-1')
if tonumber(ARGV[2]) <= last then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] == '1' then
  redis.call('XADD', KEYS[2], '*', 'data', ARGV[4])
  return 1
end
return 2
"""


class Once:
    """Log a condition once, and again only after it cleared: a schedule that cannot fire or a tick
    that fails every second must not write a line every second."""

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}

    def log(
        self, key: str, level: int, message: str, *args: object, exc_info: bool = False, changed: bool = False
    ) -> None:
        """Log unless `key` was logged and not cleared since; with `changed`, also when the text
        differs from the one logged (a definition that went wrong in another way)."""
        text = message % args
        seen = self._seen.get(key)
        if seen is None or (changed and seen != text):
            self._seen[key] = text
            log.log(level, "%s", text, exc_info=exc_info)

    def clear(self, key: str) -> bool:
        """Forget `key`; True if it was logged (so the caller can say it is over)."""
        return self._seen.pop(key, None) is not None


class RedisScheduleSource(ScheduleSource):
    """The schedules `bootstrap apply` stored in Redis (or, while Redis has lost its data, the
    declared ones). Each is handed to Taskiq's loop as a one-second interval (a tick); the real
    timing is the scheduler's."""

    def __init__(self, brokers: Mapping[str, StreamBroker], declared: Iterable[Schedule] = ()) -> None:
        self.brokers = dict(brokers)
        self.broker = next(iter(self.brokers.values()))
        self.marker = marker_key(self.broker.runtime.prefix)
        self.declared = {s.id: stored.definition(s) for s in declared}
        self.definitions: dict[str, dict[str, Any]] = {}
        self.fallback: frozenset[str] = frozenset()  # the declared schedules fired (Redis lost the stored ones)
        self.once = Once()

    async def get_schedules(self) -> list[ScheduledTask]:
        try:
            pipe = self.broker.redis.pipeline(transaction=False)
            for broker in self.brokers.values():
                pipe.hgetall(broker.keys.schedules)
                pipe.exists(broker.keys.marker)
            pipe.exists(self.marker)
            *replies, marker = await pipe.execute()
            held, marked = replies[::2], replies[1::2]
            raw = {k: v for found in held for k, v in found.items()}
        except (redis.exceptions.RedisError, OSError) as exc:
            # Keep firing what is known: the claim script still checks Redis at every slot.
            self.once.log("read", logging.WARNING, "cannot read the schedules from Redis (%s)", mask(str(exc)))
            return self._tasks()
        if self.once.clear("read"):
            log.info("schedules read from Redis again")
        lost = not raw and not marker
        # On a Redis Cluster one node may lose its data alone: its queues' markers and stored
        # schedules are gone while the marker, on another node, is not.
        gone = set() if lost or not marker else {
            queue for queue, found, there in zip(self.brokers, held, marked, strict=True) if not found and not there
        }  # fmt: skip
        alone = {sid: d for sid, d in self.declared.items() if d.get("queue") in gone}
        if alone:
            self.once.log(
                "queue lost",
                logging.ERROR,
                "the Redis node holding queue(s) %s lost its data (their data markers and stored schedules are "
                "gone; run `bootstrap apply`). Meanwhile this scheduler fires their schedule(s) declared when "
                "its wiring was generated: %s",
                ", ".join(sorted({str(d["queue"]) for d in alone.values()})),
                ", ".join(alone),
                changed=True,
            )
        elif self.once.clear("queue lost"):
            log.info("the queues' stored schedules are back; firing those")
        if lost and self.declared:
            self.once.log(
                "lost",
                logging.ERROR,
                "%s. Meanwhile this scheduler fires the %d schedule(s) declared when its wiring was generated: %s",
                LOST_DATA,
                len(self.declared),
                ", ".join(self.declared),
            )
        elif lost:
            self.once.log("lost", logging.ERROR, "%s. No schedule fires until then", LOST_DATA)
        elif self.once.clear("lost"):
            log.info("the schedules stored by `bootstrap apply` are back; firing those")
        found = dict(self.declared) if lost else {**{as_text(k): stored.decode(v) for k, v in raw.items()}, **alone}
        self.fallback = frozenset(self.declared if lost else alone)
        definitions = {}
        for schedule_id, definition in sorted(found.items()):
            trouble = problem(definition)
            if trouble is not None:
                self.once.log(f"problem:{schedule_id}", logging.ERROR, "schedule %s %s: skipped", schedule_id,
                              trouble, changed=True)  # fmt: skip
                continue
            self.once.clear(f"problem:{schedule_id}")
            assert definition is not None  # problem() said it is a readable definition
            if definition.get("enabled", True):
                definitions[schedule_id] = definition
        changed = {k for k in definitions if self.definitions.get(k) != definitions[k]}
        for schedule_id in sorted(changed):
            log.info("schedule %s: %s", schedule_id, _describe(definitions[schedule_id]))
        self.definitions = definitions
        return self._tasks()

    def _tasks(self) -> list[ScheduledTask]:
        return [
            ScheduledTask(task_name=d["task"], labels={}, args=[], kwargs={}, schedule_id=sid, interval=1)
            for sid, d in sorted(self.definitions.items())
        ]


class SlotScheduler(TaskiqScheduler):
    """`declared`: the schedules of the spec the wiring was generated from (the contract's), fired
    only while Redis has lost its data."""

    def __init__(self, brokers: dict[str, StreamBroker], declared: Iterable[Schedule] = ()) -> None:
        first = next(iter(brokers.values()))
        self.source = RedisScheduleSource(brokers, declared)
        super().__init__(broker=first, sources=[self.source])
        self.brokers = brokers
        self._claim: Any = None
        self.metrics_port = first.runtime.metrics_port  # as declared; the environment may override it
        self.metrics_server: MetricsServer | None = None
        self.metrics: ScheduleMetrics | None = None  # None: metrics off
        self.heartbeat: Heartbeat | None = None  # for `status` and `health`: a scheduler is alive
        self._beating: asyncio.Task[None] | None = None
        self._refusing = False  # the logged Redis failure was a refusal (it answers), not an outage

    async def startup(self) -> None:
        logs.setup()
        # Taskiq logs "Sending task ..." at every one-second tick of every schedule; the real
        # fires are logged here instead.
        logging.getLogger("taskiq.cli.scheduler").setLevel(logging.WARNING)
        # Taskiq's scheduler only stops cleanly on Ctrl-C (the main task is cancelled); treat
        # SIGTERM the same way so orchestrators stop it gracefully and it exits 0.
        main_task = asyncio.current_task()
        terminated = False

        def terminate() -> None:
            nonlocal terminated
            terminated = True
            if main_task is not None:
                main_task.cancel()

        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, terminate)
        try:
            for broker in self.brokers.values():
                broker.is_scheduler_process = True
                await broker.startup()
            await self._start_heartbeat()
        except asyncio.CancelledError:  # SIGTERM in the connect retries (Redis away) or after: a clean stop
            if not terminated:
                raise
            log.info("scheduler stopped while starting")
            raise SystemExit(0) from None
        except BootstrapError as exc:  # one line, not a traceback (refused credentials, Redis away for good)
            log.error("scheduler: could not start: %s", exc)
            raise SystemExit(1) from None
        self._claim = self.broker.redis.register_script(_CLAIM)  # type: ignore[attr-defined]
        log.info("scheduler started for queues %s", ", ".join(self.brokers))
        port = base_port(self.metrics_port)
        if port:  # prometheus_client is loaded only then
            from bootstrap.jobs.metrics import MetricsServer, ScheduleMetrics

            self.metrics_server = MetricsServer()
            self.metrics = ScheduleMetrics(self.metrics_server.registry)
            self.metrics_server.start(port, "scheduler")

    async def _start_heartbeat(self) -> None:
        """Beat every few seconds until shutdown, so `health` and `status` see a scheduler runs (and on
        which wiring); the notes of schedulers that died without a goodbye are removed first."""
        first = next(iter(self.brokers.values()))
        fields = {"queues": list(self.brokers), "wiring": running_wiring(first.keys)}
        beat = self.heartbeat = Heartbeat(
            first.redis, schedulers_key(first.keys.prefix), f"{socket.gethostname()}:{os.getpid()}", fields
        )
        with contextlib.suppress(Exception):  # Redis away: the beats say so once it answers
            await beat.prune()

        async def beating() -> None:
            while True:
                await beat.step()

        self._beating = asyncio.create_task(beating())

    async def shutdown(self) -> None:
        if self._beating is not None and self.heartbeat is not None:  # say goodbye: status stops listing it
            self._beating.cancel()
            await bounded(self.heartbeat.remove(), SHUTDOWN_STEP, "removing the heartbeat")
        for broker in self.brokers.values():
            await broker.shutdown()
        if self.metrics_server is not None:
            self.metrics_server.stop()
        log.info("scheduler stopped")

    async def on_ready(self, source: ScheduleSource, task: ScheduledTask) -> None:
        """One tick of one schedule. Never raises (see the module's docstring)."""
        schedule_id = task.schedule_id
        definition = self.source.definitions.get(schedule_id)
        if definition is None:
            return
        once = self.source.once
        try:
            declared = schedule_id in self.source.fallback
            wrote = await self.tick(schedule_id, definition, time.time(), declared=declared)
        except (redis.exceptions.RedisError, OSError) as exc:  # one line per outage, for all schedules
            self._refusing = isinstance(exc, redis.exceptions.ResponseError)  # answers, refuses (full, read-only)
            once.log("redis", logging.WARNING, "Redis failed (%s); schedules fire again once it answers",
                     mask(str(exc)))  # fmt: skip
            return
        except Exception as exc:  # a bug: say it once, with the traceback, and keep ticking
            once.log(f"tick:{schedule_id}", logging.ERROR, "schedule %s: tick failed (%r); will retry",
                     schedule_id, exc, exc_info=True)  # fmt: skip
            return
        # A Redis that refused writes (full, read-only) is back only once a tick wrote: one that only
        # read (no slot due) passes there too, and the log would flap every second.
        if (wrote or not self._refusing) and once.clear("redis"):
            log.info("Redis answers again; schedules fire")
        once.clear(f"tick:{schedule_id}")

    async def tick(self, schedule_id: str, definition: dict[str, Any], now: float, *, declared: bool = False) -> bool:
        """Claim (and fire) the due slots of one schedule; `declared`: the definition is a declared
        one, Redis having lost the stored ones. True when it wrote (claimed a slot)."""
        broker = self.brokers.get(definition["queue"])
        if broker is None:
            self.source.once.log(
                f"queue:{schedule_id}",
                logging.ERROR,
                "schedule %s names queue %s, which this wiring does not have (regenerate it)",
                schedule_id,
                definition["queue"],
                changed=True,
            )
            return False
        if self.metrics is not None:
            self.metrics.seen(schedule_id)
        keys = broker.keys
        raw_last = await broker.redis.hget(keys.last_slot, schedule_id)
        last = float(raw_last) if raw_last is not None else None
        slots = due_slots(definition, last, now)
        missed = [s for s in slots if now - s > MISFIRE_GRACE]
        skipped: list[float] = []
        for slot in slots:
            late = now - slot > MISFIRE_GRACE
            if last is None:
                fire = not late  # a schedule seen for the first time: only a slot that is due now
            elif late:
                fire = definition.get("misfire") == "run_once" and slot == missed[-1]
            else:
                fire = True
            data, level = self._message(broker, schedule_id, definition, slot) if fire else (b"", NORMAL)
            outcome = await self._claim(
                keys=[keys.last_slot, keys.stream_at(level), keys.schedules],
                args=[
                    schedule_id,
                    repr(slot),
                    "1" if fire else "0",
                    data,
                    "1" if declared else "0",
                    "1" if last is None else "0",  # the first slot: only if none was ever handled
                ],
            )
            if self.metrics is not None:
                if outcome in (1, 2) and late and last is not None:
                    self.metrics.missed(schedule_id)
                if outcome == 1:
                    self.metrics.fired(schedule_id, now - slot)
            if outcome == 1:
                log.info("schedule %s fired for %s (%.2fs late)", schedule_id, _when(slot), now - slot)
            elif outcome == 2 and last is not None:
                skipped.append(slot)
        if skipped:  # one line for the stretch: a frequent schedule after an outage has many
            span = _when(skipped[0]) if len(skipped) == 1 else f"{_when(skipped[0])} to {_when(skipped[-1])}"
            log.warning(
                "schedule %s: %d slot(s) (%s) were not fired in time (no scheduler ran, or Redis refused the "
                "fires); skipped (misfire: %s)",
                schedule_id,
                len(skipped),
                span,
                definition.get("misfire", "skip"),
            )
        return bool(slots)

    def _message(
        self, broker: StreamBroker, schedule_id: str, definition: dict[str, Any], slot: float
    ) -> tuple[bytes, str]:
        """The fired job and the priority level it goes to: the schedule's, else its task's."""
        task = broker.find_task(definition["task"])
        labels: dict[str, Any] = dict(task.labels) if task is not None else {}
        labels.update(schedule_id=schedule_id, slot=slot, **{RETRY: json.dumps(definition["retry"])})
        level = definition.get("priority") or labels.get(PRIORITY) or NORMAL
        labels.pop(PRIORITY, None)
        if level != NORMAL:  # as a task's label: a retry of the job goes back to this level
            labels[PRIORITY] = level
        message = TaskiqMessage(
            task_id=f"{schedule_id}@{_when(slot)}",
            task_name=definition["task"],
            labels=labels,
            args=[],
            kwargs=dict(definition.get("kwargs") or {}),
        )
        return broker.formatter.dumps(message).message, level


def _when(slot: float) -> str:
    return datetime.fromtimestamp(slot, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _describe(definition: dict[str, Any]) -> str:
    when = f"cron '{definition['cron']}'" if definition.get("cron") else f"every {definition['every']:g}s"
    if definition.get("every") and not unaligned(definition):
        when += " (aligned)"
    level = f", priority {definition['priority']}" if definition.get("priority") else ""
    return f"{definition['queue']}/{definition['task']} {when}, misfire {definition.get('misfire', 'skip')}{level}"
