"""`bootstrap status` on schedules, with a real scheduler and worker: a run is a job that ran, not a
slot the scheduler handled without firing; intervals read as the spec writes them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import Project, make_project, redis_client, wait_for


def every_two_seconds(project: Project) -> None:
    project.edit("schedules.yaml", "every: 15m", "every: 2s")


@pytest.fixture
def project(tmp_path: Path, mongo_uri: str, redis_server: RedisServer) -> Iterator[Project]:
    yield from make_project(tmp_path, mongo_uri, redis_server.uri, every_two_seconds)


def status(project: Project, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "bootstrap", "status", "--config", str(project.config), *args],
        env={**os.environ, **project.env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_last_run_is_a_job_that_ran_and_a_skipped_slot_is_none(project: Project) -> None:
    project.start_worker("delta-sync")
    project.start_scheduler()
    client = redis_client(project)
    completed = project.queue_keys("delta-sync").records("completed")
    last_slots = project.queue_keys("pattern-analysis").last_slot
    ran = wait_for(
        lambda: [i for i in client.zrange(completed, 0, -1) if i.startswith("delta-sync-schedule@")], 60, "a fired job"
    )
    # The daily cron's latest slot is long past when the scheduler first sees it: handled, not fired.
    wait_for(lambda: client.hexists(last_slots, "pattern-analysis-schedule"), 30, "the cron's slot handled")
    client.close()

    data = {s["id"]: s for s in json.loads(status(project, "--json"))["schedules"]}
    assert data["delta-sync-schedule"]["when"] == "every 2s"
    assert data["delta-sync-schedule"]["last_run"] is not None and data["delta-sync-schedule"]["last_outcome"]
    cron = data["pattern-analysis-schedule"]
    assert cron["last_slot"] is not None and cron["last_run"] is None, (cron, ran)

    text = status(project)
    assert re.search(r"delta-sync-schedule\s{2,}every 2s\s{2,}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(\d+s ago\)", text), text
    assert re.search(r"pattern-analysis-schedule\s{2,}cron 0 2 \* \* \*\s{2,}none on record\s{2,}", text), text
    assert re.search(r"staging-processor-schedule\s{2,}every 30m\s{2,}", text), text


def test_status_says_the_priority_a_schedule_fires_at(project: Project) -> None:
    """Declared on the schedule, or else its task's: what the scheduler uses; normal says nothing."""
    project.edit("schedules.yaml", "    every: 45m", "    every: 45m\n    priority: high")
    project.edit("queues.yaml", "run-delta-sync: {timeout: 10m}", "run-delta-sync: {timeout: 10m, priority: low}")
    project.apply_and_generate()
    data = {s["id"]: s for s in json.loads(status(project, "--json"))["schedules"]}
    assert data["token-refresh-schedule"]["priority"] == "high"  # its own
    assert data["delta-sync-schedule"]["priority"] == "low"  # its task's
    assert data["staging-processor-schedule"]["priority"] == "normal"
    text = status(project)
    assert re.search(r"token-refresh-schedule\s+every 45m, high priority", text), text
    assert re.search(r"delta-sync-schedule\s+every 2s, low priority", text), text
    assert not re.search(r"staging-processor-schedule\s+every 30m, ", text), text
