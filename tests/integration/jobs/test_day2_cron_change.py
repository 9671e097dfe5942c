"""Day 2: an operator edits a schedule's cron (say the daily pattern analysis moves from 02:00 to
03:00, at 10:00) while the scheduler runs.

The scheduler picks the change up without a restart (README), but it measures the new expression
from the last slot the *old* expression handled: every slot of the new cron between that slot and
now counts as "missed while no scheduler ran", and with `misfire: run_once` (the shipped default)
one job fires at once. A scheduler was running the whole time and no slot of either expression was
missed: the edit alone runs the job (here: a yearly schedule made hourly fires within seconds), and
the log and the `bootstrap_schedule_misses_total` metric report misses that never happened."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import Project, fires, open_project, redis_client, wait_for
from tests.support.redis_keys import stored_last_slots

SCHEDULE = "webhook-renewal-schedule"  # queue webhook-renewal, shipped cron "0 */2 * * *"


def _yearly(project: Project) -> None:
    project.edit("schedules.yaml", 'cron: "0 */2 * * *"', 'cron: "0 0 1 1 *"')


def _last_slot(project: Project) -> str | None:
    client = redis_client(project)
    try:
        found: dict[str, str] = stored_last_slots(client, project.key_prefix)
        return found.get(SCHEDULE)
    finally:
        client.close()


def test_changing_a_cron_while_the_scheduler_runs_fires_nothing_at_once(
    tmp_path: Path, mongo_uri: str, redis_server: RedisServer
) -> None:
    with open_project(tmp_path, mongo_uri, redis_server.uri, _yearly) as project:
        scheduler = project.start_scheduler(update_interval=1)
        try:
            wait_for(lambda: _last_slot(project), 60, "the scheduler to handle the yearly schedule's latest slot")
            assert fires(project, "webhook-renewal") == []  # its latest slot (1 January) was long past: not fired
            project.edit("schedules.yaml", 'cron: "0 0 1 1 *"', 'cron: "0 * * * *"')
            assert project.bootstrap("apply") == 0
            wait_for(lambda: "cron '0 * * * *'" in project.log("scheduler"), 20, "the scheduler to reload")
            time.sleep(3)  # a few ticks with the new expression
            log = project.log("scheduler")
        finally:
            os.killpg(scheduler.pid, signal.SIGTERM)
            scheduler.wait(15)
        assert fires(project, "webhook-renewal") == [], "the edit alone fired a job"
        assert "were not fired in time" not in log, log[-2000:]
