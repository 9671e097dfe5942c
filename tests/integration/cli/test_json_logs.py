"""With BOOTSTRAP_LOG_FORMAT=json every line a scheduler writes is a JSON object, from the first one,
even when it is started as the README shows it (`taskiq scheduler ...` without
--no-configure-logging, so taskiq sets up its own log format before importing the wiring)."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap.jobs.launcher import scheduler_command
from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import Project, make_project, wait_for


@pytest.fixture
def project(tmp_path: Path, mongo_uri: str, redis_server: RedisServer) -> Iterator[Project]:
    yield from make_project(tmp_path, mongo_uri, redis_server.uri)


def test_scheduler_started_by_plain_taskiq_logs_only_json(project: Project) -> None:
    project.env["BOOTSTRAP_LOG_FORMAT"] = "json"
    command = [part for part in scheduler_command(project.package) if part != "--no-configure-logging"]
    scheduler = project._spawn(command, project.root / "scheduler.log")
    wait_for(lambda: "scheduler started" in project.log("scheduler"), 60, "the scheduler to start")
    os.killpg(scheduler.pid, signal.SIGTERM)
    assert scheduler.wait(30) == 0
    lines = [line for line in project.log("scheduler").splitlines() if line.strip()]
    not_json = []
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            not_json.append(line)
    assert not_json == [], not_json
    messages = [json.loads(line)["message"] for line in lines]
    assert any("Starting scheduler" in message for message in messages)  # taskiq's own line, as JSON
