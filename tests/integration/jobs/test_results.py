"""Results: a completed job's return value kept with its record, shown by `jobs show`, awaited from
Python with taskiq's `wait_result()`; with a worker process on real Redis and MongoDB."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap.errors import JobFailed, ResultNotKept
from bootstrap.jobs.contract import Runtime
from bootstrap.jobs.wiring import make_broker, register_task
from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import Project, make_project, wait_for

QUEUE = "delta-sync"
CAP = 200  # the queue's results.max_bytes
TASKS = """run-delta-sync: {timeout: 10m}
      give-back: {handler: "handlers_for_tests:give_back"}
      give-back-a-set: {handler: "handlers_for_tests:give_back_a_set"}
      fail: {handler: "handlers_for_tests:always_fail"}"""


@pytest.fixture
def project(tmp_path: Path, mongo_uri: str, redis_server: RedisServer) -> Iterator[Project]:
    def edit(project: Project) -> None:
        project.edit("queues.yaml", "run-delta-sync: {timeout: 10m}", TASKS)
        tasks = "    tasks:\n      run-delta-sync"
        project.edit("queues.yaml", tasks, f"    results: {{max_bytes: {CAP}}}\n{tasks}")

    yield from make_project(tmp_path, mongo_uri, redis_server.uri, edit)


def test_wait_result_returns_the_value_or_the_failure(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in project.env.items():
        monkeypatch.setenv(name, value)
    project.start_worker(QUEUE)
    runtime = Runtime.from_spec(project.spec())

    async def test() -> None:
        broker = make_broker(runtime, QUEUE)
        give_back = register_task(broker, runtime, QUEUE, "give-back")
        fail = register_task(broker, runtime, QUEUE, "fail")
        await broker.startup()
        try:
            sent = await give_back.kiq(mailbox="m-1")
            result = await sent.wait_result(check_interval=0.05, timeout=30)
            assert not result.is_err and result.return_value == {"job": sent.task_id, "kwargs": {"mailbox": "m-1"}}
            failed = await (await fail.kiq()).wait_result(check_interval=0.05, timeout=30)
            assert failed.is_err
            with pytest.raises(JobFailed, match="RuntimeError: boom on attempt 1"):
                failed.raise_for_error()
        finally:
            await broker.shutdown()

    asyncio.run(test())


def test_jobs_show_prints_the_result_and_says_when_it_was_not_json(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.start_worker(QUEUE)
    assert project.bootstrap("enqueue", QUEUE, "give-back", "--id", "r-1", "--kwargs", '{"n": 1}') == 0
    assert project.bootstrap("enqueue", QUEUE, "give-back-a-set", "--id", "r-2") == 0
    capsys.readouterr()

    def shown(job_id: str) -> str | None:
        code = project.bootstrap("jobs", "show", QUEUE, job_id)
        out = capsys.readouterr().out
        return out if code == 0 and "completed" in out.partition("\n")[0] else None

    out = wait_for(lambda: shown("r-1"), 30, "job r-1's record")
    assert "job r-1 (give-back on delta-sync), completed" in out
    assert 'result: {"job": "r-1", "kwargs": {"n": 1}}' in out
    out = wait_for(lambda: shown("r-2"), 30, "job r-2's record")
    said = "result: not kept: the return value is not JSON (Object of type set is not JSON serializable): {1, 2, 3}"
    assert said in out
    assert project.bootstrap("jobs", "show", QUEUE, "r-1", "--json") == 0
    record = json.loads(capsys.readouterr().out)
    assert record["outcome"] == "completed" and record["result"] == {"job": "r-1", "kwargs": {"n": 1}}
    assert project.bootstrap("jobs", "show", QUEUE, "nope") == 1
    assert "no job 'nope' on delta-sync" in capsys.readouterr().err


def test_a_result_over_the_cap_is_not_kept_and_says_its_size(
    project: Project, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in project.env.items():
        monkeypatch.setenv(name, value)
    project.start_worker(QUEUE)
    runtime = Runtime.from_spec(project.spec())
    blob = "x" * 500

    async def test() -> str:
        broker = make_broker(runtime, QUEUE)
        give_back = register_task(broker, runtime, QUEUE, "give-back")
        await broker.startup()
        try:
            small = await give_back.kiq(n=1)  # under the cap: kept
            kept = await small.wait_result(check_interval=0.05, timeout=30)
            assert not kept.is_err and kept.return_value == {"job": small.task_id, "kwargs": {"n": 1}}
            sent = await give_back.kiq(blob=blob)
            size = len(json.dumps({"job": sent.task_id, "kwargs": {"blob": blob}}))
            result = await sent.wait_result(check_interval=0.05, timeout=30)
            assert result.is_err and result.return_value is None
            with pytest.raises(ResultNotKept) as caught:
                result.raise_for_error()
            said = str(caught.value)
            assert f"job {sent.task_id} completed, but its result was not kept: the return value is {size:,} " in said
            assert f"more than the queue's results.max_bytes ({CAP})" in said
            return sent.task_id
        finally:
            await broker.shutdown()

    job_id = asyncio.run(test())
    assert project.bootstrap("jobs", "show", QUEUE, job_id, "--json") == 0
    record = json.loads(capsys.readouterr().out)
    assert record["state"] == "completed" and record["result"] is None and record["result_bytes"] > CAP
    def warnings() -> list[str]:
        return [line for line in project.log("worker").splitlines() if f"job {job_id}: its return" in line]

    warned = wait_for(warnings, 10, "the warning")
    assert len(warned) == 1 and "WARNING" in warned[0], warned
