"""Security review: a job id with a newline or terminal escapes forges lines in worker logs and
writes raw control characters to the operator's terminal.

Any string is accepted as a job id (`bootstrap enqueue --id`, or `.with_task_id(...)` from Python,
where a BullMQ-style deduplicating id is often built from outside data: a mailbox id, a message id).
The text log format writes it verbatim (`job started: ... id=<id>`), so a newline in it makes a
second log line of the attacker's choosing (`... job completed: ... id=forged`), and `jobs show` /
`jobs failed` / `enqueue` print ESC sequences as they are (they can clear a line, retitle the
terminal). JSON logs are not affected (json.dumps escapes them).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import Project, make_project, redis_client, wait_for

FORGED = "10:00:00 INFO    bootstrap.jobs: job completed: queue=delta-sync task=run-delta-sync id=forged"
HOSTILE_ID = f"sync-1\n{FORGED}\x1b[2K\x1b]0;owned\x07"


@pytest.fixture
def project(tmp_path: Path, mongo_uri: str, redis_server: RedisServer) -> Iterator[Project]:
    yield from make_project(tmp_path, mongo_uri, redis_server.uri)


def test_a_hostile_job_id_forges_no_log_line_and_no_terminal_escape(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    code = project.bootstrap("enqueue", "delta-sync", "run-delta-sync", "--id", HOSTILE_ID)
    printed = capsys.readouterr()
    if code != 0:  # refusing such an id is a fix too
        assert "\x1b" not in printed.out + printed.err
        return
    project.start_worker("delta-sync")
    client = redis_client(project)
    keys = project.queue_keys("delta-sync")
    wait_for(lambda: client.zcard(keys.records("completed")) >= 1, 30, "the job to complete")
    client.close()
    assert project.bootstrap("jobs", "show", "delta-sync", HOSTILE_ID) == 0
    printed_too = capsys.readouterr()
    shown = printed.out + printed.err + printed_too.out + printed_too.err
    log = wait_for(lambda: project.log("worker") if "job completed" in project.log("worker") else "", 10, "log")
    assert "\x1b" not in shown, "an ESC sequence was printed to the terminal"
    assert "\x1b" not in log, "an ESC sequence was written to the worker's log"
    assert not any(line.startswith(FORGED) for line in log.splitlines()), "a forged line in the worker's log"
