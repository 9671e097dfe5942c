"""`bootstrap enqueue`: only JSON arguments, and many jobs in bounded memory (real Redis)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import Project, make_project, redis_client


@pytest.fixture
def project(tmp_path: Path, mongo_uri: str, redis_server: RedisServer) -> Iterator[Project]:
    yield from make_project(tmp_path, mongo_uri, redis_server.uri)


@pytest.mark.parametrize(
    ("kwargs", "shown"),
    [('{"x": NaN}', "NaN"), ('{"x": [Infinity]}', "Infinity"), ('{"x": -Infinity}', "-Infinity"),
     ('{"x": 1e999}', "1e999")],
)  # fmt: skip
def test_enqueue_refuses_numbers_json_does_not_have(
    project: Project, kwargs: str, shown: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """NaN used to be accepted (exit 0) and the handler received None."""
    assert project.bootstrap("enqueue", "delta-sync", "run-delta-sync", "--kwargs", kwargs) == 1
    err = capsys.readouterr().err
    assert f"--kwargs: {shown} is not a JSON number" in err and "Traceback" not in err
    client = redis_client(project)
    assert client.xlen(project.queue_keys("delta-sync").stream) == 0
    client.close()


def peak_memory_of_enqueue(project: Project, count: int) -> float:
    """Peak resident memory (MiB) of a `bootstrap enqueue --count COUNT` process."""
    probe = (
        "import resource, sys\n"
        "from bootstrap.cli.main import main\n"
        "code = main(sys.argv[1:])\n"
        "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
        "sys.exit(code)\n"
    )
    args = ["enqueue", "--config", str(project.config), "delta-sync", "run-delta-sync", "--count", str(count),
            "--kwargs", '{"mailboxId": "m-1"}', "--id", f"n{count}"]  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", probe, *args], env={**os.environ, **project.env}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return float(result.stdout.split("PEAK")[1])


def test_enqueue_of_many_jobs_streams_them_in_bounded_memory(project: Project) -> None:
    """`enqueue --count 500000` used to hold every message at once (475 MB)."""
    few = peak_memory_of_enqueue(project, 1_000)
    many = peak_memory_of_enqueue(project, 100_000)  # held at once, about 95 MB more
    assert many - few < 25, (few, many)
    client = redis_client(project)
    stream = project.queue_keys("delta-sync").stream
    assert client.xlen(stream) == 101_000
    first = json.loads(client.xrange(stream, count=1)[0][1]["data"])
    assert first["task_id"] == "n1000-0" and first["kwargs"] == {"mailboxId": "m-1"}
    last = json.loads(client.xrevrange(stream, count=1)[0][1]["data"])
    assert last["task_id"] == "n100000-99999"
    client.close()
