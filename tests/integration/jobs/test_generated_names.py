"""Queues and tasks named like the generated modules' own globals (the issue's `brokers` and
`register-task`, the old `make_broker`, a builtin the module reads): the generated package passes
ruff and mypy --strict, and a real worker started the way the launcher starts it runs their jobs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap.local.servers import RedisServer
from tests.conftest import REPO
from tests.support.jobs_project import Project, make_project, redis_client, wait_for

# First in queues.yaml, so the shipped queues' brokers and tasks are bound after them.
RISKY_QUEUES = """
  brokers:
    tasks:
      register-task: {}
      brokers: {}
  make-broker:
    tasks:
      runtime: {}
  dict:
    tasks:
      str: {}
"""


def add_risky_queues(project: Project) -> None:
    project.edit("queues.yaml", "\nqueues:\n", f"\nqueues:{RISKY_QUEUES}")


@pytest.fixture
def project(tmp_path: Path, mongo_uri: str, redis_server: RedisServer) -> Iterator[Project]:
    yield from make_project(tmp_path, mongo_uri, redis_server.uri, add_risky_queues)


def test_the_package_passes_ruff_and_mypy_strict(project: Project) -> None:
    package = project.root / "generated" / project.package
    settings = ["--config", str(REPO / "pyproject.toml"), "--no-cache"]
    command = [sys.executable, "-m", "ruff", "check", *settings, str(package)]
    ruff = subprocess.run(command, capture_output=True, text=True)
    assert ruff.returncode == 0, ruff.stdout
    mypy = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", project.package],
        cwd=package.parent,
        capture_output=True,
        text=True,
    )
    assert mypy.returncode == 0, mypy.stdout


@pytest.mark.parametrize(("queue", "task"), [("brokers", "register-task"), ("brokers", "brokers"), ("dict", "str")])
def test_a_worker_runs_jobs_of_tasks_with_those_names(project: Project, queue: str, task: str) -> None:
    worker = project.start_worker(queue)
    assert project.bootstrap("enqueue", queue, task, "--id", f"{task}-1") == 0
    client = redis_client(project)
    done = project.queue_keys(queue).record_data("completed")
    try:
        wait_for(lambda: client.hexists(done, f"{task}-1"), 60, f"the {task} job on {queue}")
    finally:
        client.close()
    assert worker.poll() is None, project.log("worker")
