"""The Redis compare for the key layout before hash tags and for a cluster, pure: live state built
by hand, the exact operation list."""

from __future__ import annotations

from bootstrap.engine.ops import Blocked
from bootstrap.engine.redis.compare import CLUSTER_MOVE, compare
from bootstrap.engine.redis.live import Legacy, RedisLive
from bootstrap.engine.redis.operations import (
    CreateQueue,
    DeleteSchedule,
    MoveKeys,
    MoveSchedules,
    PolicyUnknown,
    PutSchedule,
    SetEvictionPolicy,
)
from bootstrap.layout import schedules as stored
from bootstrap.layout.keys import GROUP, QueueKeys, ScheduleKeys
from tests.unit.engine.test_redis_compare import (
    EVERY,
    MAIL_STREAM,
    MARKER,
    NIGHTLY,
    QUEUES,
    READY,
    SPEC,
    STORED,
    SYNC_STREAM,
)

SYNC_MOVES = (("t:queue:sync:jobs", "t:queue:{sync}:jobs"), ("t:queue:sync:failed", "t:queue:{sync}:failed"))
HELD = {"sync-often": "sync", "mail-nightly": "mail"}


def test_keys_carry_one_hash_tag_per_queue_and_schedules_live_with_their_queue() -> None:
    keys = QueueKeys("p", "mail")
    assert keys.stream == "p:queue:{mail}:jobs" and keys.delayed == "p:queue:{mail}:delayed"
    assert keys.records("failed") == "p:queue:{mail}:failed"
    assert keys.record_data("failed") == "p:queue:{mail}:failed:data"
    assert keys.schedules == "p:queue:{mail}:schedules" and keys.last_slot == "p:queue:{mail}:schedules:last-slot"
    assert keys.legacy_moves()[0] == ("p:queue:mail:jobs", "p:queue:{mail}:jobs")
    assert ScheduleKeys("p").index == "p:schedules:index"
    assert (ScheduleKeys("p").legacy_definitions, ScheduleKeys("p").legacy_last_slot) == (
        "p:schedules",
        "p:schedules:last-slot",
    )


def test_old_queue_keys_move_first_and_their_stream_needs_no_new_queue() -> None:
    legacy = Legacy(moves={"sync": SYNC_MOVES}, groups={"sync": frozenset({GROUP})})
    live = RedisLive(
        "noeviction", {MAIL_STREAM: frozenset({GROUP})}, STORED, MARKER, HELD, legacy, queue_markers=QUEUES
    )
    ops = compare(SPEC, live)
    assert ops == (MoveKeys("sync", SYNC_MOVES),)
    assert ops[0].describe() == [
        "move key t:queue:sync:jobs -> t:queue:{sync}:jobs",
        "move key t:queue:sync:failed -> t:queue:{sync}:failed",
    ]
    assert ops[0].is_change and ops[0].group == "queue sync"


def test_an_old_stream_without_the_group_still_gets_it_after_the_move() -> None:
    legacy = Legacy(moves={"sync": SYNC_MOVES}, groups={"sync": frozenset()})
    live = RedisLive(
        "noeviction", {MAIL_STREAM: frozenset({GROUP})}, STORED, MARKER, HELD, legacy, queue_markers=QUEUES
    )
    assert compare(SPEC, live) == (MoveKeys("sync", SYNC_MOVES), CreateQueue("sync", SYNC_STREAM, GROUP))


def test_a_move_onto_a_key_that_exists_is_blocked_with_the_way_forward() -> None:
    legacy = Legacy(moves={"sync": SYNC_MOVES}, taken=frozenset({"t:queue:{sync}:jobs"}))
    (op,) = compare(SPEC, RedisLive("noeviction", READY, STORED, MARKER, HELD, legacy, queue_markers=QUEUES))
    assert isinstance(op, Blocked) and op.wanted == MoveKeys("sync", SYNC_MOVES)
    assert op.reason.startswith("t:queue:{sync}:jobs exist(s) already under the new name")


def test_old_schedule_hashes_move_and_are_compared_as_moved() -> None:
    changed = {**STORED["sync-often"], "every": 120.0}
    legacy = Legacy(
        schedules={"sync-often": changed, "mail-nightly": STORED["mail-nightly"], "junk": None, "gone": None},
        last_slots={"sync-often": "1700000000.0"},
    )
    ops = compare(SPEC, RedisLive("noeviction", READY, {}, MARKER, {}, legacy, queue_markers=QUEUES))
    move = MoveSchedules(
        "schedules",
        "t:schedules",
        "t:schedules:last-slot",
        (("gone", ""), ("junk", ""), ("mail-nightly", "mail"), ("sync-often", "sync")),
    )
    assert ops == (move, PutSchedule("sync-often", stored.definition(EVERY), changed))
    assert move.describe()[0] == "move schedule state t:schedules and t:schedules:last-slot to the queues' keys:"
    assert "  junk -> nowhere (unreadable definition: dropped)" in move.describe()


def test_a_schedule_moved_to_another_queue_is_put_there_and_taken_from_the_old_one() -> None:
    moved = {**STORED["sync-often"], "queue": "mail"}  # stored with mail; the spec says sync
    live = RedisLive(
        "noeviction",
        READY,
        {**STORED, "sync-often": moved},
        MARKER,
        {**HELD, "sync-often": "mail"},
        queue_markers=QUEUES,
    )
    assert compare(SPEC, live) == (PutSchedule("sync-often", stored.definition(EVERY), moved, "mail"),)
    # Same definition, but kept with the wrong queue (by hand): moved all the same.
    live = RedisLive("noeviction", READY, STORED, MARKER, {**HELD, "mail-nightly": "sync"}, queue_markers=QUEUES)
    wanted = PutSchedule("mail-nightly", stored.definition(NIGHTLY), STORED["mail-nightly"], "sync")
    assert compare(SPEC, live) == (wanted,)


def test_an_undeclared_schedule_is_deleted_where_it_is_kept() -> None:
    old = {**STORED["sync-often"], "id": "old"}
    held = {**HELD, "old": "sync", "junk": "mail"}
    live = RedisLive("noeviction", READY, {**STORED, "old": old, "junk": None}, MARKER, held, queue_markers=QUEUES)
    assert compare(SPEC, live) == (DeleteSchedule("junk", {}, "mail"), DeleteSchedule("old", old))


def test_on_a_cluster_old_keys_are_blocked_and_the_policy_is_checked_on_every_primary() -> None:
    legacy = Legacy(moves={"sync": SYNC_MOVES}, schedules={"sync-often": STORED["sync-often"]})
    policies = {"10.0.0.1:7001": "noeviction", "10.0.0.2:7002": "allkeys-lru", "10.0.0.3:7003": "unknown"}
    live = RedisLive("unknown", READY, STORED, MARKER, HELD, legacy, policies, queue_markers=QUEUES)
    ops = compare(SPEC, live)
    fix = SetEvictionPolicy("10.0.0.2:7002", "allkeys-lru", "noeviction")
    assert ops[0] == Blocked("10.0.0.2:7002", fix, ops[0].reason)  # type: ignore[attr-defined]
    assert ops[0].reason.startswith("Redis node 10.0.0.2:7002 runs with maxmemory-policy allkeys-lru")  # type: ignore[attr-defined]
    assert ops[1] == PolicyUnknown("10.0.0.3:7003", "noeviction")
    assert ops[1].group == "redis node 10.0.0.3:7003"
    assert [type(op.wanted).__name__ for op in ops[2:] if isinstance(op, Blocked)] == ["MoveKeys", "MoveSchedules"]
    assert all(op.reason == CLUSTER_MOVE for op in ops[2:] if isinstance(op, Blocked))
    assert "Redis Cluster cannot rename a key into another slot" in CLUSTER_MOVE
    assert compare(SPEC, live, fix_redis=True)[0] == fix
