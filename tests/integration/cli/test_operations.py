"""Day-two commands against real servers: status, the failed-job store, JSON logs, masking."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import Project, add_test_queue, make_project, redis_client, wait_for


@pytest.fixture
def project(tmp_path: Path, mongo_uri: str, redis_server: RedisServer) -> Iterator[Project]:
    yield from make_project(tmp_path, mongo_uri, redis_server.uri, add_test_queue)


def run(
    project: Project, *args: str, stdin: str | None = None, flags: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "bootstrap", *flags, args[0], "--config", str(project.config), *args[1:]]
    return subprocess.run(
        command, env={**os.environ, **project.env}, capture_output=True, text=True, timeout=120, input=stdin
    )


def fail_jobs(project: Project, *ids: str) -> None:
    for job_id in ids:
        assert project.bootstrap("enqueue", "test-jobs", "fail-always", "--kwargs", '{"n": 1}', "--id", job_id) == 0
    client = redis_client(project)
    failed = project.queue_keys("test-jobs").records("failed")
    wait_for(lambda: client.zcard(failed) == len(ids), 60, f"{len(ids)} failed jobs")
    client.close()


def test_status_shows_collections_queues_schedules_workers_and_schedulers(project: Project) -> None:
    project.start_worker("delta-sync")
    assert project.bootstrap("enqueue", "delta-sync", "run-delta-sync", "--id", "s-1") == 0
    client = redis_client(project)
    wait_for(lambda: client.hexists(project.queue_keys("delta-sync").record_data("completed"), "s-1"), 30, "job")
    wait_for(lambda: client.hlen(f"{project.key_prefix}:workers") >= 1, 15, "a worker heartbeat")
    result = run(project, "status")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "MongoDB and Redis match the spec, but the jobs need attention:" in out
    assert "! no live scheduler: the 5 enabled schedule(s) do not fire" in out  # the shipped config's five
    assert "emailevents" in out and "4/4" in out
    assert "last apply:" in out and "the current spec" in out
    assert "delta-sync-schedule" in out and "every 15m" in out
    assert "workers seen in the last 30s: 1" in out and "delta-sync" in out
    assert "schedulers seen in the last 30s: none" in out
    data = json.loads(run(project, "status", "--json").stdout)
    queue = next(q for q in data["queues"] if q["queue"] == "delta-sync")
    assert queue["completed"] == 1 and queue["waiting"] == 0 and data["in_sync"] is True
    assert {c["name"] for c in data["collections"]} >= {"users", "emailevents"}

    project.start_scheduler()
    wait_for(lambda: client.hlen(f"{project.key_prefix}:schedulers") >= 1, 30, "a scheduler heartbeat")
    client.close()
    out = run(project, "status").stdout
    assert "schedulers seen in the last 30s: 1" in out and "no live scheduler" not in out
    data = json.loads(run(project, "status", "--json").stdout)
    assert [s["wiring"] for s in data["schedulers"]] == [data["wiring"]]


def test_status_reports_drift(project: Project) -> None:
    project.edit("collections/emailevents.yaml", "ttl: 90d", "ttl: 30d")
    out = run(project, "status").stdout
    assert "DRIFT" in out and "ttl 90d -> 30d" in out


def test_failed_jobs_list_show_retry_and_purge(project: Project) -> None:
    project.start_worker("test-jobs")
    fail_jobs(project, "bad-1", "bad-2")
    listed = run(project, "jobs", "failed", "test-jobs")
    assert "bad-1" in listed.stdout and "bad-2" in listed.stdout and "RuntimeError: boom on attempt 4" in listed.stdout
    shown = run(project, "jobs", "show", "test-jobs", "bad-1")
    assert "Traceback" in shown.stdout and '"kwargs": {"n": 1}' in shown.stdout and "4 of 4 attempt(s)" in shown.stdout
    retried = run(project, "jobs", "retry", "test-jobs", "bad-1")
    assert retried.returncode == 0 and "re-enqueued 1 job(s)" in retried.stdout
    client = redis_client(project)
    attempts = "test:attempts:bad-1"
    wait_for(lambda: client.llen(attempts) == 8, 60, "four more attempts after the retry")
    first_of_retry = json.loads(client.lrange(attempts, 4, 4)[0])
    assert first_of_retry["attempt"] == 1  # a fresh set of attempts
    wait_for(lambda: "bad-1" in run(project, "jobs", "failed", "test-jobs").stdout, 30, "bad-1 back in the store")
    assert run(project, "jobs", "retry", "test-jobs", "nope").returncode == 1
    refused = run(project, "jobs", "purge", "test-jobs", stdin="")  # no terminal: no confirmation
    assert refused.returncode == 1 and "nothing deleted" in refused.stderr
    purged = run(project, "jobs", "purge", "test-jobs", "--yes")
    assert purged.returncode == 0 and "deleted 2 failed job record(s)" in purged.stdout
    assert client.zcard(project.queue_keys("test-jobs").records("failed")) == 0
    client.close()


def test_json_logs_are_one_object_per_line(project: Project) -> None:
    result = run(project, "plan", flags=("--log-format", "json"))
    assert result.returncode == 0
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert lines and all({"time", "level", "logger", "message"} <= set(entry) for entry in lines)
    assert any("connected to MongoDB" in entry["message"] for entry in lines)


def test_errors_are_json_too_and_never_show_the_password(project: Project, mongo_uri: str) -> None:
    # The test server has no users: these credentials are refused, which is the error we want to see.
    project.env["MONGODB_URI"] = mongo_uri.replace("mongodb://", "mongodb://svc:Tr0ub4dor-3@")
    result = run(project, "plan", flags=("--log-format", "json"))
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1]["level"] == "ERROR" and "refused the connection" in lines[-1]["message"]
    assert "Tr0ub4dor-3" not in result.stdout + result.stderr and "svc:****@" in result.stderr


def test_status_watch_refreshes_until_ctrl_c(project: Project) -> None:
    command = [
        sys.executable,
        "-m",
        "bootstrap",
        "status",
        "--config",
        str(project.config),
        "--watch",
        "--interval",
        "0.5",
    ]
    watch = subprocess.Popen(
        command, env={**os.environ, **project.env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(watch.stdout or []), daemon=True)
    reader.start()
    try:
        # Two screens drawn (however long each takes on a loaded machine), then Ctrl-C.
        wait_for(lambda: sum(line.startswith("queue ") for line in list(seen)) >= 2, 90, "two refreshes")
    finally:
        watch.send_signal(signal.SIGINT)
    watch.wait(60)
    reader.join(10)
    assert watch.returncode == 0, watch.stderr.read() if watch.stderr else ""
    assert sum(line.startswith("queue ") for line in seen) >= 2
