"""A throwaway project for job tests: the shipped config with its own Redis keys and database,
optionally edited (small timeouts, test handlers), applied and generated; plus helpers to run
workers and schedulers as real processes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
import redis
from redis.cluster import RedisCluster

from bootstrap.cli.main import main
from bootstrap.jobs.contract import Runtime
from bootstrap.jobs.launcher import child_env, scheduler_command, worker_command
from bootstrap.layout.keys import NORMAL, QueueKeys, ScheduleKeys
from bootstrap.spec.load import load_spec
from bootstrap.spec.model import Spec
from tests.conftest import copy_config

HANDLERS = Path(__file__).parent / "handlers_for_tests.py"


@dataclass
class Project:
    root: Path
    env: dict[str, str]
    key_prefix: str
    processes: list[subprocess.Popen[str]] = field(default_factory=list)
    redis_mode: str = "standalone"

    @property
    def config(self) -> Path:
        return self.root / "config"

    def edit(self, file: str, old: str, new: str) -> None:
        path = self.config / file
        text = path.read_text()
        assert old in text, f"{old!r} not in {file}"
        path.write_text(text.replace(old, new, 1))

    def spec(self) -> Spec:
        return load_spec(self.config, env=self.env)

    def bootstrap(self, *args: str) -> int:
        """Run a bootstrap command in this process with the project's environment."""
        saved = dict(os.environ)
        os.environ.update(self.env)
        try:
            return main([args[0], "--config", str(self.config), *args[1:]])
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def apply_and_generate(self) -> None:
        assert self.bootstrap("apply") == 0
        assert self.bootstrap("generate") == 0

    @property
    def package(self) -> str:
        return self.spec().codegen.package

    def queue_keys(self, queue: str) -> QueueKeys:
        return QueueKeys(self.key_prefix, queue)

    def schedule_keys(self) -> ScheduleKeys:
        return ScheduleKeys(self.key_prefix)

    def _spawn(self, command: list[str], log: Path) -> subprocess.Popen[str]:
        env = child_env(self.root / "generated" / self.package)
        env.update(self.env)
        env["PYTHONPATH"] = os.pathsep.join([str(self.root), env["PYTHONPATH"]])  # test handlers
        handle = log.open("a")
        process = subprocess.Popen(
            command, env=env, stdout=handle, stderr=subprocess.STDOUT, text=True, cwd=self.root, start_new_session=True
        )
        handle.close()
        self.processes.append(process)
        return process

    def start_worker(self, queue: str, name: str = "worker") -> subprocess.Popen[str]:
        command = worker_command(Runtime.from_spec(self.spec()), self.package, queue)
        return self._spawn(command, self.root / f"{name}.log")

    def start_launcher(self, *queues: str, name: str = "worker") -> subprocess.Popen[str]:
        """The generated launcher (`python -m <package>.worker QUEUE...`): it restarts a worker that dies."""
        return self._spawn([sys.executable, "-m", f"{self.package}.worker", *queues], self.root / f"{name}.log")

    def start_scheduler(self, name: str = "scheduler", update_interval: float = 1.0) -> subprocess.Popen[str]:
        return self._spawn(scheduler_command(self.package, update_interval), self.root / f"{name}.log")

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text() if path.exists() else ""

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


def make_project(
    tmp_path: Path,
    mongo_uri: str,
    redis_url: str,
    edit: Callable[[Project], None] | None = None,
    redis_mode: str = "standalone",
) -> Iterator[Project]:
    key_prefix = f"j-{uuid.uuid4().hex[:10]}"
    root = tmp_path / "project"
    copy_config(root / "config", key_prefix)
    (root / "handlers_for_tests.py").write_text(HANDLERS.read_text())
    # No metrics unless a test asks for them (BOOTSTRAP_METRICS_PORT): tests run side by side.
    env = {"MONGODB_URI": mongo_uri, "REDIS_URL": redis_url, "BOOTSTRAP_LOG_LEVEL": "INFO", "REDIS_MODE": redis_mode}
    env["BOOTSTRAP_METRICS_PORT"] = "0"
    project = Project(root, env, key_prefix, redis_mode=redis_mode)
    if redis_mode != "standalone":
        project.edit("bootstrap.yaml", "\nredis:\n", f"\nredis:\n  mode: {redis_mode}\n")
    if edit is not None:
        edit(project)
    project.apply_and_generate()
    try:
        yield project
    finally:
        project.stop_all()


open_project = contextlib.contextmanager(make_project)  # `with open_project(...) as project:`


def make_project_in_env(
    tmp_path: Path, mongo_uri: str, redis_url: str, edit: Callable[[Project], None], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    """make_project, with its environment set in this process too (for workers run in process: the
    spec reads its URLs from the environment)."""
    for project in make_project(tmp_path, mongo_uri, redis_url, edit):
        for name, value in project.env.items():
            monkeypatch.setenv(name, value)
        yield project


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def redis_client(project: Project) -> redis.Redis:
    """A client of the project's Redis (a cluster client, typed alike, in cluster mode)."""
    if project.redis_mode == "cluster":
        return cast(redis.Redis, RedisCluster.from_url(project.env["REDIS_URL"], decode_responses=True))
    return redis.Redis.from_url(project.env["REDIS_URL"], decode_responses=True)


def python() -> str:
    return sys.executable


TEST_QUEUE = """
  test-jobs:
    visibility_timeout: 2s
    concurrency: 4
    shutdown_timeout: 10s
    retention:
      completed: {max_age: 1h, max_count: 5}
      failed: {max_age: 1h, max_count: 3}
    tasks:
      fail-always:
        handler: "handlers_for_tests:always_fail"
        retry: {attempts: 4, backoff: exponential, delay: 300ms, max_delay: 10s}
      slow-job: {handler: "handlers_for_tests:slow"}
      mongo-job: {handler: "handlers_for_tests:write_to_mongo"}
      kill-worker: {handler: "handlers_for_tests:kill_own_worker"}
      block-loop: {handler: "handlers_for_tests:block_loop", timeout: 3s}
      sync-sleep: {handler: "handlers_for_tests:sync_sleep", timeout: 3s}
"""


def add_test_queue(project: Project) -> None:
    """A queue with test handlers, short visibility timeout and small retention limits."""
    path = project.config / "queues.yaml"
    path.write_text(path.read_text().rstrip("\n") + "\n" + TEST_QUEUE)


def add_test_tasks(project: Project, tasks: str) -> None:
    """The test queue (see `add_test_queue`) with `tasks` (YAML lines under its `tasks:`) added."""
    add_test_queue(project)
    path = project.config / "queues.yaml"
    path.write_text(path.read_text().rstrip("\n") + tasks)


@dataclass(frozen=True)
class Fire:
    task_id: str
    slot: float
    enqueued: float  # the stream entry's time: Redis server time of the XADD

    @property
    def lateness(self) -> float:
        return self.enqueued - self.slot


def fires(project: Project, queue: str, level: str = NORMAL) -> list[Fire]:
    """The jobs fired into `queue` (on its priority `level`'s stream), in enqueue order."""
    client = redis_client(project)
    try:
        stream = project.queue_keys(queue).stream_at(level)
        entries: list[tuple[str, dict[str, str]]] = client.xrange(stream)  # type: ignore[assignment]
    finally:
        client.close()
    found = []
    for entry_id, fields in entries:
        data = json.loads(fields["data"])
        found.append(Fire(data["task_id"], float(data["labels"]["slot"]), int(entry_id.split("-")[0]) / 1000))
    return found
