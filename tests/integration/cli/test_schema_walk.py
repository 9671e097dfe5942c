"""Schema walk: the backend developer who evolves the MSEDB collections over months on a populated
database, on real servers (SecantusDB, redis-server). Each test is one user-visible problem found on
that walk (the assertion is what the user expected; each was xfail until fixed), or good behaviour pinned.

Findings and their exact output: /work/notes/walk-schema.md."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId
from pymongo import MongoClient, monitoring
from pymongo.database import Database
from pymongo.errors import PyMongoError

from tests.conftest import Result
from tests.support.config_edits import applied, edit, run_with_generated

NOW = datetime.datetime.now(datetime.UTC)


def collection_lines(out: str, collection: str) -> list[str]:
    """The plan's lines under `collection NAME`, up to the next group."""
    lines, inside = [], False
    for line in out.splitlines():
        if line.startswith("collection ") or line in ("sharding", "redis data"):
            inside = line == f"collection {collection}"
        elif inside and line.strip():
            lines.append(line)
    return lines


class Commands(monitoring.CommandListener):
    """Commands the in-process CLI sends (pymongo listeners are global: registered once, switched on
    per test by `watching`)."""

    active: list[Commands] = []  # noqa: RUF012

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []
        self.after_drop: Callable[[], None] | None = None
        self.on_build: Callable[[], None] | None = None

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        for watcher in Commands.active:
            watcher.seen.append((event.command_name, event.command.get(event.command_name)))
            if event.command_name == "createIndexes" and watcher.on_build is not None:
                watcher.on_build()

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        for watcher in Commands.active:
            if event.command_name == "dropIndexes" and watcher.after_drop is not None:
                watcher.after_drop()

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def count(self, name: str, collection: str) -> int:
        return sum(1 for command, target in self.seen if command == name and target == collection)


_LISTENER = Commands()
monitoring.register(_LISTENER)


@pytest.fixture
def watching() -> Iterator[Commands]:
    watcher = Commands()
    Commands.active.append(watcher)
    yield watcher
    Commands.active.remove(watcher)


def subscription(subscription_id: str, mailbox: ObjectId) -> dict[str, Any]:
    return {"userId": ObjectId(), "mailboxId": mailbox, "subscriptionId": subscription_id, "resource": "r",
            "changeType": "created", "expiresAt": NOW, "notificationUrl": "https://x.io/n", "clientState": "s",
            "createdAt": NOW, "updatedAt": NOW}  # fmt: skip


def notification(created: datetime.datetime) -> dict[str, Any]:
    return {"userId": ObjectId(), "type": "system", "title": "t", "message": "m", "createdAt": created,
            "updatedAt": created}  # fmt: skip


# --- validator changes -------------------------------------------------------------------------


def test_a_validator_change_says_what_changed_in_the_field(
    config_dir: Path, cli: Callable[..., Result], seed_db: Database[Any]
) -> None:
    applied(cli, config_dir)
    seed_db.users.insert_many([{"email": f"u{n}@x.io", "role": "user"} for n in range(5)])
    edit(config_dir, "collections/users.yaml", "enum: [admin, user], default: user",
         "enum: [admin, member], default: member")  # fmt: skip
    plan = cli("plan", "--config", str(config_dir))
    assert plan.code == 0, plan.err
    lines = collection_lines(plan.out, "users")
    assert "5 existing document(s) would fail the new validator" in plan.out  # the count is there ...
    role = next(line for line in lines if "field role" in line)
    # ... but "~ field role" alone: a reviewer cannot tell a renamed enum value (5 documents now
    # refused) from a description edit. Expected: the enum before and after, or what was removed.
    assert "user" in role and "member" in role, lines


def test_a_description_edit_is_planned_as_one(
    config_dir: Path, cli: Callable[..., Result], seed_db: Database[Any], watching: Commands
) -> None:
    applied(cli, config_dir)
    seed_db.users.insert_many([{"email": f"u{n}@x.io"} for n in range(100)])
    edit(config_dir, "collections/users.yaml", "Serialised MSAL token cache.", "Serialized MSAL token cache.")
    watching.seen.clear()
    plan = cli("plan", "--config", str(config_dir))
    lines = collection_lines(plan.out, "users")
    field = next(line for line in lines if "field msalCache" in line)
    # Not the line a `type: string` -> `type: int` change gets; and no scan of every user to find
    # that "every existing document passes the new validator".
    assert watching.count("aggregate", "users") == 0
    assert "description" in field, lines
    assert "every existing document passes the new validator" in plan.out


def test_models_check_a_required_field_with_a_default_as_the_validator_does(
    config_dir: Path, cli: Callable[..., Result], seed_db: Database[Any]
) -> None:
    """docs/migrating.md section 3: "the generated models check a document exactly as the validator
    will" (the recipe that lists the documents to fix before apply). A field made required, with a
    default for new documents, is missing from every old document: the validator refuses them all,
    the model reads them as valid (the default), so the recipe lists none of them, and the
    application's `update_one` of such a document fails with the server's WriteError 121."""
    applied(cli, config_dir)
    seed_db.rules.insert_one({"userId": ObjectId(), "mailboxId": ObjectId(), "name": "r", "createdAt": NOW,
                              "updatedAt": NOW})  # fmt: skip
    created_by = "  createdBy: {type: objectId, ref: users}\n"
    color = "  color: {type: string, required: true, default: blue}\n"
    edit(config_dir, "collections/rules.yaml", created_by, created_by + color)
    plan = cli("plan", "--config", str(config_dir))
    assert "1 existing document(s) would fail the new validator" in plan.out, plan.out
    applied(cli, config_dir)
    assert cli("generate", "--config", str(config_dir)).code == 0
    validator = seed_db.command("listCollections", filter={"name": "rules"})["cursor"]["firstBatch"][0]["options"][
        "validator"
    ]
    assert seed_db.rules.count_documents({"$nor": [validator]}) == 1  # the server refuses it
    script = (
        "import sys\n"
        "from pymongo import MongoClient\n"
        "from msedb_jobs.models import Rule\n"
        "raw = MongoClient(sys.argv[1]).get_default_database().rules.find_one()\n"
        "try:\n"
        "    Rule.from_document(raw)\n"
        "    print('accepted')\n"
        "except Exception as exc:\n"
        "    print('refused', type(exc).__name__)\n"
    )
    output = run_with_generated(config_dir, script)
    assert output.strip() == "refused ValidationError", output


def test_apply_or_status_says_the_generated_models_no_longer_follow_the_spec(
    config_dir: Path, cli: Callable[..., Result], seed_db: Database[Any]
) -> None:
    applied(cli, config_dir)
    assert cli("generate", "--config", str(config_dir)).code == 0
    edit(config_dir, "collections/users.yaml", "enum: [admin, user], default: user",
         "enum: [admin, user, guest], default: user")  # fmt: skip
    done = applied(cli, config_dir)
    assert cli("generate", "--check", "--config", str(config_dir)).code == 1  # the models are stale ...
    status = cli("status", "--config", str(config_dir))
    assert status.code == 0, status.err
    # ... and `status` reads "MongoDB and Redis match the spec": the application's User model still
    # refuses role "guest", which the server now accepts (and the workers' wiring hash, which
    # status and health compare, leaves models.py out).
    said = done.out + done.err + status.out + status.err
    assert "bootstrap generate" in said, status.out


# --- unique indexes ---------------------------------------------------------------------------


def test_making_an_index_unique_waits_for_the_duplicates_and_then_keeps_the_index(
    config_dir: Path, cli: Callable[..., Result], seed_db: Database[Any]
) -> None:
    """Good behaviour, pinned: an index the seed made without `unique` is blocked over duplicates
    (nothing applied), and made unique in place once they are gone."""
    seed_db.users.insert_many([{"email": "dup@x.io"}, {"email": "dup@x.io"}, {"email": "ok@x.io"}])
    seed_db.users.create_index("email")
    refused = cli("apply", "--config", str(config_dir))
    assert refused.code == 1
    assert 'index email_1 cannot be made unique: documents share the key {"email": "dup@x.io"}' in refused.err
    assert seed_db.list_collection_names(filter={"name": "rules"}) == []  # nothing applied
    seed_db.users.delete_one({"email": "dup@x.io"})
    done = applied(cli, config_dir)
    assert "~ change index email_1: unique false -> true (collMod, no rebuild)" in done.out
    assert seed_db.users.index_information()["email_1"].get("unique") is True


def test_a_blocked_plan_names_every_new_unique_index_with_duplicates(
    config_dir: Path, cli: Callable[..., Result], seed_db: Database[Any]
) -> None:
    applied(cli, config_dir)
    seed_db.users.insert_many([
        {"email": "a@x.io", "displayName": "same", "msalCache": "c1"},
        {"email": "b@x.io", "displayName": "same", "msalCache": "c2"},
        {"email": "c@x.io", "displayName": "d1", "msalCache": "shared"},
        {"email": "d@x.io", "displayName": "d2", "msalCache": "shared"},
    ])  # fmt: skip
    edit(config_dir, "collections/users.yaml", "    unique: true\n    sparse: true\n",
         "    unique: true\n    sparse: true\n  - keys: {displayName: 1}\n    unique: true\n"
         "  - keys: {msalCache: 1}\n    unique: true\n")  # fmt: skip
    plan = cli("plan", "--json", "--config", str(config_dir))
    reasons = " ".join(op.get("reason", "") for op in json.loads(plan.out)["operations"])
    assert "displayName_1 cannot be built" in reasons
    # The user removes the displayName duplicates, applies, and only then learns about msalCache.
    assert "msalCache_1 cannot be built" in reasons, reasons


def test_a_blocked_line_shows_the_index_it_is_about(
    config_dir: Path, cli: Callable[..., Result], seed_db: Database[Any]
) -> None:
    applied(cli, config_dir)
    seed_db.users.insert_many([{"email": f"u{n}@x.io", "displayName": f"d{n}"} for n in range(3)])
    # microsoftId loses `sparse` (a rebuild: the users without one now share the key null) and a new
    # unique index on displayName (no duplicates) goes to the same createIndexes.
    edit(config_dir, "collections/users.yaml", "    unique: true\n    sparse: true\n",
         "    unique: true\n  - keys: {displayName: 1}\n    unique: true\n")  # fmt: skip
    plan = cli("plan", "--allow-rebuild", "--config", str(config_dir))
    lines = collection_lines(plan.out, "users")
    blocked = next(n for n, line in enumerate(lines) if line.startswith("  ! blocked"))
    assert "unique index microsoftId_1 cannot be built" in lines[blocked]
    # The line under it is its detail: "create index displayName_1 {displayName: 1} unique", an index
    # with no duplicates; the blocked microsoftId_1 build is hidden (and counted "1 to rebuild").
    assert "microsoftId_1" in lines[blocked + 1], lines


def test_a_failed_build_does_not_leave_the_collection_without_its_unique_index(
    config_dir: Path, cli: Callable[..., Result], seed_db: Database[Any], mongo_uri: str, watching: Commands
) -> None:
    """The developer widens a unique key ({subscriptionId} -> {subscriptionId, mailboxId}) and applies
    with --prune to drop the old index. apply drops first, then builds: while the application keeps
    writing (here one insert, right after the drop), the build can fail, and the old index is not
    put back (it is put back only for a rebuild). The collection is left with no unique index at all
    and a duplicate subscriptionId in it; building the new index before dropping the old would not."""
    applied(cli, config_dir)
    mailbox = ObjectId()
    seed_db.webhooksubscriptions.insert_one(subscription("s1", mailbox))
    edit(
        config_dir, "collections/webhooksubscriptions.yaml", "{subscriptionId: 1}", "{subscriptionId: 1, mailboxId: 1}"
    )
    other: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)

    def application_writes() -> None:
        with contextlib.suppress(PyMongoError):  # refused by a unique index: what the user wanted
            other.get_default_database().webhooksubscriptions.insert_one(subscription("s1", mailbox))

    watching.after_drop = application_writes
    try:
        result = cli("apply", "--prune", "--config", str(config_dir))
    finally:
        watching.after_drop = None
        other.close()
    unique = [info["key"] for info in seed_db.webhooksubscriptions.index_information().values() if info.get("unique")]
    duplicates = seed_db.webhooksubscriptions.count_documents({"subscriptionId": "s1"})
    assert any(key[0][0] == "subscriptionId" for key in unique), (
        result.err,
        unique,
        f"{duplicates} documents with subscriptionId s1",
    )


def test_an_apply_terminated_during_a_rebuild_is_recorded_as_interrupted(
    config_dir: Path, cli: Callable[..., Result], seed_db: Database[Any], watching: Commands
) -> None:
    """README: an apply stopped part-way by SIGTERM (`docker stop`, a cancelled CI job) exits 143 and
    records outcome `interrupted`, with the operation it was at. Here the signal comes while the
    createIndexes of a rebuild runs (the long step on a big collection: the old index is already
    dropped). Seen with a real subprocess and 60,000 documents too (BOOTSTRAP_DEBUG=1: `IndexError`
    in engine/apply.py, `remaining[0].describe()[0]`: a createIndexes made only of rebuilt indexes
    describes itself with no line)."""
    applied(cli, config_dir)
    seed_db.webhooksubscriptions.insert_many([subscription(f"s{n}", ObjectId()) for n in range(100)])
    edit(config_dir, "collections/webhooksubscriptions.yaml", "  - keys: {subscriptionId: 1}\n    unique: true\n",
         "  - keys: {subscriptionId: 1}\n    unique: true\n    sparse: true\n")  # fmt: skip
    watching.on_build = lambda: os.kill(os.getpid(), signal.SIGTERM)  # `docker stop` during the build
    try:
        result = cli("apply", "--allow-rebuild", "--config", str(config_dir))
    finally:
        watching.on_build = None
    record = seed_db.bootstrap_applies.find_one(sort=[("_id", -1)])
    assert "internal error" not in result.err, result.err
    assert result.code == 143 and record is not None and record["outcome"] == "interrupted", (result.err, record)


# --- what the data costs ----------------------------------------------------------------------


def test_apply_reads_the_data_no_more_often_than_plan(
    config_dir: Path, cli: Callable[..., Result], seed_db: Database[Any], watching: Commands
) -> None:
    """Measured on 50,000 small notifications (SecantusDB): the duplicate scan for a new unique index
    took 5.0 s and the validator count 2.6 s, where building the unique index itself (which checks the
    same keys) took 2.1 s. On 200,000: plan 27.6 s, apply 57.9 s (index build about 4 s)."""
    applied(cli, config_dir)
    seed_db.notifications.insert_many([{**notification(NOW), "n": n} for n in range(2000)])
    edit(config_dir, "collections/notifications.yaml", "  - keys: {createdAt: 1}\n",
         "  - keys: {title: 1, n: 1}\n    unique: true\n  - keys: {createdAt: 1}\n")  # fmt: skip
    edit(config_dir, "collections/notifications.yaml", "  title: {type: string, required: true}",
         "  title: {type: string, required: true, max_length: 100}\n  n: int")  # fmt: skip
    assert cli("plan", "--config", str(config_dir)).code == 0
    planned = watching.count("aggregate", "notifications")  # count_documents is an aggregate too
    watching.seen.clear()
    applied(cli, config_dir)
    done = watching.count("aggregate", "notifications")
    assert planned == 2  # the validator's count, the duplicate scan
    assert done == planned, f"plan sent {planned} aggregate(s) over notifications, apply {done}"


def big_notifications(seed_db: Database[Any], count: int = 30_000) -> None:
    """Small documents, in batches: about 6 s on SecantusDB."""
    for start in range(0, count, 10_000):
        seed_db.notifications.insert_many([{**notification(NOW), "n": n} for n in range(start, start + 10_000)])


def index_on_n(config_dir: Path) -> None:
    edit(config_dir, "collections/notifications.yaml", "  - keys: {createdAt: 1}\n",
         "  - keys: {title: 1, n: 1}\n  - keys: {createdAt: 1}\n")  # fmt: skip
    edit(config_dir, "collections/notifications.yaml", "  title: {type: string, required: true}",
         "  title: {type: string, required: true}\n  n: int")  # fmt: skip


def test_an_index_build_longer_than_the_socket_timeout_is_waited_for(
    config_dir: Path, cli: Callable[..., Result], seed_db: Database[Any]
) -> None:
    """The shipped `timeouts.socket: 45s` (here 500ms, on 30,000 documents whose build takes about a
    second) bounds every command, createIndexes included: apply says "failed ... timed out" and
    "completed before the failure: none", exits 1 and records the apply as failed, while the server
    goes on and builds the index (the next plan: "No changes"). apply's own progress lines ("...
    building 1 index(es) on notifications: 3s") are for builds that never get past 45 s. For a
    rebuild (old index dropped first) the same timeout ends in "internal error: IndexError" (see
    the SIGTERM test: the same empty description), so the dropped index is not put back either."""
    applied(cli, config_dir)
    big_notifications(seed_db)
    index_on_n(config_dir)
    applied(cli, config_dir)
    seed_db.notifications.drop_index("title_1_n_1")  # the build below is the only change
    edit(config_dir, "bootstrap.yaml", "socket: 45s", "socket: 500ms")
    result = cli("apply", "--config", str(config_dir))
    built = "title_1_n_1" in seed_db.notifications.index_information()
    assert result.code == 0, (result.err, f"index built on the server all the same: {built}")


def test_plan_of_a_validator_change_on_a_big_collection_finishes(
    config_dir: Path, cli: Callable[..., Result], seed_db: Database[Any]
) -> None:
    """The validator count (and the duplicate scan) is one command over the whole collection. When it
    takes longer than `timeouts.socket` (45 s shipped: a few million documents), `plan` and `apply`
    stop with "error: MongoDB: HOST: timed out (configured timeouts: socketTimeoutMS: ...)", which
    names no collection and no check, and no flag skips the check: the only way on is raising the
    socket timeout of the whole deployment (workers read it from the same bootstrap.yaml)."""
    applied(cli, config_dir)
    big_notifications(seed_db)
    index_on_n(config_dir)  # a new field in the validator: every notification is counted
    edit(config_dir, "bootstrap.yaml", "socket: 45s", "socket: 500ms")
    plan = cli("plan", "--config", str(config_dir))
    assert plan.code == 0, plan.err
    assert "change validator of notifications" in plan.out


def test_a_data_check_past_its_budget_names_the_collection_and_the_flag(
    config_dir: Path, cli: Callable[..., Result], seed_db: Database[Any]
) -> None:
    """The checks have a budget of their own (--check-timeout, not the workers' socket timeout): past
    it, plan says which collection and change, and how to give it longer."""
    applied(cli, config_dir)
    seed_db.notifications.insert_many([{**notification(NOW), "n": n} for n in range(5_000)])
    index_on_n(config_dir)
    plan = cli("plan", "--check-timeout", "0.001", "--config", str(config_dir))
    assert plan.code == 1 and "Traceback" not in plan.err
    assert "notifications: reading its documents for `change validator of notifications" in plan.err, plan.err
    assert "give it longer with --check-timeout SECONDS" in plan.err


# --- TTL ----------------------------------------------------------------------------------------


def test_apply_says_how_many_documents_its_ttl_change_deletes(
    config_dir: Path, cli: Callable[..., Result], seed_db: Database[Any]
) -> None:
    applied(cli, config_dir)
    seed_db.notifications.insert_many([notification(NOW - datetime.timedelta(days=20)) for _ in range(5)])
    edit(config_dir, "collections/notifications.yaml", "ttl: 30d", "ttl: 7d")
    plan = cli("plan", "--allow-expire", "--config", str(config_dir))
    assert "! index createdAt_1 (ttl 7d) deletes 5 existing document(s)" in plan.out, plan.out
    done = applied(cli, config_dir, "--allow-expire")
    assert "~ change index createdAt_1: ttl 30d -> 7d" in done.out
    # The log of the apply (a CI job's) keeps no trace of the deletion the plan announced.
    assert "deletes 5 existing document(s)" in done.out, done.out


def test_a_reviewed_ttl_change_does_not_delete_more_than_the_review_said(
    config_dir: Path, cli: Callable[..., Result], seed_db: Database[Any], tmp_path: Path
) -> None:
    applied(cli, config_dir)
    old = NOW - datetime.timedelta(days=20)
    seed_db.notifications.insert_many([notification(old) for _ in range(5)])
    edit(config_dir, "collections/notifications.yaml", "ttl: 30d", "ttl: 7d")
    saved = tmp_path / "reviewed.json"
    plan = cli("plan", "--allow-expire", "--out", str(saved), "--config", str(config_dir))
    assert "deletes 5 existing document(s)" in plan.out, plan.out  # what the reviewer approved
    # Between review and merge, a backfill imports 500 older notifications.
    seed_db.notifications.insert_many([notification(old) for _ in range(500)])
    result = cli("apply", "--allow-expire", "--plan", str(saved), "--config", str(config_dir))
    ttl = seed_db.notifications.index_information()["createdAt_1"]["expireAfterSeconds"]
    # Expected: refused (or asked again) like any other change nobody reviewed; the TTL pass then
    # deletes 505 documents where the reviewed plan said 5.
    assert result.code == 1 and ttl == 30 * 86400, (result.out, result.err)


def test_a_reviewed_ttl_change_allows_documents_ageing_past_it_meanwhile(
    config_dir: Path, cli: Callable[..., Result], seed_db: Database[Any], tmp_path: Path
) -> None:
    """On a live collection documents keep crossing the TTL between review and merge: a few more than
    reviewed (within 10 %, or 10 documents) do not refuse the reviewed plan."""
    applied(cli, config_dir)
    old = NOW - datetime.timedelta(days=20)
    seed_db.notifications.insert_many([notification(old) for _ in range(5)])
    edit(config_dir, "collections/notifications.yaml", "ttl: 30d", "ttl: 7d")
    saved = tmp_path / "reviewed.json"
    assert cli("plan", "--allow-expire", "--out", str(saved), "--config", str(config_dir)).code == 0
    seed_db.notifications.insert_many([notification(old) for _ in range(3)])
    done = applied(cli, config_dir, "--allow-expire", "--plan", str(saved))
    assert "deletes 8 existing document(s)" in done.out, done.out


# --- status and health --------------------------------------------------------------------------


def test_status_does_not_point_at_a_flag_that_cannot_unblock_the_change(
    config_dir: Path, cli: Callable[..., Result], seed_db: Database[Any]
) -> None:
    applied(cli, config_dir)
    seed_db.users.insert_many([{"email": f"u{n}@x.io"} for n in range(3)])  # no microsoftId: null keys
    edit(config_dir, "collections/users.yaml", "    unique: true\n    sparse: true\n", "    unique: true\n")
    status = cli("status", "--config", str(config_dir))
    users = next(line for line in status.out.splitlines() if line.startswith("users "))
    assert "run with --allow-rebuild" in users or "duplicate" in users or "share the key" in users
    refused = cli("apply", "--allow-rebuild", "--config", str(config_dir))
    assert refused.code == 1 and 'documents share the key {"microsoftId": null}' in refused.err
    # What status should say: the change is blocked by the data (or: see `bootstrap plan`), not a flag.
    assert "run with --allow-rebuild" not in users, users


def test_status_index_count_does_not_count_undeclared_indexes(
    config_dir: Path, cli: Callable[..., Result], seed_db: Database[Any]
) -> None:
    applied(cli, config_dir)
    seed_db.users.insert_many([{"email": f"u{n}@x.io", "displayName": "same"} for n in range(3)])
    seed_db.users.create_index("lastLoginAt")  # a DBA's, kept
    edit(config_dir, "collections/users.yaml", "    unique: true\n    sparse: true\n",
         "    unique: true\n    sparse: true\n  - keys: {displayName: 1}\n    unique: true\n")  # fmt: skip
    status = cli("status", "--config", str(config_dir))
    users = next(line for line in status.out.splitlines() if line.startswith("users "))
    assert "+ create index displayName_1" in users
    # 2 of the 3 declared indexes exist (plus an undeclared one): "3/3" reads as complete.
    assert " 2/3 " in users, users
