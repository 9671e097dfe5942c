"""Review 8 (real servers, in process): problems found in today's changes, each as a test of the
right behaviour. See /work/notes/review-rev8.md."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from pymongo.database import Database

from bootstrap.engine import apply as applying
from bootstrap.engine.mongo import plan as mongo
from bootstrap.engine.mongo.operations import Operation
from bootstrap.engine.ops import Options
from bootstrap.engine.reviewed import Reviewed, plan_document
from bootstrap.errors import BootstrapError
from bootstrap.jobs.broker import StreamBroker
from bootstrap.layout.keys import as_text
from bootstrap.local.servers import RedisServer
from bootstrap.spec.load import load_spec
from tests.integration.jobs.test_broker import job, make_broker, next_message, owners
from tests.support.read_loop import first_delivered
from tests.support.runtimes import in_process_runtime

# --- jobs of a task the worker does not serve (broker.hand_back) ----------------------------------


async def _delayed_copies(client: aioredis.Redis, broker: StreamBroker, job_id: str) -> int:
    members = await client.zrange(broker.keys.delayed, 0, -1)
    return sum(1 for member in members if json.loads(member)["task_id"] == job_id)


def test_a_hand_back_the_replicas_do_not_confirm_does_not_end_the_read_loop(
    redis_server: RedisServer, key_prefix: str
) -> None:
    """`redis.wait: {replicas: 1}` (standalone or sentinel) while the replica lags or is down: every
    hand-back raises NotReplicated ("the retry was stored, but 0 of 1 replica(s) confirmed it"). A
    worker of the previous release in a rollout then dies on the first job of a new task it reads,
    and again after each restart (its launcher gives up after 5 a minute, stopping every queue)."""
    runtime = in_process_runtime(redis_server.uri, key_prefix, "q", wait_replicas=1, wait_timeout=0.1)
    v2 = job("v2-job", task="task-of-release-2")
    assert asyncio.run(first_delivered(runtime, redis_server.uri, v2)) == "good"  # the loop goes on past it


def test_a_worker_that_dies_while_handing_back_leaves_one_copy_of_the_job(
    redis_server: RedisServer, key_prefix: str
) -> None:
    async def test() -> None:
        dying = make_broker(redis_server, key_prefix, visibility_timeout=1)
        await dying.startup()
        client = aioredis.Redis.from_url(redis_server.uri)
        try:
            v2 = as_text(await client.xadd(dying.keys.stream, {"data": job("v2-job", task="task-of-release-2")}))
            await client.xadd(dying.keys.stream, {"data": job("good")})
            messages = dying.listen()
            await next_message(messages)  # v2-job handed back (delayed) on the way to this one
            # The worker dies here (SIGKILL, OOM): its queued acknowledgements never reach Redis.
            # Handed back in one step: delayed, and no longer pending (nothing left to take over).
            assert v2 not in await owners(client, dying.keys) and await _delayed_copies(client, dying, "v2-job") == 1
            await asyncio.sleep(1.3)  # past the visibility timeout: another worker takes over
            other = make_broker(redis_server, key_prefix, visibility_timeout=1)
            await other.startup()
            taken = other.listen()
            await next_message(taken)  # "good", taken over; v2-job taken over too, and handed back
            other.stop_listening()
            await taken.aclose()
            await other.acks.flush()
            copies = await _delayed_copies(client, dying, "v2-job") + (v2 in await owners(client, dying.keys))
            assert copies == 1, f"{copies} copies of v2-job: it runs {copies} times"
            await other.shutdown()
        finally:
            await client.aclose()

    asyncio.run(test())


# --- apply --plan: the reviewed plan after an election -------------------------------------------


class ElectionAndAHandMadeIndex(mongo.PrimaryWatch):
    """Before the first operation: a DBA creates an index by hand, then the primary changes (what
    apply sees of an election: test_mongo_replication.py plays it the same way on SecantusDB)."""

    def __init__(self, db: Database[Any], by_hand: Database[Any]) -> None:
        super().__init__(db)
        self.by_hand = by_hand
        self.elections = 1

    def check(self, op: Operation) -> None:
        if self.elections and self.planned is not None:
            self.elections -= 1
            self.by_hand.users.create_index("displayName")
            self.planned = replace(self.planned, election_id="7fffffff00000000000000ff")
        super().check(op)


def test_apply_with_a_reviewed_plan_runs_nothing_unreviewed_after_an_election(
    config_dir: Path, seed_db: Database[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    applying.apply(load_spec(config_dir), seed_db, None, Options(), [].append)
    users = config_dir / "collections" / "users.yaml"
    users.write_text(users.read_text().replace("indexes:\n", "indexes:\n  - keys: {lastLoginAt: -1}\n", 1))
    spec, options = load_spec(config_dir), Options(prune=True)
    planned = applying.full_plan(spec, seed_db, None, options)
    saved = tmp_path / "plan.json"
    saved.write_text(json.dumps(plan_document(planned, spec.hash(), options, "m", "r"), default=str))
    reviewed = Reviewed.read(saved)
    assert reviewed.changes == ("+ create index lastLoginAt_-1 {lastLoginAt: -1}",), reviewed.changes

    watch = ElectionAndAHandMadeIndex(seed_db, seed_db)
    made = mongo.backend
    monkeypatch.setattr(mongo, "backend", lambda spec, db, _=None: made(spec, db, watch))
    lines: list[str] = []
    started = time.monotonic()
    try:
        applying.apply(spec, seed_db, None, options, lines.append, reviewed)
    except BootstrapError as exc:
        lines.append(f"refused: {exc}")
    assert time.monotonic() - started < 60
    assert any("planning again" in line for line in lines), lines  # the election was seen
    assert "displayName_1" in seed_db.users.index_information(), lines  # never reviewed: not dropped
