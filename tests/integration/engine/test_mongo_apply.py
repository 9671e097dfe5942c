"""plan/apply of the MongoDB side against a real MongoDB wire-protocol server (SecantusDB, started by
the fixtures). No Redis: apply runs with the Redis side left out (the CLI tests that need both are in
test_plan_apply_cli.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo import MongoClient, monitoring
from pymongo.database import Database
from pymongo.errors import WriteError

from bootstrap.engine import apply as applying
from bootstrap.engine.history import APPLIES
from bootstrap.engine.lock import LOCKS
from bootstrap.engine.mongo.compare import index_model
from bootstrap.engine.mongo.execute import execute
from bootstrap.engine.mongo.live import read_live_state
from bootstrap.engine.mongo.operations import (
    Blocked,
    ChangeIndex,
    CreateIndexes,
    DropIndex,
    KeepIndex,
    RebuildIndex,
    ShardingUnavailable,
)
from bootstrap.engine.mongo.plan import make_plan
from bootstrap.engine.mongo.validator import collection_validator
from bootstrap.engine.ops import Options
from bootstrap.engine.render import applied_summary, plan_text, summary
from bootstrap.errors import ApplyFailed, LockTimeout, OperationFailed, PlanBlocked
from bootstrap.spec.load import load_spec
from bootstrap.spec.model import Spec
from tests.conftest import copy_config
from tests.support import docgen
from tests.support.msedb import MSEDB_COLLECTIONS

OID = "65a1b2c3d4e5f6a7b8c9d0e1"
WRITE_COMMANDS = {
    "create",
    "createIndexes",
    "collMod",
    "dropIndexes",
    "drop",
    "insert",
    "update",
    "delete",
    "findAndModify",
}


class Commands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.names: list[str] = []
        self.lock_writes: list[str] = []  # to the apply lock's lease (bootstrap_locks): not the data's

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in WRITE_COMMANDS and event.command.get(event.command_name) == LOCKS:
            self.lock_writes.append(event.command_name)
            return
        self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def writes(self) -> list[str]:
        return [name for name in self.names if name in WRITE_COMMANDS]


@pytest.fixture
def commands() -> Commands:
    return Commands()


@pytest.fixture
def db(mongo_uri: str, commands: Commands) -> Iterator[Database[dict[str, Any]]]:
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri, event_listeners=[commands], tz_aware=True)
    yield client.get_default_database()
    client.drop_database(client.get_default_database().name)
    client.close()


@pytest.fixture
def spec(config_dir: Path) -> Spec:
    return load_spec(config_dir)


@pytest.fixture
def config_dir(tmp_path: Path, mongo_uri: str, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped config pointed at this test's database. Unlike the shared fixture it starts no
    Redis server: nothing here talks to Redis."""
    monkeypatch.setenv("MONGODB_URI", mongo_uri)
    monkeypatch.delenv("REDIS_URL", raising=False)
    return copy_config(tmp_path / "project" / "config", key_prefix)


def apply(spec: Spec, db: Database[Any], **options: Any) -> list[Any]:
    """apply with the Redis side left out."""
    return applying.apply(spec, db, None, Options(**options), lambda line: None)


def edit(config_dir: Path, file: str, old: str, new: str) -> None:
    path = config_dir / file
    text = path.read_text()
    assert old in text, f"{old!r} not in {file}"
    path.write_text(text.replace(old, new, 1))


def make_unique(config_dir: Path, also: str = "") -> None:
    """Declare mailboxes.userId_1 unique (`also`: other option lines with it)."""
    keys = "  - keys: {userId: 1}\n"
    edit(config_dir, "collections/mailboxes.yaml", keys, f"{keys}    unique: true\n{also}")


def test_cold_apply_creates_every_collection_validator_and_index(spec: Spec, db: Database[Any]) -> None:
    apply(spec, db)
    live = read_live_state(db, [c.name for c in spec.collections])
    assert sorted(live.collections) == sorted(c.name for c in spec.collections)
    assert len(live.collections) == 9
    total = 0
    for coll in spec.collections:
        current = live.collections[coll.name]
        assert current.validator == collection_validator(coll)
        assert (current.validation_level, current.validation_action) == ("strict", "error")
        for index in coll.indexes:
            found = current.index(index.name)
            assert found is not None, f"{coll.name}.{index.name} missing"
            wanted = index_model(index)
            assert found.keys == wanted.keys
            for option in ("unique", "sparse", "expireAfterSeconds"):
                where = (coll.name, index.name, option)
                assert found.options.get(option) == wanted.options.get(option), where
            total += 1
        assert len(current.indexes) == len(coll.indexes)
    assert total == 23
    assert live.collections["emailevents"].index("timestamp_1").ttl == 90 * 86400  # type: ignore[union-attr]
    assert live.collections["stagedemails"].index("expiresAt_1").ttl == 0  # type: ignore[union-attr]
    assert live.collections["notifications"].index("createdAt_1").ttl == 30 * 86400  # type: ignore[union-attr]
    users = live.collections["users"].index("microsoftId_1")
    assert users is not None and users.options.get("unique") and users.options.get("sparse")
    record = db[APPLIES].find_one()
    assert record is not None and record["outcome"] == "success" and record["specHash"] == spec.hash()


def test_second_apply_sends_no_write_command(spec: Spec, db: Database[Any], commands: Commands) -> None:
    assert apply(spec, db)
    commands.names.clear()
    commands.lock_writes.clear()
    assert apply(spec, db) == []
    assert commands.writes() == [] and commands.lock_writes == []  # not even the lock
    # One listCollections plus one listIndexes per collection: the round trips a no-op costs.
    reads = [n for n in commands.names if n in ("listCollections", "listIndexes")]
    assert reads.count("listCollections") == 1 and reads.count("listIndexes") == 9


def test_cold_apply_sends_one_create_indexes_per_collection(spec: Spec, db: Database[Any], commands: Commands) -> None:
    apply(spec, db)
    assert commands.names.count("createIndexes") == 9
    assert commands.names.count("create") == 9


def test_changed_ttl_is_changed_in_place(config_dir: Path, db: Database[Any], commands: Commands) -> None:
    apply(load_spec(config_dir), db)
    edit(config_dir, "collections/emailevents.yaml", "ttl: 90d", "ttl: 30d")
    spec = load_spec(config_dir)
    plan = make_plan(spec, db, Options())
    assert [type(op) for op in plan.changes] == [ChangeIndex]
    assert "ttl 90d -> 30d" in plan.changes[0].describe()[0]
    commands.names.clear()
    apply(spec, db)
    assert "collMod" in commands.names
    assert "dropIndexes" not in commands.names and "createIndexes" not in commands.names
    live = read_live_state(db, ["emailevents"]).collections["emailevents"]
    assert live.index("timestamp_1").ttl == 30 * 86400  # type: ignore[union-attr]
    assert make_plan(spec, db, Options()).changes == ()


def test_an_index_made_unique_is_changed_in_place_with_no_flag(
    config_dir: Path, db: Database[Any], commands: Commands
) -> None:
    """MongoDB 6.0+ (SecantusDB answers as 8.x): collMod prepareUnique, then unique. The index is never
    dropped, so the collection is never without it, and no --allow-rebuild is needed."""
    apply(load_spec(config_dir), db)
    make_unique(config_dir)
    spec = load_spec(config_dir)
    shown = "\n".join(plan_text(make_plan(spec, db, Options()), "t"))
    assert "~ change index userId_1: unique false -> true (collMod, no rebuild)" in shown, shown
    commands.names.clear()
    apply(spec, db)
    assert commands.names.count("collMod") == 2 and "dropIndexes" not in commands.names
    live = read_live_state(db, ["mailboxes"]).collections["mailboxes"]
    assert live.index("userId_1").options.get("unique") is True  # type: ignore[union-attr]
    assert make_plan(spec, db, Options()).changes == ()


def test_an_index_made_not_unique_is_blocked_without_flag_and_rebuilt_with_it(
    config_dir: Path, db: Database[Any], commands: Commands
) -> None:
    """collMod cannot take `unique` back: a rebuild, behind --allow-rebuild."""
    apply(load_spec(config_dir), db)
    edit(config_dir, "collections/users.yaml", "  - keys: {email: 1}\n    unique: true\n", "  - keys: {email: 1}\n")
    spec = load_spec(config_dir)
    plan = make_plan(spec, db, Options())
    assert any(isinstance(op, Blocked) and isinstance(op.wanted, RebuildIndex) for op in plan.operations)
    commands.names.clear()
    with pytest.raises(PlanBlocked, match="allow-rebuild"):
        apply(spec, db)
    assert commands.writes() == []
    apply(spec, db, allow_rebuild=True)
    assert commands.names.count("dropIndexes") == 1
    live = read_live_state(db, ["users"]).collections["users"]
    assert not live.index("email_1").options.get("unique")  # type: ignore[union-attr]


def test_an_index_made_unique_over_duplicates_is_blocked_and_left_as_it_was(
    config_dir: Path, db: Database[Any], commands: Commands
) -> None:
    apply(load_spec(config_dir), db)
    uid = ObjectId(OID)
    db.mailboxes.insert_many([{"userId": uid, "email": "a@x.io"}, {"userId": uid, "email": "b@x.io"}])
    make_unique(config_dir)
    spec = load_spec(config_dir)
    shown = "\n".join(plan_text(make_plan(spec, db, Options()), "t"))
    assert "mailboxes: index userId_1 cannot be made unique: documents share the key" in shown, shown
    commands.names.clear()
    with pytest.raises(PlanBlocked):
        apply(spec, db)
    assert commands.writes() == []  # the lease of the lock aside: the data is read under it
    live = read_live_state(db, ["mailboxes"]).collections["mailboxes"]
    assert live.index("userId_1").options == {}  # type: ignore[union-attr]


def test_duplicates_written_after_the_plan_leave_the_index_as_it_was(config_dir: Path, db: Database[Any]) -> None:
    """The conversion itself finds them (written between plan and apply): prepareUnique is taken back,
    so the index accepts the application's writes as before, and the error names a shared key."""
    apply(load_spec(config_dir), db)
    make_unique(config_dir)
    spec = load_spec(config_dir)
    plan = make_plan(spec, db, Options())
    uid = ObjectId(OID)
    db.mailboxes.insert_many([{"userId": uid, "email": "a@x.io"}, {"userId": uid, "email": "b@x.io"}])
    (change,) = [op for op in plan.operations if isinstance(op, ChangeIndex)]
    with pytest.raises(OperationFailed) as failed:
        execute(db, change, lambda line: None)
    assert "index userId_1 cannot be made unique: documents share the key" in str(failed.value), failed.value
    assert "Index userId_1 is unchanged." in str(failed.value)
    live = db.mailboxes.index_information()["userId_1"]
    assert not live.get("unique") and not live.get("prepareUnique"), live
    db.mailboxes.insert_one({"userId": uid, "email": "c@x.io"})  # a third one is still taken


def test_a_ttl_added_to_an_existing_index_is_set_in_place(
    config_dir: Path, db: Database[Any], commands: Commands
) -> None:
    """MongoDB 5.1+: collMod adds expireAfterSeconds to an index; no rebuild, no flag."""
    apply(load_spec(config_dir), db)
    db.users.create_index("lastLoginAt", name="lastLoginAt_1")
    edit(config_dir, "collections/users.yaml", "indexes:\n", "indexes:\n  - keys: {lastLoginAt: 1}\n    ttl: 400d\n")
    spec = load_spec(config_dir)
    shown = "\n".join(plan_text(make_plan(spec, db, Options()), "t"))
    assert "~ change index lastLoginAt_1: ttl unset -> 400d (collMod, no rebuild)" in shown, shown
    commands.names.clear()
    apply(spec, db)
    assert commands.names.count("collMod") == 1 and "dropIndexes" not in commands.names
    assert db.users.index_information()["lastLoginAt_1"]["expireAfterSeconds"] == 400 * 86400


def test_undeclared_index_is_kept_then_pruned(spec: Spec, db: Database[Any]) -> None:
    apply(spec, db)
    db["users"].create_index("displayName", name="displayName_1")
    plan = make_plan(spec, db, Options())
    # The shipped shard: declarations add one note off a mongos (SecantusDB is none).
    assert [type(op) for op in plan.operations] == [KeepIndex, ShardingUnavailable] and plan.changes == ()
    apply(spec, db)
    assert "displayName_1" in db["users"].index_information()
    plan = make_plan(spec, db, Options(prune=True))
    assert [type(op) for op in plan.changes] == [DropIndex]
    apply(spec, db, prune=True)
    assert "displayName_1" not in db["users"].index_information()


def test_index_renamed_by_another_tool_is_a_rebuild(spec: Spec, db: Database[Any]) -> None:
    db.create_collection("mailboxes")
    db["mailboxes"].create_index("userId", name="by_user")
    plan = make_plan(spec, db, Options())
    blocked = [op for op in plan.operations if isinstance(op, Blocked)]
    assert blocked and "renamed by_user -> userId_1" in blocked[0].describe()[1]
    apply(spec, db, allow_rebuild=True)
    names = set(db["mailboxes"].index_information())
    assert "userId_1" in names and "by_user" not in names


def test_changed_validator_is_updated_with_coll_mod(config_dir: Path, db: Database[Any]) -> None:
    apply(load_spec(config_dir), db)
    edit(
        config_dir,
        "collections/users.yaml",
        "  displayName: string\n",
        "  displayName: {type: string, max_length: 200}\n  locale: string\n",
    )
    spec = load_spec(config_dir)
    plan = make_plan(spec, db, Options())
    text = "\n".join(line for op in plan.changes for line in op.describe())
    assert "~ field displayName" in text and "+ field locale" in text
    apply(spec, db)
    with pytest.raises(WriteError) as caught:
        db["users"].insert_one({"email": "a@b.c", "displayName": "x" * 201})
    assert caught.value.code == 121


def test_duplicate_data_under_new_unique_index_names_collection_index_and_key(spec: Spec, db: Database[Any]) -> None:
    # Found by the plan, before anything runs: apply refuses to start (an index dropped for a rebuild
    # that cannot finish would otherwise be lost), naming the collection, the index and the key.
    db["users"].insert_many([{"email": "same@example.com"}, {"email": "same@example.com"}])
    with pytest.raises(PlanBlocked) as caught:
        apply(spec, db)
    message = str(caught.value)
    assert "nothing applied" in message and "users" in message and "email_1" in message
    assert 'share the key {"email": "same@example.com"}' in message and '_id {"$oid": "' in message, message
    # No other collection of the spec was created either (the lock's lease is where the data was read under).
    assert set(db.list_collection_names()) - {LOCKS} == {"users"}


@pytest.mark.parametrize("name", MSEDB_COLLECTIONS)
def test_validator_rejects_every_violation(spec: Spec, db: Database[Any], name: str) -> None:
    apply(spec, db)
    coll = spec.collection(name)
    db[name].insert_one(docgen.minimal(coll.fields))  # the base of every violation is itself valid
    checked = 0
    for what, doc in docgen.violations(coll):
        with pytest.raises(WriteError) as caught:
            db[name].insert_one(doc)
        assert caught.value.code == 121, what
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize("name", MSEDB_COLLECTIONS)
def test_validator_accepts_every_document_the_spec_allows(spec: Spec, db: Database[Any], name: str) -> None:
    apply(spec, db)
    coll = spec.collection(name)
    unique_fields = {key for ix in coll.indexes if ix.unique for key, _ in ix.keys}

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        doc = data.draw(docgen.collection_document(coll))
        db[name].insert_one(doc)
        if unique_fields:  # keep unique indexes from rejecting the next example
            db[name].delete_many({})

    check()


def test_create_indexes_batches_by_collection(spec: Spec, db: Database[Any]) -> None:
    plan = make_plan(spec, db, Options())
    batches = [op for op in plan.changes if isinstance(op, CreateIndexes)]
    assert len(batches) == 9 and sum(len(op.indexes) for op in batches) == 23


def test_long_index_builds_report_progress(spec: Spec, db: Database[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from bootstrap.engine.mongo import execute

    monkeypatch.setattr(execute, "PROGRESS_AFTER", 0.0)
    monkeypatch.setattr(execute, "PROGRESS_EVERY", 0.05)
    db["emailevents"].insert_many([{"userId": i, "timestamp": i} for i in range(20000)])
    lines: list[str] = []
    applying.apply(spec, db, None, Options(), lines.append)
    assert any("building 4 index(es) on emailevents" in line for line in lines), lines


def test_a_crashed_holders_lease_expires_and_a_live_one_is_waited_for(spec: Spec, db: Database[Any]) -> None:
    from datetime import UTC, datetime, timedelta

    from bootstrap.engine.lock import LOCKS

    # A lease left by a run that crashed: expired, so the next apply takes it over.
    db[LOCKS].insert_one({"_id": "apply", "owner": "crashed:1", "expiresAt": datetime.now(UTC) - timedelta(seconds=1)})
    assert apply(spec, db)
    assert db[LOCKS].count_documents({}) == 0
    # A live lease (its holder keeps renewing it): apply waits, then gives up with a clear error.
    db["users"].drop_index("email_1")  # the database matched: now apply has work to do again
    db[LOCKS].insert_one({"_id": "apply", "owner": "busy:2", "expiresAt": datetime.now(UTC) + timedelta(minutes=5)})
    with pytest.raises(LockTimeout, match="busy:2"):
        apply(spec, db, lock_timeout=1.0)
    assert "email_1" not in db["users"].index_information()  # nothing was done without the lock


def test_a_rebuild_to_unique_over_duplicates_keeps_the_old_index(config_dir: Path, db: Database[Any]) -> None:
    # unique and sparse at once: a rebuild (collMod makes an index unique, not sparse)
    apply(load_spec(config_dir), db)
    make_unique(config_dir, "    sparse: true\n")
    db["mailboxes"].insert_many([{"userId": ObjectId(OID), "email": "a@x"}, {"userId": ObjectId(OID), "email": "b@x"}])
    with pytest.raises(PlanBlocked, match="unique index userId_1 cannot be built") as caught:
        apply(load_spec(config_dir), db, allow_rebuild=True)
    assert OID in str(caught.value)
    assert "userId_1" in db["mailboxes"].index_information()  # still there, not unique


def test_a_rebuild_whose_build_fails_anyway_puts_the_old_index_back(
    config_dir: Path, db: Database[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Duplicates the checks do not see (written between the plan and the build, say): createIndexes
    # fails after the rebuild (unique and sparse at once) dropped the old index, which is then built
    # again as it was.
    apply(load_spec(config_dir), db)
    make_unique(config_dir, "    sparse: true\n")
    db["mailboxes"].insert_many([{"userId": ObjectId(OID), "email": "a@x"}, {"userId": ObjectId(OID), "email": "b@x"}])
    from bootstrap.engine.mongo import execute, plan

    monkeypatch.setattr(plan, "duplicate_sample", lambda *args: None)
    monkeypatch.setattr(execute, "duplicate_sample", lambda *args: None)
    with pytest.raises(ApplyFailed, match="built again as they were: userId_1"):
        apply(load_spec(config_dir), db, allow_rebuild=True)
    info = db["mailboxes"].index_information()
    assert "userId_1" in info and not info["userId_1"].get("unique")  # back, as it was


def test_apply_reports_the_numbers_plan_showed(config_dir: Path, db: Database[Any]) -> None:
    """Counted alike: a createIndexes of four indexes is four created, as the plan said."""
    spec = load_spec(config_dir)
    planned = summary(make_plan(spec, db, Options()))
    assert planned == "Plan: 32 to create, 0 to change in place, 0 to rebuild, 0 to drop."
    assert applied_summary(apply(spec, db)) == "Applied: 32 created, 0 changed in place, 0 rebuilt, 0 dropped."

    edit(config_dir, "collections/emailevents.yaml", "ttl: 90d", "ttl: 30d")
    edit(config_dir, "collections/mailboxes.yaml", "  - keys: {userId: 1}\n",
         "  - keys: {userId: 1}\n    unique: true\n    sparse: true\n")
    db["users"].drop_index("email_1")
    db["users"].drop_index("microsoftId_1")
    db["users"].create_index("displayName", name="displayName_1")
    spec = load_spec(config_dir)
    planned = summary(make_plan(spec, db, Options(allow_rebuild=True, prune=True)))
    assert planned == "Plan: 2 to create, 1 to change in place, 1 to rebuild, 1 to drop."
    done = apply(spec, db, allow_rebuild=True, prune=True)
    assert applied_summary(done) == "Applied: 2 created, 1 changed in place, 1 rebuilt, 1 dropped."


def test_a_lost_lock_stops_before_the_next_operation_and_the_apply_is_recorded(spec: Spec, db: Database[Any]) -> None:
    planned = applying.plan_checked(db.name, applying.backends(spec, db, None), Options())
    lost = threading.Event()
    lost.set()
    with pytest.raises(ApplyFailed, match="the apply lock was lost") as caught:
        applying.execute(spec, db, planned, lambda line: None, lost)
    assert caught.value.done == [] and "completed before the failure: none" in str(caught.value)
    assert set(db.list_collection_names()) == {APPLIES}  # nothing else was touched
    record = db[APPLIES].find_one()
    assert record is not None and record["outcome"] == "failed"
    assert record["operations"] == [] and len(record["notDone"]) == 9 + 9


def test_without_a_redis_client_nothing_is_planned_for_redis(spec: Spec, db: Database[Any]) -> None:
    plan = applying.full_plan(spec, db, None, Options())
    assert {op.group.split()[0] for op in plan.operations} == {"collection", "sharding"}  # MongoDB's only
