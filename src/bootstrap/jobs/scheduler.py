"""A Taskiq scheduler that fires each schedule slot exactly once across any number of replicas.

Taskiq's own scheduler keeps last-run times in memory and has no lock: two replicas fire twice, and
a restart fires interval schedules at once. Here the Taskiq loop is only a one-second ticker; at each
tick the scheduler works out which slots are due from state in Redis (the last slot handled per
schedule) and claims each slot with a Lua script that, in one atomic step, checks that no replica
took it, records it, and enqueues the job. A job can therefore neither be fired twice nor be lost
between "claimed" and "enqueued". A schedule `bootstrap apply` deleted is not claimed any more, even by
a replica that has not reloaded the schedules yet (else it would fire it and recreate its state).

Missed slots: a slot is on time while no more than MISFIRE_GRACE seconds late. Slots later than that
were missed while no scheduler ran; the schedule's misfire policy decides: `skip` records them as
handled without firing (and logs it), `run_once` fires one job for the whole missed stretch.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
from datetime import UTC, datetime
from typing import Any

from taskiq import ScheduledTask, ScheduleSource, TaskiqMessage, TaskiqScheduler

from bootstrap import logs
from bootstrap.jobs.broker import StreamBroker
from bootstrap.jobs.middleware import RETRY
from bootstrap.jobs.slots import due_slots
from bootstrap.layout import schedules as stored
from bootstrap.layout.keys import ScheduleKeys, as_text

log = logging.getLogger("bootstrap.jobs.scheduler")

MISFIRE_GRACE = 5.0  # seconds a slot may be late and still count as on time

_CLAIM = """
local definition = redis.call('HGET', KEYS[3], ARGV[1])
if not definition or cjson.decode(definition)['enabled'] == false then return 0 end
local last = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
if tonumber(ARGV[2]) <= last then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] == '1' then
  redis.call('XADD', KEYS[2], '*', 'data', ARGV[4])
  return 1
end
return 2
"""


class RedisScheduleSource(ScheduleSource):
    """The schedules `bootstrap apply` stored in Redis. Each is handed to Taskiq's loop as a
    one-second interval (a tick); the real timing is the scheduler's."""

    def __init__(self, broker: StreamBroker) -> None:
        self.broker = broker
        self.keys = ScheduleKeys(broker.runtime.prefix)
        self.definitions: dict[str, dict[str, Any]] = {}

    async def get_schedules(self) -> list[ScheduledTask]:
        raw = await self.broker.redis.hgetall(self.keys.definitions)
        definitions = {}
        for key, value in raw.items():
            definition = stored.decode(value)
            if definition is not None and definition.get("enabled", True):
                definitions[as_text(key)] = definition
        changed = {k for k in definitions if self.definitions.get(k) != definitions[k]}
        for schedule_id in sorted(changed):
            log.info("schedule %s: %s", schedule_id, _describe(definitions[schedule_id]))
        self.definitions = definitions
        return [
            ScheduledTask(task_name=d["task"], labels={}, args=[], kwargs={}, schedule_id=sid, interval=1)
            for sid, d in sorted(definitions.items())
        ]


class SlotScheduler(TaskiqScheduler):
    def __init__(self, brokers: dict[str, StreamBroker]) -> None:
        first = next(iter(brokers.values()))
        self.source = RedisScheduleSource(first)
        super().__init__(broker=first, sources=[self.source])
        self.brokers = brokers
        self.keys = ScheduleKeys(first.runtime.prefix)
        self._claim: Any = None

    async def startup(self) -> None:
        logs.setup()
        # Taskiq logs "Sending task ..." at every one-second tick of every schedule; the real
        # fires are logged here instead.
        logging.getLogger("taskiq.cli.scheduler").setLevel(logging.WARNING)
        # Taskiq's scheduler only stops cleanly on Ctrl-C (the main task is cancelled); treat
        # SIGTERM the same way so orchestrators stop it gracefully and it exits 0.
        main_task = asyncio.current_task()
        if main_task is not None:
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
        for broker in self.brokers.values():
            broker.is_scheduler_process = True
            await broker.startup()
        self._claim = self.broker.redis.register_script(_CLAIM)  # type: ignore[attr-defined]
        log.info("scheduler started for queues %s", ", ".join(self.brokers))

    async def shutdown(self) -> None:
        for broker in self.brokers.values():
            await broker.shutdown()
        log.info("scheduler stopped")

    async def on_ready(self, source: ScheduleSource, task: ScheduledTask) -> None:
        definition = self.source.definitions.get(task.schedule_id)
        if definition is not None:
            await self.tick(task.schedule_id, definition, time.time())

    async def tick(self, schedule_id: str, definition: dict[str, Any], now: float) -> None:
        broker = self.brokers.get(definition["queue"])
        if broker is None:
            log.error(
                "schedule %s names queue %s, which this wiring does not have (regenerate it)",
                schedule_id,
                definition["queue"],
            )
            return
        raw_last = await broker.redis.hget(self.keys.last_slot, schedule_id)
        last = float(raw_last) if raw_last is not None else None
        slots = due_slots(definition, last, now)
        missed = [s for s in slots if now - s > MISFIRE_GRACE]
        for slot in slots:
            late = now - slot > MISFIRE_GRACE
            if last is None:
                fire = not late  # a schedule seen for the first time: only a slot that is due now
            elif late:
                fire = definition.get("misfire") == "run_once" and slot == missed[-1]
            else:
                fire = True
            data = self._message(broker, schedule_id, definition, slot) if fire else b""
            outcome = await self._claim(
                keys=[self.keys.last_slot, broker.keys.stream, self.keys.definitions],
                args=[schedule_id, repr(slot), "1" if fire else "0", data],
            )
            if outcome == 1:
                log.info("schedule %s fired for %s (%.2fs late)", schedule_id, _when(slot), now - slot)
            elif outcome == 2 and last is not None:
                log.warning(
                    "schedule %s: slot %s was missed while no scheduler ran; skipped (misfire: %s)",
                    schedule_id,
                    _when(slot),
                    definition.get("misfire", "skip"),
                )

    def _message(self, broker: StreamBroker, schedule_id: str, definition: dict[str, Any], slot: float) -> bytes:
        task = broker.find_task(definition["task"])
        labels: dict[str, Any] = dict(task.labels) if task is not None else {}
        labels.update(schedule_id=schedule_id, slot=slot, **{RETRY: json.dumps(definition["retry"])})
        message = TaskiqMessage(
            task_id=f"{schedule_id}@{_when(slot)}",
            task_name=definition["task"],
            labels=labels,
            args=[],
            kwargs=dict(definition.get("kwargs") or {}),
        )
        return broker.formatter.dumps(message).message


def _when(slot: float) -> str:
    return datetime.fromtimestamp(slot, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _describe(definition: dict[str, Any]) -> str:
    when = f"cron '{definition['cron']}'" if definition.get("cron") else f"every {definition['every']:g}s"
    return f"{definition['queue']}/{definition['task']} {when}, misfire {definition.get('misfire', 'skip')}"
