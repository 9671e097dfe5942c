"""Review 9 (real servers, in process): problems found in a943aec and in how the day's features hold
together, each as a test of the right behaviour. See /work/notes/review-rev9.md."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pymongo.database import Database

from bootstrap.engine import apply as applying
from bootstrap.engine.mongo import plan as mongo
from bootstrap.engine.mongo.operations import CreateIndexes, Operation
from bootstrap.engine.ops import Options
from bootstrap.engine.reviewed import Reviewed, plan_document
from bootstrap.errors import BootstrapError
from bootstrap.local.servers import RedisServer
from bootstrap.spec.load import load_spec
from bootstrap.spec.model import RateLimit
from tests.integration.jobs.test_broker import job
from tests.support.read_loop import first_delivered
from tests.support.runtimes import in_process_runtime

# --- apply --plan: a reviewed rebuild interrupted by an election ---------------------------------


class ElectionBeforeTheBuild(mongo.PrimaryWatch):
    """The primary changes after the rebuild's drop, before the createIndexes that builds the index
    again (what apply sees of an election: test_mongo_replication.py plays it this way on SecantusDB).
    The same replan follows an election *during* the build (AutoReconnect -> PrimaryChanged)."""

    def __init__(self, db: Database[Any]) -> None:
        super().__init__(db)
        self.elections = 1

    def check(self, op: Operation) -> None:
        if self.elections and self.planned is not None and isinstance(op, CreateIndexes):
            self.elections -= 1
            self.planned = replace(self.planned, election_id="7fffffff00000000000000ff")
        super().check(op)


def test_a_reviewed_rebuild_cut_by_an_election_does_not_leave_the_index_dropped(
    config_dir: Path, seed_db: Database[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    applying.apply(load_spec(config_dir), seed_db, None, Options(), [].append)
    assert "email_1" in seed_db.users.index_information()
    users = config_dir / "collections" / "users.yaml"
    unique = "  - keys: {email: 1}\n    unique: true\n"
    users.write_text(users.read_text().replace(unique, unique + "    sparse: true\n"))
    spec, options = load_spec(config_dir), Options(allow_rebuild=True)
    planned = applying.full_plan(spec, seed_db, None, options)
    assert [type(op).__name__ for op in planned.changes] == ["RebuildIndex", "CreateIndexes"], planned.changes
    saved = tmp_path / "plan.json"
    saved.write_text(json.dumps(plan_document(planned, spec.hash(), options, "m", "r"), default=str))
    reviewed = Reviewed.read(saved)

    watch = ElectionBeforeTheBuild(seed_db)
    made = mongo.backend
    monkeypatch.setattr(mongo, "backend", lambda spec, db, _=None: made(spec, db, watch))
    lines: list[str] = []
    try:
        applying.apply(spec, seed_db, None, options, lines.append, reviewed)
    except BootstrapError as exc:
        lines.append(f"stopped: {exc}")
    assert any("planning again" in line for line in lines), lines  # the election was seen
    # The reviewed plan was "rebuild email_1": what is left of it after the drop is building it.
    assert "email_1" in seed_db.users.index_information(), "\n".join(lines)


# --- rate limits: a job handed back takes a permit each time -------------------------------------


def test_a_job_handed_back_does_not_use_up_the_rate_limit(redis_server: RedisServer, key_prefix: str) -> None:
    runtime = in_process_runtime(redis_server.uri, key_prefix, "q", rate_limit=RateLimit(max=1, per=60.0))
    v2 = job("v2-job", task="task-of-release-2")
    first = asyncio.run(first_delivered(runtime, redis_server.uri, v2, timeout=5))
    assert first == "good", "no job delivered within 5s: the one permit of the minute went to v2-job, handed back"


# --- a job of another release's task with arguments this release's formatter refuses ------------


@pytest.mark.parametrize(
    "data",
    [
        b'{"task_id":"nan-job","task_name":"task-of-release-2","labels":{},"args":[],"kwargs":{"x":NaN}}',
        b'{"task_id":"id\\u001b[2J","task_name":"task-of-release-2","labels":{},"args":[],"kwargs":{}}',
    ],
    ids=["nan-argument", "control-character-in-id"],
)
def test_a_job_handed_back_that_the_formatter_refuses_does_not_end_the_read_loop(
    redis_server: RedisServer, key_prefix: str, data: bytes
) -> None:
    runtime = in_process_runtime(redis_server.uri, key_prefix, "q")
    assert asyncio.run(first_delivered(runtime, redis_server.uri, data)) == "good"  # the loop goes on past it
