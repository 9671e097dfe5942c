"""`bootstrap health` against real servers and a real worker: 0 only for a healthy stack, and each
broken part named with its fix."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from bootstrap.local.servers import MongoServer, RedisServer
from tests.conftest import subprocess_env
from tests.support.jobs_project import Project, make_project, redis_client, wait_for

ONE_QUEUE = """defaults:
  concurrency: 2
  shutdown_timeout: 5s
queues:
  delta-sync:
    tasks:
      run-delta-sync: {timeout: 1m}
"""
ONE_SCHEDULE = """schedules:
  delta-sync-schedule: {queue: delta-sync, task: run-delta-sync, every: 15m}
"""
JOB_STACK = ("taskiq", "aiohttp", "pydantic")

# Runs `bootstrap health --json` as the program does, then says which of the job stack it loaded.
HEALTH = """
import json, sys
from bootstrap.cli.main import main
code = main(["health", "--json", "--config", sys.argv[1]])
print(json.dumps({"code": code, "loaded": sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[2:]))}))
"""


def health(project: Project) -> tuple[int, dict[str, Any], list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", HEALTH, str(project.config), *JOB_STACK],
        capture_output=True, text=True, timeout=60, env=subprocess_env(**project.env),
    )  # fmt: skip
    *report, last = done.stdout.strip().splitlines()
    result = json.loads(last)
    return result["code"], json.loads("\n".join(report)), result["loaded"]


def failed(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in report["checks"] if not check["ok"]}


def taken(project: Project, kind: str) -> subprocess.Popen[str]:
    """The project's running worker or scheduler, no longer the project's to stop (the test does)."""
    process = next(p for p in project.processes if kind in " ".join(map(str, p.args)) and p.poll() is None)
    project.processes.remove(process)
    return process


def healthy(project: Project) -> dict[str, Any] | None:
    code, report, _ = health(project)
    return report if code == 0 else None


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory, mongo_server: MongoServer, redis_server: RedisServer
) -> Iterator[Project]:
    """One queue, one schedule, its worker and the scheduler running: a healthy stack, shared by the
    tests below (each puts back what it breaks)."""

    def edit(project: Project) -> None:
        (project.config / "queues.yaml").write_text(ONE_QUEUE)
        (project.config / "schedules.yaml").write_text(ONE_SCHEDULE)

    mongo_uri = f"{mongo_server.uri}h_{uuid.uuid4().hex[:12]}"
    for made in make_project(tmp_path_factory.mktemp("health"), mongo_uri, redis_server.uri, edit):
        made.start_worker("delta-sync")
        made.start_scheduler()
        wait_for(lambda: healthy(made), 60, "the stack to be healthy", interval=0.5)  # noqa: B023
        yield made


def test_a_healthy_stack_exits_0_quickly_without_loading_the_job_stack(project: Project) -> None:
    started = time.perf_counter()
    code, report, loaded = health(project)
    took = time.perf_counter() - started
    assert code == 0, report
    assert report["healthy"] is True
    assert [c["name"] for c in report["checks"]] == [
        "mongodb", "redis", "eviction", "schedules", "workers", "scheduler", "drift"
    ]  # fmt: skip
    assert all(c["ok"] and c["fix"] is None for c in report["checks"])
    assert loaded == []
    assert took < 10  # one attempt per server, no retries (a loaded machine: a generous bound)


def test_a_stopped_worker_is_named_with_the_fix(project: Project) -> None:
    worker = taken(project, "worker")
    worker.send_signal(signal.SIGTERM)  # a clean stop removes its heartbeat at once
    assert worker.wait(30) == 0
    try:
        code, report, _ = health(project)
        assert code == 1
        assert set(failed(report)) == {"workers"}
        check = failed(report)["workers"]
        assert "queue delta-sync: no live worker" in check["detail"]
        assert "python -m" in check["fix"] and ".worker" in check["fix"]
        text = subprocess.run(
            [sys.executable, "-m", "bootstrap", "health", "--config", str(project.config)],
            capture_output=True, text=True, timeout=60, env=subprocess_env(**project.env),
        )  # fmt: skip
        assert text.returncode == 1
        assert "FAIL  workers" in text.stdout and "fix: start the workers" in text.stdout
        assert text.stdout.rstrip().endswith("unhealthy: workers")
    finally:
        project.start_worker("delta-sync")
        wait_for(lambda: healthy(project), 60, "the stack to be healthy again", interval=0.5)


def test_a_worker_whose_event_loop_is_blocked_is_named_as_blocked_not_missing(project: Project) -> None:
    # A handler blocking the loop: the worker's watchdog thread beats for it, saying what blocks it
    # (tests/integration/jobs/test_oncall_blocked_heartbeat.py); here such a beat is written by hand.
    client = redis_client(project)
    key = f"{project.key_prefix}:workers"
    [(name, raw)] = client.hgetall(key).items()
    worker = taken(project, "worker")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    blocked = "by job j-1 (task t) at app.py:3 in run, for 12s"
    client.hset(key, "blocked:1", json.dumps({**json.loads(raw), "seen": time.time(), "blocked": blocked}))
    try:
        check = failed(health(project)[1])["workers"]
        assert f"queue delta-sync: the event loop of its worker(s) is blocked {blocked}" in check["detail"]
        assert "start the workers" not in check["fix"] and "blocks the event loop" in check["fix"], check
    finally:
        client.hdel(key, "blocked:1", name)
        client.close()
        project.start_worker("delta-sync")
        wait_for(lambda: healthy(project), 60, "the stack to be healthy again", interval=0.5)


def test_a_stopped_scheduler_is_named_with_the_fix_and_a_stale_one_too(project: Project) -> None:
    scheduler = taken(project, "scheduler")
    scheduler.send_signal(signal.SIGTERM)  # a clean stop removes its heartbeat at once
    assert scheduler.wait(30) == 0
    client = redis_client(project)
    key = f"{project.key_prefix}:schedulers"
    try:
        assert client.hlen(key) == 0
        code, report, _ = health(project)
        assert code == 1
        assert set(failed(report)) == {"scheduler"}
        check = failed(report)["scheduler"]
        assert "no live scheduler" in check["detail"] and "1 enabled schedule(s) do not fire" in check["detail"]
        assert f"taskiq scheduler {project.package}.scheduler:scheduler" in check["fix"]

        # One that died without a goodbye (SIGKILL, a lost host) counts once its last beat is old ...
        beat = {"queues": ["delta-sync"], "wiring": "0ld", "host": "gone", "pid": 1, "started": time.time() - 600}
        client.hset(key, "gone:1", json.dumps({**beat, "seen": time.time() - 3600}))
        assert "no live scheduler" in failed(health(project)[1])["scheduler"]["detail"]
        # ... and one alive on another wiring is named with that wiring.
        client.hset(key, "old:2", json.dumps({**beat, "seen": time.time()}))
        check = failed(health(project)[1])["scheduler"]
        assert "1 scheduler(s) run wiring 0ld, not the spec's" in check["detail"]
        assert "bootstrap generate" in check["fix"] and "restart the scheduler" in check["fix"]
        client.hdel(key, "old:2")
    finally:
        project.start_scheduler()
        wait_for(lambda: healthy(project), 60, "the stack to be healthy again", interval=0.5)
    assert not client.hexists(key, "gone:1")  # a starting scheduler removes the notes of dead ones
    client.close()


def test_a_spec_without_schedules_needs_no_scheduler(project: Project) -> None:
    from dataclasses import replace

    from bootstrap.cli.health import scheduler

    client = redis_client(project)
    try:
        check = scheduler(replace(project.spec(), schedules=()), client, lambda spec: "any")
        assert check.ok and check.detail == "no schedules declared: none needed"
        assert not scheduler(project.spec(), client, lambda spec: "other").ok  # the live one runs the spec's
    finally:
        client.close()


def test_a_schedule_missing_from_redis_is_named_with_the_fix(project: Project) -> None:
    client = redis_client(project)
    try:
        assert client.hdel(project.schedule_keys().of("delta-sync").schedules, "delta-sync-schedule") == 1
        code, report, _ = health(project)
        assert code == 1
        assert "not in Redis: delta-sync-schedule" in failed(report)["schedules"]["detail"]
        assert "bootstrap apply" in failed(report)["schedules"]["fix"]
        assert "drift" in failed(report)  # the plan would store it again
    finally:
        client.close()
        assert project.bootstrap("apply") == 0
    assert healthy(project)


def test_drift_is_named_with_the_fix(project: Project, mongo_server: MongoServer) -> None:
    database = project.spec().mongodb.database
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_server.uri)
    try:
        client[database]["emailevents"].drop_index("timestamp_1")
        code, report, _ = health(project)
        assert code == 1
        assert set(failed(report)) == {"drift"}
        assert "emailevents" in failed(report)["drift"]["detail"]
        assert failed(report)["drift"]["fix"] == "run `bootstrap plan` to see them, then `bootstrap apply`"
    finally:
        client.close()
        assert project.bootstrap("apply") == 0
    assert healthy(project)


def test_a_wrong_eviction_policy_is_named_with_the_fix(project: Project) -> None:
    client = redis_client(project)
    before = client.config_get("maxmemory-policy")["maxmemory-policy"]
    try:
        client.config_set("maxmemory-policy", "allkeys-lru")
        code, report, _ = health(project)
        assert code == 1
        assert set(failed(report)) == {"eviction"}  # not counted twice as drift
        check = failed(report)["eviction"]
        assert "maxmemory-policy allkeys-lru" in check["detail"] and "--fix-redis" in check["fix"]
    finally:
        client.config_set("maxmemory-policy", before)
        client.close()
    assert healthy(project)


def test_servers_that_do_not_answer_are_named_and_nothing_else_is_checked(project: Project, tmp_path: Path) -> None:
    env = {**project.env, "MONGODB_URI": "mongodb://127.0.0.1:1/x", "REDIS_URL": "redis://127.0.0.1:1/0"}
    done = subprocess.run(
        [sys.executable, "-m", "bootstrap", "health", "--json", "--timeout", "1", "--config", str(project.config)],
        capture_output=True, text=True, timeout=60, env=subprocess_env(**env),
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["healthy"] is False
    assert [(c["name"], c["ok"]) for c in report["checks"]] == [("mongodb", False), ("redis", False)]
    assert "does not answer" in report["checks"][0]["detail"] and "MONGODB_URI" in report["checks"][0]["fix"]


def _health_only(project: Project, only: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bootstrap", "health", "--json", "--timeout", "1", "--only", only,
         "--config", str(project.config)],
        capture_output=True, text=True, timeout=60, env=subprocess_env(**{**project.env, **env}),
    )  # fmt: skip


def test_only_runs_the_checks_named_and_a_server_they_need_that_does_not_answer(project: Project) -> None:
    """A container's own health check (compose.yaml's): the worker's checks, not the scheduler's."""
    done = _health_only(project, "mongodb,redis,workers")
    assert done.returncode == 0, done.stdout
    assert [c["name"] for c in json.loads(done.stdout)["checks"]] == ["mongodb", "redis", "workers"]
    # Redis away: the workers check cannot run, and the failing Redis check says why (never healthy).
    away = _health_only(project, "workers", REDIS_URL="redis://127.0.0.1:1/0")
    assert away.returncode == 1
    assert [(c["name"], c["ok"]) for c in json.loads(away.stdout)["checks"]] == [("redis", False)]
    wrong = _health_only(project, "workers,nope")
    assert wrong.returncode == 2 and "nope: expected some of mongodb, redis" in wrong.stderr


TWO_QUEUES = (
    ONE_QUEUE
    + """  token-refresh:
    tasks:
      refresh-tokens: {timeout: 1m}
"""
)


def _workers_check(project: Project, *queues: str) -> subprocess.CompletedProcess[str]:
    named = [part for queue in queues for part in ("--queue", queue)]
    return subprocess.run(
        [sys.executable, "-m", "bootstrap", "health", "--json", "--only", "workers", *named,
         "--config", str(project.config)],
        capture_output=True, text=True, timeout=60, env=subprocess_env(**project.env),
    )  # fmt: skip


def test_queue_limits_the_workers_check_to_a_containers_own_queues(
    tmp_path: Path, mongo_server: MongoServer, redis_server: RedisServer
) -> None:
    """A container that runs the workers of one queue (`python -m PACKAGE.worker QUEUE`) checks that
    queue's, not the others' (run by other containers, or not yet started)."""

    def edit(project: Project) -> None:
        (project.config / "queues.yaml").write_text(TWO_QUEUES)
        (project.config / "schedules.yaml").write_text(ONE_SCHEDULE)

    mongo_uri = f"{mongo_server.uri}hq_{uuid.uuid4().hex[:12]}"
    for project in make_project(tmp_path, mongo_uri, redis_server.uri, edit):
        project.start_worker("delta-sync")
        own = wait_for(
            lambda: (done := _workers_check(project, "delta-sync")).returncode == 0 and done,  # noqa: B023
            60,
            "its worker's heartbeat",
        )
        assert json.loads(own.stdout)["checks"][0]["detail"].startswith("queue(s) delta-sync have a live worker")
        every = _workers_check(project)
        assert every.returncode == 1
        detail = json.loads(every.stdout)["checks"][0]["detail"]
        assert "queue token-refresh: no live worker" in detail and "delta-sync" not in detail
        assert _workers_check(project, "token-refresh").returncode == 1
        unknown = _workers_check(project, "delta-sync", "nope")
        assert unknown.returncode == 1
        assert "unknown queue 'nope' (declared: delta-sync, token-refresh)" in unknown.stderr
        assert unknown.stdout == ""
        left_out = subprocess.run(  # a probe written wrong: it would pass with no worker at all
            [sys.executable, "-m", "bootstrap", "health", "--only", "mongodb,redis", "--queue", "delta-sync",
             "--config", str(project.config)],
            capture_output=True, text=True, timeout=60, env=subprocess_env(**project.env),
        )  # fmt: skip
        assert left_out.returncode == 1
        assert "--queue names the queues of the workers check, which --only leaves out" in left_out.stderr
