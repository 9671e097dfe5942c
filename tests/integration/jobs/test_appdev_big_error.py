"""A job that fails with a very large error message, as a driver error that quotes the document it
could not write does (pymongo's BulkWriteError "full error" holds each failed `op`, the whole
document): found while running an app's handler that inserted a 20 MiB document.

The failure record kept the message whole, twice (`error`, and again inside `traceback`): 63 MB in
Redis for one failed job, with `retention.failed.max_count: 1000` per queue and no size bound (results
have `results.max_bytes`, 64 KiB by default, because "records live in Redis memory"); masking that
text blocked the worker's event loop for seconds ("blocked for 3.3s by code outside any job at
bootstrap/redact.py in mask": every other job of the worker waits), and the ERROR line in the log
was as large."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap.jobs.contract import Runtime
from bootstrap.jobs.wiring import make_broker, register_task
from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import Project, make_project_in_env, redis_client, wait_for

QUEUE = "delta-sync"
MESSAGE_BYTES = 8 * 1024 * 1024
BOUND = 1024 * 1024  # generous: results are not kept beyond 64 KiB by default

HANDLER = f"""
async def fail_big(**kwargs):
    # Words of 16 characters: a long run of letters and digits meets another problem (test_appdev_redact_long_words)
    raise RuntimeError("could not write the document: " + "0123456789abcdef " * ({MESSAGE_BYTES} // 17))
"""


@pytest.fixture
def project(
    tmp_path: Path, mongo_uri: str, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    def edit(project: Project) -> None:
        (project.root / "appdev_big_error.py").write_text(HANDLER)
        project.edit(
            "queues.yaml",
            "run-delta-sync: {timeout: 10m}",
            'run-delta-sync: {timeout: 10m}\n      fail-big: {handler: "appdev_big_error:fail_big"}',
        )

    yield from make_project_in_env(tmp_path, mongo_uri, redis_server.uri, edit, monkeypatch)


def test_a_huge_error_message_is_stored_bounded(project: Project) -> None:
    project.start_worker(QUEUE)
    runtime = Runtime.from_spec(project.spec())

    async def send() -> str:
        broker = make_broker(runtime, QUEUE)
        task = register_task(broker, runtime, QUEUE, "fail-big")
        await broker.startup()
        try:
            return (await task.kiq()).task_id
        finally:
            await broker.shutdown()

    job_id = asyncio.run(send())
    client = redis_client(project)
    failed = f"{project.queue_keys(QUEUE).base}:failed:data"
    raw = wait_for(lambda: client.hget(failed, job_id), 30, "the failed record")
    record = json.loads(raw)
    assert record["error"].startswith("RuntimeError: could not write the document: 0123")
    sizes = {name: len(record[name]) for name in ("error", "traceback")}
    assert all(size <= BOUND for size in sizes.values()), f"stored whole: {sizes} characters"
