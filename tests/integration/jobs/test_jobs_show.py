"""`bootstrap jobs show QUEUE ID` finds a job in any state on a real Redis: waiting on its priority
level's stream, delayed (a delayed enqueue, or a retry waiting there), running (which worker's consumer
holds it, for how long), or finished; it says which, in text and JSON, and says when a bounded search
gave up before finding it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import Project, make_project, redis_client, wait_for

QUEUE = "delta-sync"
TASKS = """run-delta-sync: {timeout: 10m}
      slow: {handler: "handlers_for_tests:slow"}
      fail:
        handler: "handlers_for_tests:always_fail"
        retry: {attempts: 3, backoff: fixed, delay: 1h, max_delay: 1h}"""


@pytest.fixture
def project(tmp_path: Path, mongo_uri: str, redis_server: RedisServer) -> Iterator[Project]:
    def edit(project: Project) -> None:
        project.edit("queues.yaml", "run-delta-sync: {timeout: 10m}", TASKS)

    yield from make_project(tmp_path, mongo_uri, redis_server.uri, edit)


def show(project: Project, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = project.bootstrap("jobs", "show", QUEUE, *args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def shown_json(project: Project, capsys: pytest.CaptureFixture[str], job_id: str) -> dict[str, object]:
    code, out, err = show(project, capsys, job_id, "--json")
    assert code == 0, err
    found: dict[str, object] = json.loads(out)
    return found


def test_waiting_and_delayed_jobs_are_found_and_a_bounded_search_says_when_it_gave_up(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    """No worker runs: what is enqueued stays where it was put."""
    assert project.bootstrap("enqueue", QUEUE, "run-delta-sync", "--count", "30", "--id", "bulk") == 0
    assert project.bootstrap("enqueue", QUEUE, "run-delta-sync", "--id", "urgent", "--priority", "high") == 0
    assert project.bootstrap("enqueue", QUEUE, "run-delta-sync", "--id", "later", "--delay", "1h") == 0
    capsys.readouterr()

    code, out, _ = show(project, capsys, "bulk-25")
    assert code == 0
    assert out.startswith("job bulk-25 (run-delta-sync on delta-sync), waiting on the normal level (no worker took it")
    found = shown_json(project, capsys, "urgent")
    assert found["state"] == "waiting" and found["level"] == "high"
    assert found["job"] == {"id": "urgent", "task": "run-delta-sync", "labels": found["job"]["labels"],  # type: ignore[index]
                            "args": [], "kwargs": {}}  # fmt: skip

    code, out, _ = show(project, capsys, "later")
    assert code == 0 and "delayed until " in out and "then waiting on the normal level; attempt 1" in out
    found = shown_json(project, capsys, "later")
    assert found["state"] == "delayed"
    assert isinstance(found["due"], float) and 3500 < found["due"] - time.time() <= 3600

    # Bounded: with --scan 10 the 26th entry of the normal stream is not reached, and it says so.
    code, _, err = show(project, capsys, "bulk-25", "--scan", "10")
    assert code == 1
    assert "no job 'bulk-25' on delta-sync" in err
    assert f"searched only the first 10 entries of {project.queue_keys(QUEUE).stream} " in err
    assert show(project, capsys, "bulk-5", "--scan", "10")[0] == 0
    code, _, err = show(project, capsys, "nope")
    assert code == 1 and "no job 'nope' on delta-sync: not waiting, delayed or running" in err
    assert "searched only" not in err  # everything was searched


def test_a_running_job_names_its_worker_and_a_retry_waiting_is_delayed(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    worker = project.start_worker(QUEUE)
    kwargs = json.dumps({"seconds": 60})
    assert project.bootstrap("enqueue", QUEUE, "slow", "--id", "busy", "--kwargs", kwargs) == 0
    assert project.bootstrap("enqueue", QUEUE, "fail", "--id", "doomed") == 0
    capsys.readouterr()

    found = wait_for(lambda: (f := shown_json(project, capsys, "busy"))["state"] == "running" and f, 60, "busy runs")
    assert f"-{worker.pid}-" in str(found["consumer"])  # the consumer is <host>-<pid>-<random>
    assert found["deliveries"] == 1 and isinstance(found["held_for"], float) and found["held_for"] >= 0
    code, out, _ = show(project, capsys, "busy")
    assert code == 0
    assert f"running: held by consumer {found['consumer']} for " in out and "(delivered 1 time(s), normal level)" in out
    assert "no live worker is consumer" not in out  # its worker beats
    # A holder that no longer beats (SIGKILLed, hung) is said to be gone, with when the job moves on.
    worker.kill()
    worker.wait(10)
    client = redis_client(project)
    client.delete(f"{project.key_prefix}:workers")  # its last beat, as if older than 30 s
    client.close()
    code, out, _ = show(project, capsys, "busy")
    assert f"no live worker is consumer {found['consumer']}" in out and "visibility_timeout" in out, out
    worker = project.start_worker(QUEUE)

    # Its first attempt failed: the retry waits in the delayed set for an hour, as attempt 2.
    found = wait_for(lambda: (f := shown_json(project, capsys, "doomed"))["state"] == "delayed" and f, 60, "a retry")
    assert found["job"]["labels"]["attempt"] == 2  # type: ignore[index]
    code, out, _ = show(project, capsys, "doomed")
    assert code == 0 and "delayed until" in out and "; attempt 2" in out
