"""Security review: a failed job's record keeps a password from its error text, in clear, in Redis.

Every printed path masks it (`jobs failed`, `jobs show`, the dashboard), but the record itself
(`<prefix>:queue:{q}:failed:data`, kept up to the failed retention, 24h in the shipped config)
holds `error` and `traceback` as the handler's exception said them. A driver error that quotes a
connection string (or a handler that puts one in its message) thus copies the MongoDB password into
Redis, readable by anyone who can read the queues (a Redis-only credential, a RDB/AOF backup, a
`redis-cli HGETALL`). Seen with a handler raising
`RuntimeError("could not reach mongodb://app:<password>@...")`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import Project, add_test_tasks, make_project, redis_client, wait_for

SECRET = "S3cretPw77"
HANDLER = f"""
async def leak(**kwargs):
    raise RuntimeError("could not reach mongodb://app:{SECRET}@db.internal:27017/msedb")
"""


def edit(project: Project) -> None:
    (project.root / "sec_handlers.py").write_text(HANDLER)
    add_test_tasks(project, '\n      leak: {handler: "sec_handlers:leak", retry: {attempts: 1}}\n')


@pytest.fixture
def project(tmp_path: Path, mongo_uri: str, redis_server: RedisServer) -> Iterator[Project]:
    yield from make_project(tmp_path, mongo_uri, redis_server.uri, edit)


def test_a_failed_record_keeps_no_password(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    assert project.bootstrap("enqueue", "test-jobs", "leak", "--id", "leak-1") == 0
    project.start_worker("test-jobs")
    client = redis_client(project)
    keys = project.queue_keys("test-jobs")
    stored = wait_for(lambda: client.hget(keys.record_data("failed"), "leak-1"), 30, "the failed record")
    client.close()
    assert project.bootstrap("jobs", "show", "test-jobs", "leak-1") == 0
    printed = capsys.readouterr()
    assert "app:****@db.internal" in printed.out and SECRET not in printed.out + printed.err  # printed: masked
    assert SECRET not in str(stored)
