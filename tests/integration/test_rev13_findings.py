"""Review 13: adversarial tests of the data checks' own client (plan._check_reads, retryReads off,
read once more after a lost connection), `health --queue`, and reply polling's hit share
(hotpath._hits), on real servers. Each failing test is a strict xfail: the assertion is what the
user expects.

Findings: /work/notes/review-rev13.md."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId
from pymongo import MongoClient

from bootstrap.cli.common import database
from bootstrap.connect import mongo as connect_mongo
from bootstrap.engine.mongo import plan as mongo_plan
from bootstrap.local.servers import MongoServer
from bootstrap.spec.load import load_spec
from tests.conftest import Result
from tests.support.config_edits import applied, edit
from tests.support.mongo_hooks import OnCommand

NOW = datetime.datetime.now(datetime.UTC)

# --- make_client(retry_reads=) -----------------------------------------------------------------


def test_a_uri_that_turns_retried_reads_off_is_obeyed_by_the_commands_client(
    config_dir: Path, mongo_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deployment whose URI says `retryReads=false` (a proxy or a MongoDB-compatible service
    without retryable reads, or an operator who wants a lost read said at once). Before 702db83 the
    commands' clients (cli.common.database -> connect -> make_client) took the URI's word; now
    make_client passes retryReads=True as a keyword, and a keyword beats the URI in pymongo."""
    monkeypatch.setenv("MONGODB_URI", mongo_uri + "?retryReads=false")
    spec = load_spec(config_dir)
    with database(spec) as db:
        db.command("ping")  # a real client, connected to the real server
        assert db.client.options.retry_reads is False, "the URI's retryReads=false was overridden"


# --- the check client when nothing is read -----------------------------------------------------


def test_a_plan_that_reads_no_document_opens_no_second_client(
    config_dir: Path, cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shipped config on a server that is not a mongos always plans a note (`? shard: declared
    ... not applied`), so `make_plan` never takes its `not plan.operations` shortcut: every `plan`
    of a deployment with nothing to change makes a client of its own for the data checks, connects
    it (a TLS handshake and a SCRAM conversation against a remote MongoDB) and pings it once per
    operation, to read nothing."""
    applied(cli, config_dir)
    made: list[Any] = []
    make = connect_mongo.make_client

    def counted(*args: Any, **kwargs: Any) -> Any:
        client = make(*args, **kwargs)
        made.append(kwargs)
        return client

    monkeypatch.setattr(mongo_plan, "make_client", counted)
    result = cli("plan", "--config", str(config_dir), "--detailed-exitcode")
    assert result.code == 0, (result.out, result.err)  # 0: nothing to change (2 would be changes)
    assert made == [], f"{len(made)} client(s) made for the data checks of a plan that reads no document"


# --- a MongoDB gone mid-check: how it is said -------------------------------------------------


def test_mongodb_gone_during_a_data_check_is_said_as_unreachable_with_the_check_it_stopped(
    config_dir: Path, cli: Callable[..., Result], own_mongo: MongoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README ("What the data already there makes of a change"): "a MongoDB that stays away is said
    as unreachable then, not after --check-timeout". It is said quickly now, but as whatever pymongo
    wrote: `error: MongoDB: No replica set members available ..., Timeout: 5.0s, Topology
    Description: <TopologyDescription id: ..., servers: [...]>` (connect.mongo.reason strips that
    dump everywhere else), with nothing of the read it interrupted (a slow check names its
    collection and change)."""
    monkeypatch.setenv("MONGODB_URI", own_mongo.database_uri("r13"))
    applied(cli, config_dir)
    client: MongoClient[dict[str, Any]] = MongoClient(own_mongo.database_uri("r13"))
    client.r13.notifications.insert_one(
        {"userId": ObjectId(), "type": "system", "title": "t", "message": "m", "createdAt": NOW, "updatedAt": NOW}
    )
    client.close()
    edit(
        config_dir,
        "collections/notifications.yaml",
        "message: {type: string, required: true}",
        "message: {type: string, required: true, min_length: 2}",
    )
    OnCommand.armed = ("aggregate", own_mongo.stop)  # the count of failing documents: MongoDB goes away
    result = cli("plan", "--config", str(config_dir), "--check-timeout", "25")
    assert result.code == 1
    assert "--check-timeout" not in result.err, result.err  # what 702db83 fixed: holds
    error = result.err.strip().splitlines()[-1]
    assert "Topology Description" not in error, error
    assert "unreachable" in error and "notifications" in error, error


# --- health --queue ----------------------------------------------------------------------------


def test_the_fix_of_a_queues_own_workers_check_starts_that_queues_workers(
    config_dir: Path, cli: Callable[..., Result]
) -> None:
    """A container that runs one queue's workers probes `health --only mongodb,redis,workers --queue
    delta-sync` (README, "Health"). Its check fails while that worker is down; the fix it names is
    `python -m msedb_jobs.worker`, which starts the workers of all five queues in this container
    (README: `python -m PACKAGE.worker delta-sync` for a deployment per queue)."""
    applied(cli, config_dir)  # its marker in Redis: no key prefix hint in place of the fix
    result = cli("health", "--json", "--only", "workers", "--queue", "delta-sync", "--config", str(config_dir))
    assert result.code == 1, result.err
    (check,) = json.loads(result.out)["checks"]
    assert check["name"] == "workers" and not check["ok"]
    assert "queue delta-sync: no live worker" in check["detail"]
    assert "python -m msedb_jobs.worker delta-sync" in check["fix"], check["fix"]
