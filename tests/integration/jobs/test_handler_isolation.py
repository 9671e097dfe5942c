"""A handler that does not import stops only its own queue's worker, with one clear line; workers
report the wiring they run, and `status` flags workers on other wiring than the spec's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bootstrap.codegen.render import wiring_hash
from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import Project, make_project, redis_client, wait_for

BROKEN_QUEUE = """
  broken:
    tasks:
      mistyped: {handler: "broken_handlers:run"}
"""

BROKEN_HANDLERS = """
async def run(**kwargs):
    return None

retrun = undefined_name  # the typo: NameError at import
"""


def add_broken_queue(project: Project) -> None:
    path = project.config / "queues.yaml"
    path.write_text(path.read_text().rstrip("\n") + "\n" + BROKEN_QUEUE)
    (project.root / "broken_handlers.py").write_text(BROKEN_HANDLERS)


@pytest.fixture
def project(tmp_path: Path, mongo_uri: str, redis_server: RedisServer) -> Iterator[Project]:
    yield from make_project(tmp_path, mongo_uri, redis_server.uri, add_broken_queue)


def completed(project: Project, queue: str) -> dict[str, Any]:
    client = redis_client(project)
    try:
        return {k: json.loads(v) for k, v in client.hgetall(project.queue_keys(queue).record_data("completed")).items()}
    finally:
        client.close()


def test_a_handler_that_does_not_import_stops_only_its_own_queue(project: Project) -> None:
    good = project.start_worker("delta-sync", name="good")
    broken = project.start_worker("broken", name="broken")
    assert project.bootstrap("enqueue", "delta-sync", "run-delta-sync", "--id", "fine-1") == 0
    assert project.bootstrap("enqueue", "broken", "mistyped", "--id", "waits-1") == 0
    wait_for(lambda: "fine-1" in completed(project, "delta-sync"), 60, "the other queue's job")
    wait_for(lambda: "cannot be used: NameError" in project.log("broken"), 60, "the broken worker's line")
    log = project.log("broken")
    assert (
        "queue broken: the handler of task mistyped (broken_handlers:run) cannot be used: NameError: "
        "name 'undefined_name' is not defined. This queue's worker cannot start" in log
    )
    assert "Traceback" not in log
    assert broken.wait(30) == 3  # that worker ends, with its own exit code (the launcher or `up` restarts it) ...
    assert good.poll() is None  # ... and the other queue's runs on
    assert completed(project, "broken") == {}  # its job waits in Redis for a fixed handler


def test_workers_report_their_wiring_and_status_flags_old_wiring(project: Project) -> None:
    project.start_worker("delta-sync")
    client = redis_client(project)
    key = f"{project.key_prefix}:workers"
    beats = wait_for(lambda: [json.loads(v) for v in client.hgetall(key).values()], 60, "a heartbeat")
    assert beats[0]["wiring"] == wiring_hash(project.spec(), workers=True)  # the files workers run
    assert not any("other wiring" in line for line in _problems(project))

    # A new task changes the wiring; the running worker still runs the old one.
    task = "run-delta-sync: {timeout: 10m}"
    project.edit("queues.yaml", task, f"{task}\n      extra-task: {{}}")
    assert project.bootstrap("generate") == 0
    found = _problems(project)
    data = json.loads(
        subprocess.run(
            [sys.executable, "-m", "bootstrap", "status", "--config", str(project.config), "--json"],
            env={**os.environ, **project.env}, capture_output=True, text=True, timeout=120,
        ).stdout
    )  # fmt: skip
    expected = wiring_hash(project.spec(), workers=True)
    assert data["worker_wiring"] == expected and any("other wiring" in p for p in data["problems"])
    assert any(f"run other wiring ({beats[0]['wiring']}) than the spec's ({expected})" in line
               for line in found), found  # fmt: skip
    client.close()


def _problems(project: Project) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-m", "bootstrap", "status", "--config", str(project.config)],
        env={**os.environ, **project.env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line.startswith("  ! ")]
