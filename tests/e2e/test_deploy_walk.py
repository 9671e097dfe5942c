"""A platform engineer's walk: bootstrap deployed with containers (compose.yaml, or Kubernetes-style
Deployments with several replicas, rolling updates and `bootstrap apply` as a one-shot job).

Each test runs real worker and scheduler processes against the test servers and asserts what such a
user expects; those marked xfail show a problem found on the walk (see /work/notes/walk-deploy.md).

A rolling deploy is played as it happens in a cluster: the old release's generated package keeps
running while the new release's package (the same project, its config edited, `bootstrap generate`d
in a folder of its own) starts beside it, both on one Redis and one key prefix."""

from __future__ import annotations

import json
import shutil
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import yaml

from bootstrap.jobs.records import COMPLETED, FAILED
from bootstrap.local.servers import RedisServer
from tests.conftest import REPO
from tests.support.jobs_project import Project, add_test_queue, make_project, open_project, redis_client, wait_for

# --- helpers ---------------------------------------------------------------------------------------


def next_release(project: Project, edit: Callable[[Project], None], name: str = "release-2") -> Project:
    """The project's next release: a copy of its folder (config, handlers) with `edit` applied and
    its own generated package, on the same Redis keys and database (as a new image would be)."""
    root = project.root.parent / name
    shutil.copytree(project.root, root, ignore=shutil.ignore_patterns("*.log", "__pycache__"))
    release = Project(root, dict(project.env), project.key_prefix)
    edit(release)
    assert release.bootstrap("generate") == 0
    return release


def outcome(project: Project, queue: str, job_id: str) -> str | None:
    """'completed' or 'failed' once the job has a record, else None."""
    client = redis_client(project)
    try:
        keys = project.queue_keys(queue)
        for name in (COMPLETED, FAILED):
            if client.zscore(keys.records(name), job_id) is not None:
                return name
        return None
    finally:
        client.close()


def failed_reason(project: Project, queue: str, job_id: str) -> str:
    client = redis_client(project)
    try:
        raw = client.hget(project.queue_keys(queue).record_data(FAILED), job_id)
    finally:
        client.close()
    return str(json.loads(str(raw)).get("error")) if raw else ""


def listening(project: Project, log: str, queue: str) -> None:
    wait_for(lambda: f"queue {queue}: listening" in project.log(log), 60, f"{log} to listen")


def starts(project: Project, job_id: str) -> list[dict[str, object]]:
    """The `slow` handler's notes for `job_id` (start/end, pid)."""
    client = redis_client(project)
    try:
        return [json.loads(n) for n in client.lrange(f"test:slow:{job_id}", 0, -1)]
    finally:
        client.close()


@pytest.fixture
def project(tmp_path: Path, mongo_uri: str, redis_server: RedisServer) -> Iterator[Project]:
    """The shipped config plus the test queue (`test-jobs`: visibility 2 s, concurrency 4, test
    handlers), applied and generated."""
    yield from make_project(tmp_path, mongo_uri, redis_server.uri, add_test_queue)


def stop_releases(*releases: Project) -> None:
    for release in releases:
        release.stop_all()


# --- rolling deploy: a task added ------------------------------------------------------------------


def _add_task(release: Project) -> None:
    release.edit(
        "queues.yaml",
        '      slow-job: {handler: "handlers_for_tests:slow"}\n',
        '      slow-job: {handler: "handlers_for_tests:slow"}\n'
        '      slow-job-v2: {handler: "handlers_for_tests:slow"}\n',
    )


def test_rolling_deploy_a_job_of_a_new_task_read_by_an_old_worker_still_runs(project: Project) -> None:
    """Release 2 adds a task to a queue. During the rollout old and new workers of the queue both
    run; a producer of release 2 sends the new task. Whatever worker reads it first, the job must
    end up run by a worker that knows the task, not failed for good with nobody to blame."""
    release = next_release(project, _add_task)
    try:
        project.start_worker("test-jobs", "old")
        listening(project, "old", "test-jobs")
        job_id = f"v2-{uuid.uuid4().hex[:8]}"
        assert release.bootstrap("enqueue", "test-jobs", "slow-job-v2", "--id", job_id, "--kwargs",
                                 '{"seconds": 0.1}') == 0  # fmt: skip
        time.sleep(2)  # the old worker reads it meanwhile
        release.start_worker("test-jobs", "new")
        listening(release, "new", "test-jobs")
        # A worker that knows the task runs it: handed back every 5 s, it reaches the new worker at the
        # latest once that one is first in line (a busy machine may let the old one win a few times).
        try:
            wait_for(lambda: outcome(project, "test-jobs", job_id), 45, "the job to finish")
        except AssertionError as exc:
            logs = f"old worker:\n{project.log('old')}\nnew worker:\n{release.log('new')}"
            client, keys = redis_client(project), project.queue_keys("test-jobs")
            try:
                delayed = client.zrange(keys.delayed, 0, -1, withscores=True)
                pending = client.xpending(keys.stream, "workers")
                state = f"now {time.time()}; delayed {delayed}; stream {client.xrange(keys.stream)}; pending {pending}"
            finally:
                client.close()
            raise AssertionError(f"{exc}\n{logs}\n{state}") from None
        assert outcome(project, "test-jobs", job_id) == COMPLETED, failed_reason(project, "test-jobs", job_id)
    finally:
        stop_releases(project, release)


# --- rolling deploy: visibility_timeout lowered ----------------------------------------------------


def _long_visibility(project: Project) -> None:
    add_test_queue(project)
    project.edit(
        "queues.yaml", "visibility_timeout: 2s\n    concurrency: 4", "visibility_timeout: 12s\n    concurrency: 4"
    )


def test_rolling_deploy_a_shorter_visibility_timeout_does_not_run_a_live_job_twice(
    tmp_path: Path, mongo_uri: str, redis_server: RedisServer
) -> None:
    """Release 1 runs the test queue with visibility_timeout 12 s; release 2 lowers it to 2 s. A job
    running on a live, renewing old worker is 'never handed out twice' (README) and must not be
    started a second time by a new worker while the old one runs it."""
    with open_project(tmp_path, mongo_uri, redis_server.uri, _long_visibility) as project:
        release = next_release(
            project,
            lambda p: p.edit("queues.yaml", "visibility_timeout: 12s", "visibility_timeout: 2s"),
        )
        try:
            project.start_worker("test-jobs", "old")
            listening(project, "old", "test-jobs")
            job_id = f"vt-{uuid.uuid4().hex[:8]}"
            assert project.bootstrap("enqueue", "test-jobs", "slow-job", "--id", job_id, "--kwargs",
                                     '{"seconds": 9}') == 0  # fmt: skip
            wait_for(lambda: starts(project, job_id), 15, "the job to start on the old worker")
            release.start_worker("test-jobs", "new")
            listening(release, "new", "test-jobs")
            wait_for(lambda: outcome(project, "test-jobs", job_id), 30, "the job to finish")
            started = [n for n in starts(project, job_id) if n["event"] == "start"]
            assert len(started) == 1, f"started {len(started)} times, by pids {[n['pid'] for n in started]}"
        finally:
            stop_releases(project, release)


# --- compose.yaml's health check on the worker service -------------------------------------------


def compose() -> dict[str, object]:
    loaded = yaml.safe_load((REPO / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def _service(name: str) -> dict[str, object]:
    services = compose()["services"]
    assert isinstance(services, dict)
    service = services[name]
    assert isinstance(service, dict)
    return service


def test_the_worker_services_health_check_passes_while_its_workers_run_and_the_scheduler_is_down(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    """compose.yaml runs `bootstrap health --timeout 5` as the health check of the worker service
    (and of the scheduler service). A container's health check (or a Kubernetes liveness/readiness
    probe built the same way) must say whether *that* container works: here every queue has its
    worker, started exactly as the service does, and only the scheduler service is stopped. Today
    the worker container is unhealthy, so an orchestrator that restarts unhealthy containers (or
    a Kubernetes liveness probe) restarts working workers because the scheduler is away."""
    health = _service("worker")["healthcheck"]
    assert isinstance(health, dict)
    test = health["test"]
    assert isinstance(test, list) and test[:3] == ["CMD", "bootstrap", "health"], test
    project.start_launcher(name="workers")  # `cd generated && exec python -m msedb_jobs.worker`
    try:
        for queue in project.spec().queues:
            listening(project, "workers", queue.name)
        capsys.readouterr()
        code = project.bootstrap(*test[2:])  # from /app (the service's working_dir): the project folder
        assert code == 0, capsys.readouterr().out
    finally:
        project.stop_all()


def _optional_field(release: Project) -> None:
    release.edit("collections/users.yaml", "  displayName: string\n", "  displayName: string\n  locale: string\n")


def test_the_previous_releases_health_check_passes_after_the_next_release_applied(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rollout: the migration job of release 2 (`bootstrap apply`) runs first, then the pods are
    replaced one by one. Release 1's workers and scheduler still run and work; their health check
    (compose.yaml's, or a probe) must not turn them unhealthy, nor tell the operator to apply
    release 1's spec over release 2's."""
    release = next_release(project, _optional_field)
    try:
        project.start_launcher(name="workers")
        project.start_scheduler()
        for queue in project.spec().queues:
            listening(project, "workers", queue.name)
        wait_for(lambda: "scheduler started" in project.log("scheduler"), 60, "the scheduler to start")
        capsys.readouterr()
        assert project.bootstrap("health", "--timeout", "5") == 0, capsys.readouterr().out  # before the rollout
        assert release.bootstrap("apply") == 0  # release 2's migration job
        capsys.readouterr()
        for service in ("worker", "scheduler"):  # release 1's container health checks
            test = _service(service)["healthcheck"]["test"]  # type: ignore[index]
            code = project.bootstrap(*test[2:])
            assert code == 0, (service, capsys.readouterr().out)
        # The whole stack's check still sees the difference, and does not tell release 1 to apply.
        capsys.readouterr()
        assert project.bootstrap("health", "--timeout", "5") == 1
        out = capsys.readouterr().out
        assert "was of another spec" in out and "do not apply this config" in out, out
    finally:
        stop_releases(project, release)


# --- SIGTERM during a rollout: jobs read but not started ------------------------------------------


def _note_start_task(project: Project) -> None:
    add_test_queue(project)
    path = project.config / "queues.yaml"
    path.write_text(path.read_text().rstrip("\n") + '\n      note-start: {handler: "handlers_for_tests:note_start"}\n')


def _stop_with_backlog(project: Project, client: redis.Redis, tag: str) -> tuple[list[str], int]:
    """A worker (concurrency 4) runs four slow jobs (2 s) with twelve quick ones queued behind
    them, and is stopped (SIGTERM) once the four started, as a rollout stops a pod. Returns the
    quick jobs in the order they were sent and the stopped worker's pid."""
    worker = project.start_worker("test-jobs", "first")
    listening(project, "first", "test-jobs")
    slow_ids = [f"{tag}-slow-{n}" for n in range(4)]
    for job_id in slow_ids:
        assert project.bootstrap("enqueue", "test-jobs", "slow-job", "--id", job_id,
                                 "--kwargs", '{"seconds": 2}') == 0  # fmt: skip
    sent = [f"{tag}-{n:02d}" for n in range(12)]
    for job_id in sent:
        assert project.bootstrap("enqueue", "test-jobs", "note-start", "--id", job_id,
                                 "--kwargs", json.dumps({"tag": tag})) == 0  # fmt: skip
    wait_for(lambda: all(client.llen(f"test:slow:{j}") for j in slow_ids), 15, "the slow jobs to start")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    return sent, worker.pid


def _stop_mid_backlog(project: Project) -> tuple[list[str], int, list[dict[str, object]]]:
    """`_stop_with_backlog`, then a second worker starts. Returns the quick jobs in the order they
    were sent, the first worker's pid and every start of a quick job ({"id", "pid"}), in the order
    they started."""
    tag = uuid.uuid4().hex[:8]
    client = redis_client(project)
    try:
        sent, pid = _stop_with_backlog(project, client, tag)
        project.start_worker("test-jobs", "second")
        wait_for(lambda: client.llen(f"test:starts:{tag}") >= len(sent), 30, "every job to start")
        return sent, pid, [json.loads(n) for n in client.lrange(f"test:starts:{tag}", 0, -1)]
    finally:
        client.close()


def test_jobs_given_back_at_shutdown_keep_their_own_order(
    tmp_path: Path, mongo_uri: str, redis_server: RedisServer
) -> None:
    """README: 'Within a level jobs run in the order they were sent', but for the jobs a stopping
    worker had read ahead: given back, they go behind the jobs sent since (a stream entry cannot be
    put back in its place), in their own order, not shuffled. Read off the stream itself: the start
    order of jobs run concurrently says nothing."""
    with open_project(tmp_path, mongo_uri, redis_server.uri, _note_start_task) as project:
        client = redis_client(project)
        try:
            sent, _ = _stop_with_backlog(project, client, uuid.uuid4().hex[:8])
            stream = project.queue_keys("test-jobs").stream
            queued = [json.loads(fields["data"])["task_id"] for _, fields in client.xrange(stream)]
        finally:
            client.close()
        queued = [job_id for job_id in queued if job_id in sent]
        assert sorted(queued) == sent, queued  # none started after SIGTERM, none lost
        breaks = [n for n in range(1, len(queued)) if queued[n] < queued[n - 1]]
        assert len(breaks) == 1, queued  # those never read, then those given back: each in sent order


def test_a_worker_starts_no_new_job_after_sigterm(tmp_path: Path, mongo_uri: str, redis_server: RedisServer) -> None:
    """README: 'On SIGTERM a worker stops reading, finishes its running jobs within shutdown_timeout,
    gives back jobs it had read but not started'. A job that starts after SIGTERM may be cut by the
    SIGKILL that follows the grace period (a long job, a short terminationGracePeriodSeconds)."""
    with open_project(tmp_path, mongo_uri, redis_server.uri, _note_start_task) as project:
        _, stopped_pid, started = _stop_mid_backlog(project)
        after_sigterm = [s["id"] for s in started if s["pid"] == stopped_pid]
        assert after_sigterm == [], f"started by the stopped worker after SIGTERM: {after_sigterm}"


def test_a_stopping_worker_gives_back_the_jobs_it_read_ahead_at_once(
    tmp_path: Path, mongo_uri: str, redis_server: RedisServer
) -> None:
    """docs/scaling.md: 'Shut workers down with SIGTERM: running jobs finish (up to
    shutdown_timeout) and jobs read but not started are handed back at once.' Worker A runs four
    long jobs and has read four quick ones ahead; worker B (another replica) is idle. When A gets
    SIGTERM, B must get the four quick jobs at once, not after A's running jobs end."""
    with open_project(tmp_path, mongo_uri, redis_server.uri, _note_start_task) as project:
        tag = uuid.uuid4().hex[:8]
        client = redis_client(project)
        try:
            first = project.start_worker("test-jobs", "a")
            listening(project, "a", "test-jobs")
            slow_ids = [f"{tag}-slow-{n}" for n in range(4)]
            for job_id in slow_ids:
                assert project.bootstrap("enqueue", "test-jobs", "slow-job", "--id", job_id,
                                         "--kwargs", '{"seconds": 30}') == 0  # fmt: skip
            for n in range(4):
                assert project.bootstrap("enqueue", "test-jobs", "note-start", "--id", f"{tag}-{n}",
                                         "--kwargs", json.dumps({"tag": tag})) == 0  # fmt: skip
            wait_for(lambda: all(client.llen(f"test:slow:{j}") for j in slow_ids), 15, "the slow jobs to start")
            stream = project.queue_keys("test-jobs").stream
            wait_for(lambda: client.xpending(stream, "workers")["pending"] == 8, 10, "A to read the quick jobs")
            project.start_worker("test-jobs", "b")
            listening(project, "b", "test-jobs")
            first.send_signal(signal.SIGTERM)
            stopped = time.monotonic()
            wait_for(lambda: client.llen(f"test:starts:{tag}") == 4, 30, "the quick jobs to start")
            took = time.monotonic() - stopped
            assert took < 3, f"the quick jobs started {took:.1f}s after SIGTERM (shutdown_timeout 10s)"
        finally:
            client.close()


# --- graceful stops count as deaths -----------------------------------------------------------------


def _short_shutdown(project: Project) -> None:
    add_test_queue(project)
    project.edit("queues.yaml", "shutdown_timeout: 10s", "shutdown_timeout: 1s")


def test_graceful_stops_of_its_workers_do_not_send_a_long_job_to_the_failed_store(
    tmp_path: Path, mongo_uri: str, redis_server: RedisServer
) -> None:
    """A job longer than the queue's shutdown_timeout (the shipped pattern-analysis: a 30 min
    timeout, 30 s shutdown_timeout) is cut by each deploy and runs again later: expected. But the
    workers did not die, they were stopped cleanly, so three deploys while it runs must not make it
    a poison job, failed for good."""
    with open_project(tmp_path, mongo_uri, redis_server.uri, _short_shutdown) as project:
        job_id = f"long-{uuid.uuid4().hex[:8]}"
        assert project.bootstrap("enqueue", "test-jobs", "slow-job", "--id", job_id,
                                 "--kwargs", '{"seconds": 60}') == 0  # fmt: skip
        for deploy in range(3):
            worker = project.start_worker("test-jobs", f"w{deploy}")
            wait_for(lambda n=deploy + 1: len(starts(project, job_id)) >= n, 30, f"start {deploy + 1}")
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(30) == 0  # a clean stop
        project.start_worker("test-jobs", "w3")
        wait_for(lambda: len(starts(project, job_id)) >= 4 or outcome(project, "test-jobs", job_id), 30,
                 "a fourth start or a record")  # fmt: skip
        assert outcome(project, "test-jobs", job_id) is None, failed_reason(project, "test-jobs", job_id)
        assert len(starts(project, job_id)) == 4
