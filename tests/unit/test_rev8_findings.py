"""Review 8 (pure): problems found in today's changes, each as a test of the right behaviour.

See /work/notes/review-rev8.md."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from bootstrap.engine.mongo.compare import compare
from bootstrap.engine.mongo.live import LiveCollection, LiveState
from bootstrap.engine.mongo.operations import Blocked, ChangeIndex
from bootstrap.engine.mongo.server import ServerRole
from bootstrap.spec import schema_check
from tests.conftest import Result, copy_config
from tests.unit.engine.test_mongo_compare import MATCHING_INDEXES, SPEC, live_users, server_index


def test_a_ttl_added_in_place_on_a_capped_collection_is_blocked_before_mongodb_7_1() -> None:
    """seenAt_1 exists without a TTL; the spec declares ttl 1h. Before the change this was a rebuild,
    whose CreateIndexes was blocked on a capped collection; now it is a ChangeIndex that nobody
    blocks, on every server from 5.1 (wire 14) to 7.0 (wire 21)."""
    no_ttl = server_index("seenAt_1", {"seenAt": 1})
    capped: LiveCollection = replace(live_users(MATCHING_INDEXES[0], no_ttl).collections["users"], capped=True)
    for wire_version in (14, 17, 21):  # 5.1, 6.0, 7.0
        live = LiveState("t", {"users": capped}, ServerRole(wire_version=wire_version))
        [op] = compare(SPEC, live).operations
        assert not isinstance(op, ChangeIndex), (wire_version, op)
        assert isinstance(op, Blocked), (wire_version, op)
        assert "capped collection" in op.reason


@pytest.mark.parametrize("value", [["mongodb:/admin:Sup3r@db"], {"x": "redis//:Sup3r@r:6379/0"}])
def test_a_mistyped_connection_string_inside_a_list_or_mapping_is_masked(value: object) -> None:
    """`uri: [mongodb:/admin:Sup3r@db]` -> "mongodb.uri: expected a string, got list
    ['mongodb:/admin:Sup3r@db']" (seen with `bootstrap validate`)."""
    shown = schema_check._show(value)
    assert "Sup3r" not in shown, shown


def test_generate_says_when_it_writes_a_variable_that_is_not_set_into_the_package(
    cli: Callable[..., Result], tmp_path: Path, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README: validate, generate and docs 'keep a variable that must be set and is not as written,
    with a warning'. Values other than connection URLs are written into the generated package, so
    the scheduler's fallback schedules (used when Redis lost them) would fire with tenant
    '${TENANT_ID}', and the package's wiring hash is not the one `status`/`health` expect."""
    monkeypatch.delenv("TENANT_ID", raising=False)
    config = copy_config(tmp_path / "project" / "config", key_prefix)
    schedules = config / "schedules.yaml"
    schedules.write_text(schedules.read_text().replace(
        "    every: 15m\n", '    every: 15m\n    kwargs: {tenant: "${TENANT_ID}"}\n', 1))  # fmt: skip
    result = cli("generate", "--config", str(config))
    assert result.code == 1 and "environment variable TENANT_ID is not set" in result.err, result.err
    package = tmp_path / "project" / "generated" / "msedb_jobs" / "schedules.py"
    assert not package.exists() or "${TENANT_ID}" not in package.read_text()  # no placeholder as a value
