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


@pytest.mark.xfail(
    strict=True, reason="console.out keeps a job id's newline: enqueue and jobs show print a forged line"
)
def test_a_job_id_with_a_newline_forges_no_printed_line(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert project.bootstrap("enqueue", "delta-sync", "run-delta-sync", "--id", HOSTILE) == 0
    assert project.bootstrap("jobs", "show", "delta-sync", HOSTILE) == 0
    printed = capsys.readouterr()
    lines = (printed.out + printed.err).splitlines()
    assert not [line for line in lines if line.startswith("ok    FORGED LINE")], lines
