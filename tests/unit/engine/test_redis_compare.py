"""The Redis compare, pure: live state built by hand (a RedisLive), a small spec, and the exact
operation list."""

from __future__ import annotations

from typing import Any

from bootstrap.engine.ops import Blocked, Plan
from bootstrap.engine.redis.compare import compare
from bootstrap.engine.redis.leftovers import Leftovers
from bootstrap.engine.redis.live import UNKNOWN_POLICY, RedisLive
from bootstrap.engine.redis.operations import (
    CreateQueue,
    DeleteSchedule,
    JobsLeftBehind,
    PolicyUnknown,
    PutSchedule,
    SetEvictionPolicy,
    WriteMarker,
)
from bootstrap.engine.render import applied_summary, counts, summary
from bootstrap.layout import schedules as stored
from bootstrap.layout.keys import GROUP
from bootstrap.spec.model import Queue, Schedule, Task
from tests.unit.engine.build import spec_of

SYNC = Queue("sync", (Task("run-sync", "sync"),))
MAIL = Queue("mail", (Task("send-mail", "mail"),))
EVERY = Schedule("sync-often", "sync", "run-sync", every=60.0)
NIGHTLY = Schedule("mail-nightly", "mail", "send-mail", cron="0 2 * * *")
SPEC = spec_of(queues=(SYNC, MAIL), schedules=(EVERY, NIGHTLY))

SYNC_STREAM, MAIL_STREAM = "t:queue:{sync}:jobs", "t:queue:{mail}:jobs"
READY = {SYNC_STREAM: frozenset({GROUP}), MAIL_STREAM: frozenset({GROUP})}
STORED = {"sync-often": stored.definition(EVERY), "mail-nightly": stored.definition(NIGHTLY)}
LRU_REASON = (
    "Redis runs with maxmemory-policy allkeys-lru: queued jobs can be evicted (expected noeviction); "
    "run apply with --fix-redis to change it"
)


MARKER = '{"at": "2026-11-29T10:00:00+00:00", "by": "host:1", "id": "abc"}'
WRITE_MARKER = WriteMarker("marker", "t:marker")
QUEUES = frozenset({"sync", "mail"})  # the spec's queues: each has its own data marker


def live(
    policy: str = "noeviction",
    streams: dict[str, frozenset[str]] | None = None,
    schedules: dict[str, Any] | None = None,
    marker: str | None = MARKER,
    leftovers: Leftovers | None = None,
) -> RedisLive:
    return RedisLive(
        policy, READY if streams is None else streams, STORED if schedules is None else schedules, marker,
        queue_markers=QUEUES, leftovers=leftovers or Leftovers(),
    )  # fmt: skip


def test_nothing_to_do_is_empty() -> None:
    assert compare(SPEC, live()) == ()


def test_a_missing_marker_is_written_and_an_existing_one_never_rewritten() -> None:
    assert compare(SPEC, live(marker=None)) == (WRITE_MARKER,)
    assert WRITE_MARKER.describe()[0].startswith("write marker t:marker")
    assert WRITE_MARKER.group == "redis data" and WRITE_MARKER.is_change
    assert compare(SPEC, live(marker="not even JSON")) == ()  # present is enough: Redis kept it


def test_a_redis_that_lost_its_data_gets_queues_schedules_then_the_marker() -> None:
    ops = compare(SPEC, RedisLive("noeviction"))  # nothing at all: a restart without persistence
    assert ops == (
        CreateQueue("sync", SYNC_STREAM, GROUP),
        CreateQueue("mail", MAIL_STREAM, GROUP),
        PutSchedule("sync-often", stored.definition(EVERY), None),
        PutSchedule("mail-nightly", stored.definition(NIGHTLY), None),
        WriteMarker("marker", "t:marker", ("t:queue:{sync}:marker", "t:queue:{mail}:marker")),
    )
    assert ops[-1].describe() == [
        "write marker t:marker (workers, scheduler and status check it to tell a Redis that lost its data)",
        "  and the data markers of 2 queue(s), one in each queue's slot",
    ]


def test_queues_without_their_own_marker_get_it_and_the_marker_stays() -> None:
    """A cluster node that lost its data (its queues' markers gone, the marker on another node kept),
    an apply of an older version (no queue markers), or a new queue: only the queues' markers."""
    (op,) = compare(SPEC, RedisLive("noeviction", READY, STORED, MARKER, queue_markers=frozenset({"sync"})))
    assert op == WriteMarker("marker", "t:marker", ("t:queue:{mail}:marker",), whole=False)
    assert op.describe() == [
        "write the data markers of 1 queue(s) (on a Redis Cluster, a node that lost its data loses its queues' markers)"
    ]


def test_wrong_eviction_policy_is_blocked_without_fix_redis() -> None:
    fix = SetEvictionPolicy("server", "allkeys-lru", "noeviction")
    assert compare(SPEC, live("allkeys-lru")) == (Blocked("server", fix, LRU_REASON),)
    assert compare(SPEC, live("allkeys-lru"), fix_redis=True) == (fix,)


def test_unreadable_eviction_policy_is_a_note_that_changes_nothing() -> None:
    ops = compare(SPEC, live(UNKNOWN_POLICY), fix_redis=True)
    assert ops == (PolicyUnknown("server", "noeviction"),)
    assert not ops[0].is_change and counts(ops)["note"] == 1


def test_declared_policy_other_than_noeviction_is_what_is_compared() -> None:
    spec = spec_of(queues=(SYNC, MAIL), schedules=(EVERY, NIGHTLY), policy="volatile-lru")
    assert compare(spec, live("volatile-lru")) == ()
    fix = SetEvictionPolicy("server", "noeviction", "volatile-lru")
    assert compare(spec, live("noeviction"), fix_redis=True) == (fix,)


def test_missing_stream_or_group_creates_the_queue() -> None:
    missing_stream = {MAIL_STREAM: frozenset({GROUP})}
    assert compare(SPEC, live(streams=missing_stream)) == (CreateQueue("sync", SYNC_STREAM, GROUP),)
    no_group = {SYNC_STREAM: frozenset({GROUP}), MAIL_STREAM: frozenset()}
    assert compare(SPEC, live(streams=no_group)) == (CreateQueue("mail", MAIL_STREAM, GROUP),)
    other_group = {SYNC_STREAM: frozenset({"someone-else"}), MAIL_STREAM: frozenset({GROUP})}
    assert compare(SPEC, live(streams=other_group)) == (CreateQueue("sync", SYNC_STREAM, GROUP),)


def test_missing_schedule_is_created() -> None:
    ops = compare(SPEC, live(schedules={"mail-nightly": STORED["mail-nightly"]}))
    assert ops == (PutSchedule("sync-often", stored.definition(EVERY), None),)
    assert ops[0].kind == "create" and ops[0].symbol == "+"
    assert ops[0].describe() == ["create schedule sync-often: sync/run-sync every 1m"]


def test_changed_schedule_is_put_with_what_changed() -> None:
    before = {**STORED["sync-often"], "every": 120.0}
    ops = compare(SPEC, live(schedules={**STORED, "sync-often": before}))
    assert ops == (PutSchedule("sync-often", stored.definition(EVERY), before),)
    assert ops[0].kind == "change" and ops[0].symbol == "~"
    assert ops[0].describe() == ["change schedule sync-often: every 2m -> 1m"]


def test_undeclared_schedules_are_deleted_in_id_order() -> None:
    old = {**STORED["sync-often"], "id": "zz-old"}
    ops = compare(SPEC, live(schedules={**STORED, "zz-old": old, "aa-garbage": None}))
    assert ops == (DeleteSchedule("aa-garbage", {}), DeleteSchedule("zz-old", old))
    assert [op.describe() for op in ops] == [
        ["delete schedule aa-garbage (no longer declared): (unreadable definition)"],
        ["delete schedule zz-old (no longer declared): sync/run-sync every 1m"],
    ]


def test_unreadable_stored_schedule_is_written_again() -> None:
    ops = compare(SPEC, live(schedules={**STORED, "mail-nightly": None}))
    assert ops == (PutSchedule("mail-nightly", stored.definition(NIGHTLY), None),)


def test_order_is_policy_then_queues_then_schedules_and_counts_match_apply() -> None:
    ops = compare(SPEC, live("allkeys-lru", streams={}, schedules={"gone": None}), fix_redis=True)
    assert ops == (
        SetEvictionPolicy("server", "allkeys-lru", "noeviction"),
        CreateQueue("sync", SYNC_STREAM, GROUP),
        CreateQueue("mail", MAIL_STREAM, GROUP),
        PutSchedule("sync-often", stored.definition(EVERY), None),
        PutSchedule("mail-nightly", stored.definition(NIGHTLY), None),
        DeleteSchedule("gone", {}),
    )
    plan = Plan("t", ops)
    assert summary(plan) == "Plan: 4 to create, 1 to change in place, 0 to rebuild, 1 to drop."
    assert applied_summary(plan.changes) == "Applied: 4 created, 1 changed in place, 0 rebuilt, 1 dropped."


def test_jobs_the_spec_no_longer_runs_are_notes_never_changes() -> None:
    left = Leftovers(queues={"old": (2, 1, 4)}, tasks={"sync": {"run-old-sync": 3}})
    ops = compare(SPEC, live(schedules=STORED, leftovers=left))
    notes = [op for op in ops if isinstance(op, JobsLeftBehind)]
    assert [(op.collection, op.symbol, op.is_change, op.is_drift) for op in notes] == [
        ("old", "?", False, False),
        ("sync", "?", False, False),
    ]
    assert "queue old is no longer declared, but its keys hold 2 waiting (or running), 1 delayed and 4 failed" in (
        notes[0].describe()[0]
    )
    assert notes[1].describe()[0].startswith("3 job(s) waiting or delayed for task(s) run-old-sync, which queue sync")
    assert not Plan("db", ops).changes  # apply runs nothing for them
