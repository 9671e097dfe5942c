"""Found walking through the README as a new user: `bootstrap enqueue` (no worker needed)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import Project, make_project, redis_client

QUEUE, TASK = "delta-sync", "run-delta-sync"


@pytest.fixture
def project(tmp_path: Path, mongo_uri: str, redis_server: RedisServer) -> Iterator[Project]:
    yield from make_project(tmp_path, mongo_uri, redis_server.uri)


def test_delay_takes_a_plain_number_of_seconds(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    sent_at = time.time()
    assert project.bootstrap("enqueue", QUEUE, TASK, "--delay", "30") == 0, capsys.readouterr().err
    client = redis_client(project)
    [(_, due)] = client.zrange(project.queue_keys(QUEUE).delayed, 0, -1, withscores=True)
    client.close()
    assert abs(due - (sent_at + 30)) < 5


def test_a_partly_deduplicated_count_names_a_job_it_enqueued(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    assert project.bootstrap("enqueue", QUEUE, TASK, "--id", "cnt", "--count", "3", "--delay", "1h") == 0
    capsys.readouterr()
    assert project.bootstrap("enqueue", QUEUE, TASK, "--id", "cnt", "--count", "4", "--delay", "1h") == 0
    said = capsys.readouterr().out
    assert "enqueued 1 job(s)" in said and "3 id(s) already waiting, delayed or running" in said
    assert "cnt-0" not in said.splitlines()[0], said  # cnt-3 is the one enqueued
