"""Operator scenario: `bootstrap enqueue --count N` (streamed in batches of 1000) fails part-way: Redis
is full (`maxmemory` with `noeviction`, as `apply` requires) or its disk is full (MISCONF). The
batches sent before the failure stay queued; the error should say how many, or the operator runs the
command again and enqueues those twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import open_project, redis_client


def test_an_enqueue_count_that_fails_part_way_says_how_many_were_enqueued(
    tmp_path: Path, mongo_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    server = RedisServer(tmp_path / "redis", appendonly=False, extra=("--maxmemory", "6mb"))
    server.start()
    try:
        with open_project(tmp_path, mongo_uri, server.uri) as project:
            capsys.readouterr()
            pad = "x" * 2000
            code = project.bootstrap("enqueue", "delta-sync", "run-delta-sync", "--kwargs", f'{{"pad": "{pad}"}}',
                                     "--count", "5000")
            out, err = capsys.readouterr()
            client = redis_client(project)
            queued = client.xlen(project.queue_keys("delta-sync").stream)
            client.close()
    finally:
        server.stop()
    assert code == 1 and "OOM" in err, (out, err)
    assert 0 < queued < 5000, queued  # the failure came part-way, as the scenario needs
    assert f"{queued} of them were enqueued before the error and stay queued" in err, (
        f"{queued} jobs are queued but the output does not say so:\n{out}{err}"
    )
    assert "sending all 5000 again enqueues them again" in err and "Traceback" not in err, err
