"""On call: a job kills its worker (os._exit, a segfault, the OOM killer). The per-job lines are
buffered, so the dying worker's "job started" line for it is lost with the process (as the README
says); the supervisor says "worker Q exited with code 1; restarting it", and the worker that takes
the job over says "took over 1 job(s) whose worker stopped responding", naming no job. Found by the
on-call drill: with the shipped `visibility_timeout: 5m` and `max_deliveries: 3`, the job that crashes
the worker is named only some 15 minutes later, when it reaches the failed store; until then no log
line, `status` or `jobs` command names it (there is no list of the running jobs). The takeover line
should name the jobs it took over (ids, and how often each was delivered)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import Project, add_test_queue, make_project, wait_for


@pytest.fixture
def project(tmp_path: Path, mongo_uri: str, redis_server: RedisServer) -> Iterator[Project]:
    yield from make_project(tmp_path, mongo_uri, redis_server.uri, add_test_queue)


def test_the_job_that_killed_a_worker_is_named_when_it_is_taken_over(project: Project) -> None:
    first = project.start_worker("test-jobs", "first")
    wait_for(lambda: "listening" in project.log("first"), 60, "the first worker")
    assert project.bootstrap("enqueue", "test-jobs", "kill-worker", "--id", "poison-1") == 0
    wait_for(lambda: first.poll() is not None, 30, "the job to kill its worker")
    project.start_worker("test-jobs", "second")  # takes the job over after the 2 s visibility timeout
    wait_for(lambda: "took over" in project.log("second"), 60, "the takeover")
    [line] = [line for line in project.log("second").splitlines() if "took over" in line]
    assert "poison-1" in line, line
