"""Review 8 (worker and scheduler processes): problems found in today's changes, each as a test of
the right behaviour. See /work/notes/review-rev8.md. Rolling deploys are played as in
test_deploy_walk.py: the old release's package keeps running beside the next one's, on one Redis."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap.jobs.records import FAILED
from bootstrap.local.servers import RedisServer
from tests.e2e.test_deploy_walk import _service, failed_reason, listening, next_release, outcome, stop_releases
from tests.support.jobs_project import Project, add_test_queue, make_project, redis_client, wait_for


@pytest.fixture
def project(tmp_path: Path, mongo_uri: str, redis_server: RedisServer) -> Iterator[Project]:
    """The shipped config plus the test queue, applied and generated (release 1)."""
    yield from make_project(tmp_path, mongo_uri, redis_server.uri, add_test_queue)


def _add_throttled_task(release: Project) -> None:
    """Release 2: a task whose first run asks to run again later (a 429 with Retry-After)."""
    release.edit(
        "queues.yaml",
        '      slow-job: {handler: "handlers_for_tests:slow"}\n',
        '      slow-job: {handler: "handlers_for_tests:slow"}\n'
        '      sync-v2: {handler: "handlers_for_tests:retry_after_once"}\n',
    )


def test_a_job_a_serving_worker_ran_is_handed_back_afresh_by_the_other_release(project: Project) -> None:
    """A long rollout (or a canary): release 1's workers handed a job of release 2's new task back
    for a while (label unserved_since, here 11 minutes ago), then a release 2 worker took it; the
    handler hit Graph's throttling (RetryAfter 3 s). Its next run is read by a release 1 worker: that
    worker must hand it back for a release 2 worker, as for any job of the task, not set it aside as
    'no worker of this queue that serves it took it within 10 minutes': one did, seconds ago."""
    release = next_release(project, _add_throttled_task)
    try:
        new = release.start_worker("test-jobs", "new")
        listening(release, "new", "test-jobs")
        job_id = "throttled-1"
        client = redis_client(project)
        message = {"task_id": job_id, "task_name": "sync-v2", "args": [], "kwargs": {"seconds": 3},
                   "labels": {"unserved_since": time.time() - 660}}  # fmt: skip
        client.xadd(project.queue_keys("test-jobs").stream, {"data": json.dumps(message)})
        wait_for(lambda: client.llen(f"test:retry-after:{job_id}") == 1, 30, "its first run (RetryAfter 3 s)")
        new.send_signal(signal.SIGTERM)  # the rollout goes on: this release 2 pod is moved
        new.wait(30)
        project.start_worker("test-jobs", "old")
        listening(project, "old", "test-jobs")
        wait_for(
            lambda: outcome(project, "test-jobs", job_id) or "is of task 'sync-v2'" in project.log("old"),
            30,
            "a release 1 worker to read its next run",
        )
        assert outcome(project, "test-jobs", job_id) != FAILED, failed_reason(project, "test-jobs", job_id)
        client.close()
    finally:
        stop_releases(project, release)


def _rename_a_schedule(release: Project) -> None:
    release.edit("schedules.yaml", "  pattern-analysis-schedule:\n", "  pattern-analysis-nightly:\n")


def test_the_previous_releases_scheduler_stays_healthy_after_the_next_release_renamed_a_schedule(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    """README (Health): `--only` is 'a container's own check, which ... the next release's apply in
    a rollout does not fail'; compose.yaml says so for the worker service, and uses --only for the
    scheduler for the same reason. Release 1's scheduler fires what Redis holds (release 2's
    schedules, whose tasks it runs), so it works; its container must stay healthy."""
    release = next_release(project, _rename_a_schedule)
    try:
        project.start_scheduler()
        wait_for(lambda: "scheduler started" in project.log("scheduler"), 60, "the scheduler to start")
        test = _service("scheduler")["healthcheck"]["test"]  # type: ignore[index]
        capsys.readouterr()
        assert project.bootstrap(*test[2:]) == 0, capsys.readouterr().out  # before the rollout
        assert release.bootstrap("apply") == 0  # release 2's migration job
        capsys.readouterr()
        code = project.bootstrap(*test[2:])
        assert code == 0, capsys.readouterr().out
    finally:
        stop_releases(project, release)
