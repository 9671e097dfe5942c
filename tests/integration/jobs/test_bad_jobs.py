"""Jobs that would loop forever, vanish or be run by rules they bring along: a job that kills its
worker, junk entries, labels that try to set the retry policy (real worker processes)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import Project, add_test_queue, make_project, redis_client, wait_for

SCHEDULE = """
  test-fail-schedule:
    queue: test-jobs
    task: fail-always
    every: 24h
    retry: {attempts: 2, backoff: fixed, delay: 200ms, max_delay: 1s}
"""


def with_schedule(project: Project) -> None:
    add_test_queue(project)
    project.edit("queues.yaml", "failed: {max_age: 1h, max_count: 3}", "failed: {max_age: 1h, max_count: 50}")
    path = project.config / "schedules.yaml"
    path.write_text(path.read_text().rstrip("\n") + "\n" + SCHEDULE)


@pytest.fixture
def project(tmp_path: Path, mongo_uri: str, redis_server: RedisServer) -> Iterator[Project]:
    yield from make_project(tmp_path, mongo_uri, redis_server.uri, with_schedule)


def failed(project: Project) -> dict[str, dict[str, Any]]:
    client = redis_client(project)
    raw = client.hgetall(project.queue_keys("test-jobs").record_data("failed"))
    client.close()
    return {k: json.loads(v) for k, v in raw.items()}


def completed(project: Project) -> set[str]:
    client = redis_client(project)
    found = set(client.hkeys(project.queue_keys("test-jobs").record_data("completed")))
    client.close()
    return found


def add_job(client: redis.Redis, project: Project, job_id: str, task: str, **labels: Any) -> None:
    """A job written straight to the stream, as anyone with access to Redis could."""
    message = {"task_id": job_id, "task_name": task, "labels": labels, "args": [], "kwargs": {}}
    client.xadd(project.queue_keys("test-jobs").stream, {"data": json.dumps(message)})


def test_a_job_that_kills_its_worker_goes_to_the_failed_store_after_max_deliveries(project: Project) -> None:
    """It used to be delivered forever (9 times in 50 s, always attempt 1), starving the jobs behind it.
    The launcher restarts the worker each time; the queue's max_deliveries is 3."""
    project.start_launcher("test-jobs")
    assert project.bootstrap("enqueue", "test-jobs", "kill-worker", "--id", "poison") == 0
    record = wait_for(lambda: failed(project).get("poison"), 120, "the job to be given up")
    assert record["error"] == "delivered 3 times without finishing: its worker died each time"
    client = redis_client(project)
    runs = [json.loads(v) for v in client.lrange("test:killer:poison", 0, -1)]
    assert len(runs) == 3 and len({r["pid"] for r in runs}) == 3  # three worker processes died on it
    # The queue is not stuck: a job enqueued now runs, and the given-up job never runs again.
    assert project.bootstrap("enqueue", "test-jobs", "mongo-job", "--id", "after") == 0
    wait_for(lambda: "after" in completed(project), 60, "the next job")
    assert client.llen("test:killer:poison") == 3
    client.close()
    assert "job poison moved to the failed store: delivered 3 times" in project.log("worker")  # it ran, 3 times


def test_jobs_show_says_a_job_is_handed_back(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    """A job of a task the worker does not serve (a rollout): `jobs show` says it is handed back."""
    client = redis_client(project)
    add_job(client, project, "v2-job", "task-of-the-next-release")
    project.start_worker("test-jobs")
    delayed = project.queue_keys("test-jobs").delayed
    wait_for(lambda: any('"v2-job"' in m for m in client.zrange(delayed, 0, -1)), 60, "the hand-back")
    client.close()
    capsys.readouterr()
    assert project.bootstrap("jobs", "show", "test-jobs", "v2-job") == 0
    out = capsys.readouterr().out
    assert "delayed until" in out and "handed back since" in out and "task-of-the-next-release" in out, out


def test_junk_entries_are_kept_in_the_failed_store_with_the_reason(project: Project) -> None:
    client = redis_client(project)
    stream = project.queue_keys("test-jobs").stream
    client.xadd(stream, {"payload": "no data field"})
    client.xadd(stream, {"data": "{not json"})
    add_job(client, project, "ghost", "no-such-task", unserved_since=1.0)  # handed back since 1970: set aside
    add_job(client, project, "zz", "mongo-job", attempt="zz")
    add_job(client, project, "fine", "mongo-job")
    project.start_worker("test-jobs")
    wait_for(lambda: "fine" in completed(project), 60, "the good job")
    found = wait_for(lambda: len(failed(project)) == 4 and failed(project), 30, "four failed records")
    reasons = sorted(record["error"] for record in found.values())
    assert reasons[0] == "label attempt: 'zz' is not a whole number from 1 to 100"  # not a ValueError any more
    assert reasons[1].startswith("not a job message")
    assert reasons[2] == "the stream entry has no 'data' field"
    assert reasons[3].startswith("unknown task 'no-such-task': no worker of this queue that serves it took it")
    assert client.xlen(stream) == 0  # nothing left behind to be delivered again
    assert project.log("worker").count("moved to the failed store without running") == 4
    # `bootstrap jobs` shows them like any failed job; a re-enqueued junk entry is set aside again.
    assert project.bootstrap("jobs", "failed", "test-jobs") == 0
    assert project.bootstrap("jobs", "retry", "test-jobs", "zz") == 0  # its attempt label is reset: it runs
    wait_for(lambda: "zz" in completed(project), 30, "the retried job to run")
    # A retried job of a task no worker serves waits for one afresh: handed back to the delayed set.
    assert project.bootstrap("jobs", "retry", "test-jobs", "ghost") == 0
    delayed = project.queue_keys("test-jobs").delayed
    wait_for(lambda: any('"ghost"' in member for member in client.zrange(delayed, 0, -1)), 30, "the hand-back")
    assert "ghost" not in failed(project)
    client.close()


def test_the_retry_policy_comes_from_the_spec_not_from_labels(project: Project) -> None:
    """A junk entry asking for 1e9 attempts 1 ms apart was retried 608 times in 32 s."""
    junk_policy = {"attempts": 1_000_000_000, "backoff": "fixed", "delay": 0.001, "max_delay": 0.001, "jitter": False}
    client = redis_client(project)
    add_job(client, project, "greedy", "fail-always", retry=json.dumps(junk_policy), timeout=0.001)
    # A job a schedule fired retries by that schedule's policy (2 attempts), whatever its labels say.
    add_job(client, project, "fired", "fail-always", schedule_id="test-fail-schedule", retry=json.dumps(junk_policy))
    project.start_worker("test-jobs")
    greedy = wait_for(lambda: failed(project).get("greedy"), 60, "the junk-policy job to fail for good")
    fired = wait_for(lambda: failed(project).get("fired"), 60, "the scheduled job to fail for good")
    assert (greedy["attempts"], greedy["max_attempts"]) == (4, 4)  # the task's declared retry
    assert greedy["error"] == "RuntimeError: boom on attempt 4"  # its timeout label was not applied either
    assert (fired["attempts"], fired["max_attempts"]) == (2, 2)
    assert client.llen("test:attempts:greedy") == 4 and client.llen("test:attempts:fired") == 2
    client.close()
