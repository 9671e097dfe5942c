"""What plan/apply send to a replica set, watched with pymongo's command monitoring against
SecantusDB (which answers `hello` as the primary of a one-node set): commitQuorum on every
createIndexes, w: "majority" on the lock and history writes, majority read concern on lock reads,
and apply planning again when the primary changed between the plan and an operation.

SecantusDB cannot hold an election: the change of primary is an identity the test hands the watch
(the `hello` it compares against is the server's own). What an election does to a real set is in
docs/scaling.md."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient, monitoring
from pymongo.database import Database

from bootstrap.engine import apply as applying
from bootstrap.engine.history import APPLIES, last_apply
from bootstrap.engine.lock import LOCKS, LeaseLock
from bootstrap.engine.mongo import plan as mongo
from bootstrap.engine.mongo.execute import execute
from bootstrap.engine.mongo.live import read_live_state
from bootstrap.engine.mongo.operations import CreateIndexes, Operation, ShardCollection
from bootstrap.engine.mongo.server import REPLICA_SET, ServerRole
from bootstrap.engine.ops import Options
from bootstrap.engine.render import plan_text
from bootstrap.errors import ApplyFailed, OperationFailed
from bootstrap.spec.load import load_spec
from bootstrap.spec.model import Spec
from tests.conftest import copy_config


class Sent(monitoring.CommandListener):
    """Every command started, as sent."""

    def __init__(self) -> None:
        self.commands: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.commands.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def named(self, name: str, collection: str | None = None) -> list[dict[str, Any]]:
        return [c for c in self.commands if name in c and (collection is None or c[name] == collection)]


@pytest.fixture
def sent() -> Sent:
    return Sent()


@pytest.fixture
def db(mongo_uri: str, sent: Sent) -> Iterator[Database[dict[str, Any]]]:
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri, event_listeners=[sent], tz_aware=True)
    yield client.get_default_database()
    client.drop_database(client.get_default_database().name)
    client.close()


@pytest.fixture
def config_dir(tmp_path: Path, mongo_uri: str, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MONGODB_URI", mongo_uri)
    monkeypatch.delenv("REDIS_URL", raising=False)
    return copy_config(tmp_path / "project" / "config", key_prefix)


def apply(spec: Spec, db: Database[Any], lines: list[str] | None = None) -> list[Operation]:
    return applying.apply(spec, db, None, Options(), (lines if lines is not None else []).append)


def test_every_create_indexes_carries_the_commit_quorum(config_dir: Path, db: Database[Any], sent: Sent) -> None:
    apply(load_spec(config_dir), db)
    builds = sent.named("createIndexes")
    assert len(builds) == 9  # one per collection
    assert {b["commitQuorum"] for b in builds} == {"votingMembers"}  # MongoDB's default, by default

    settings = config_dir / "bootstrap.yaml"
    quorum = "  ipv4_only: true\n  commit_quorum: majority"
    settings.write_text(settings.read_text().replace("  ipv4_only: true", quorum))
    db.client.drop_database(db.name)
    sent.commands.clear()
    apply(load_spec(config_dir), db)
    assert {b["commitQuorum"] for b in sent.named("createIndexes")} == {"majority"}


def test_lock_and_history_are_majority_writes_and_lock_reads_majority_reads(
    config_dir: Path, db: Database[Any], sent: Sent
) -> None:
    apply(load_spec(config_dir), db)
    own = [c for c in sent.commands if c.get("update") == LOCKS or c.get("delete") == LOCKS
           or c.get("insert") == APPLIES]
    assert {next(iter(c)) for c in own} == {"update", "delete", "insert"}  # acquire, release, record
    assert all(c["writeConcern"] == {"w": "majority", "wtimeout": 10000} for c in own)
    sent.commands.clear()
    lock = LeaseLock(db, "probe")
    lock.holder()
    assert [c["readConcern"] for c in sent.named("find", LOCKS)] == [{"level": "majority"}]


class ElectionBeforeFirstOperation(mongo.PrimaryWatch):
    """A watch whose plan-time primary is made to differ from the server's before the first
    operation(s): what an election between plan and execute looks like to apply."""

    def __init__(self, db: Database[Any], elections: int) -> None:
        super().__init__(db)
        self.elections = elections
        self.checks = 0

    def check(self, op: Operation) -> None:
        self.checks += 1
        if self.elections and self.planned is not None:
            self.elections -= 1
            self.planned = replace(self.planned, election_id="7fffffff00000000000000ff")
        super().check(op)


def run_with(spec: Spec, db: Database[Any], watch: mongo.PrimaryWatch, lines: list[str]) -> list[Operation]:
    side = mongo.backend(spec, db, watch)
    planned = applying.plan_checked(db.name, (side,), Options())
    return applying.execute(spec, db, planned, lines.append, applying.threading.Event(),
                            replan=lambda: applying.plan_checked(db.name, (side,), Options()))


def test_apply_plans_again_when_the_primary_changed_and_converges(config_dir: Path, db: Database[Any]) -> None:
    spec = load_spec(config_dir)
    watch = ElectionBeforeFirstOperation(db, elections=1)
    lines: list[str] = []
    done = run_with(spec, db, watch, lines)
    assert watch.planned is not None and watch.planned.kind == REPLICA_SET  # SecantusDB's one-node set
    assert [line for line in lines if "planning again" in line] == [
        next(line for line in lines if "primary changed since the plan" in line)]
    assert "planning again (1/3)" in lines[0]
    live = read_live_state(db, [c.name for c in spec.collections])
    assert sorted(live.collections) == sorted(c.name for c in spec.collections)
    assert sum(op.count() for op in done if isinstance(op, CreateIndexes)) == 23
    assert last_apply(db)["outcome"] == "success"  # type: ignore[index]


def test_apply_stops_after_too_many_elections_and_records_it(config_dir: Path, db: Database[Any]) -> None:
    spec = load_spec(config_dir)
    lines: list[str] = []
    with pytest.raises(ApplyFailed, match=r"primary changed since the plan.*planned again 3 time"):
        run_with(spec, db, ElectionBeforeFirstOperation(db, elections=10), lines)
    assert len([line for line in lines if "planning again" in line]) == 3
    record = last_apply(db)
    assert record is not None and record["outcome"] == "failed" and record["operations"] == []


def test_a_standalone_plan_is_never_checked_against_a_primary(config_dir: Path, db: Database[Any], sent: Sent) -> None:
    watch = mongo.PrimaryWatch(db)
    watch.planned = ServerRole()  # standalone: no election to miss
    sent.commands.clear()
    watch.check(Operation("x"))
    assert sent.named("hello") == []


def test_off_a_mongos_the_shipped_shard_declarations_are_one_note_line(config_dir: Path, db: Database[Any]) -> None:
    spec = load_spec(config_dir)
    apply(spec, db)
    text = plan_text(applying.full_plan(spec, db, None, Options()), "target")
    notes = [line for line in text if "shard" in line]
    assert notes == ["sharding","  ? shard: declared on emailevents, mailboxes; not applied: replica set 'secantus' "
                     f"(primary {db.client.admin.command('hello')['primary']}) is not a mongos "
                     "(shard-key indexes are still created)"]
    assert text[-1] == "No changes: the database matches the spec."


def test_shard_collection_on_a_server_without_sharding_fails_naming_the_collection(db: Database[Any]) -> None:
    with pytest.raises(OperationFailed, match=r"^mailboxes: shard collection mailboxes on \{userId: 1\}.* failed "
                       r"\(code 59\)"):
        execute(db, ShardCollection("mailboxes", (("userId", 1),)), lambda line: None)
