"""Review rev5: a job id with a newline still forges lines in what `enqueue` and `jobs show` print.

README ("Every command ..."): "values from outside (job ids, request paths) are written with their
control characters escaped (`\\n`, `\\x1b`): they cannot forge a log line or drive the terminal".
console.py escapes ESC and the other control characters but keeps newline and tab (the text it is
given may hold lines of bootstrap's own), so an id from outside printed through `console.out` keeps
its newline. Seen: `bootstrap enqueue delta-sync run-delta-sync --id $'s-1\\nok    FORGED LINE'`
prints `enqueued 1 job(s) on delta-sync: s-1` then a line `ok    FORGED LINE`; `jobs show` the
same (`job s-1` / `ok    FORGED LINE (run-delta-sync on delta-sync), waiting ...`). A script
reading `jobs show` or `jobs failed` output line by line sees the forged line as its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import Project, make_project

HOSTILE = "s-1\nok    FORGED LINE"


@pytest.fixture
def project(tmp_path: Path, mongo_uri: str, redis_server: RedisServer) -> Iterator[Project]:
    yield from make_project(tmp_path, mongo_uri, redis_server.uri)


def test_a_job_id_with_a_newline_is_refused_and_forges_no_printed_line(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert project.bootstrap("enqueue", "delta-sync", "run-delta-sync", "--id", HOSTILE) == 1
    printed = capsys.readouterr()
    assert "a job id is printable text, without newline, tab or control characters: 's-1\\nok" in printed.err
    lines = (printed.out + printed.err).splitlines()
    assert not [line for line in lines if line.startswith("ok    FORGED LINE")], lines
    assert project.bootstrap("jobs", "show", "delta-sync", "s-1") == 1  # nothing was enqueued


def test_a_job_id_with_a_control_character_is_refused_from_python(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from taskiq.exceptions import SendTaskError

    from bootstrap.jobs.broker import StreamBroker
    from bootstrap.jobs.contract import Runtime
    from bootstrap.jobs.runtime import queue_runtime

    for name, value in project.env.items():  # the project's Redis, as its processes see it
        monkeypatch.setenv(name, value)

    async def send() -> BaseException | None:
        broker = StreamBroker(queue_runtime(Runtime.from_spec(project.spec()), "delta-sync"))
        await broker.startup()
        try:
            task = broker.register_task(lambda: None, task_name="run-delta-sync")
            await task.kicker().with_task_id("x\x1b[2Ky").kiq()
        except SendTaskError as exc:
            return exc.__cause__
        finally:
            await broker.shutdown()
        return None

    cause = asyncio.run(send())
    assert cause is not None and "a job id is printable text" in str(cause)
