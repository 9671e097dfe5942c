"""When each schedule's job last ran, for `bootstrap status`.

The scheduler's last-slot record says which slot was *handled*, which includes slots it skipped
(missed while no scheduler ran, or already past when a schedule was first seen): no job ran for
those. A run is a finished job of the schedule, found in the queue's completed and failed records
(a scheduled job's id is `<schedule id>@<slot>`). Records are kept per the queue's retention, so an
old run may be gone: then there is no run on record, which status says as such.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from bootstrap.jobs.records import COMPLETED, FAILED
from bootstrap.layout.keys import QueueKeys, as_text

LOOK_AT = 1000  # newest records read per queue and outcome: bounds the cost on a busy queue


@dataclass(frozen=True)
class Run:
    job_id: str
    finished: float  # epoch seconds
    outcome: str  # COMPLETED or FAILED


def last_runs(client: redis.Redis, prefix: str, schedules: dict[str, str]) -> dict[str, Run]:
    """The newest finished run of each schedule (id -> queue) that has one on record."""
    queues = sorted(set(schedules.values()))
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        keys = QueueKeys(prefix, queue)
        for outcome in (COMPLETED, FAILED):
            pipe.zrevrange(keys.records(outcome), 0, LOOK_AT - 1, withscores=True)
    replies = pipe.execute(raise_on_error=False)
    found: dict[str, Run] = {}
    for i, queue in enumerate(queues):
        for j, outcome in enumerate((COMPLETED, FAILED)):
            reply = replies[i * 2 + j]
            if not isinstance(reply, list):
                continue
            for raw_id, score in reply:
                job_id = as_text(raw_id)
                schedule_id = job_id.partition("@")[0]
                if schedules.get(schedule_id) != queue or "@" not in job_id:
                    continue
                known = found.get(schedule_id)
                if known is None or float(score) > known.finished:
                    found[schedule_id] = Run(job_id, float(score), outcome)
    return found
