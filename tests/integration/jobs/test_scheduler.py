"""The scheduler as real processes (`taskiq scheduler` on the generated wiring) against a real Redis:
each slot fires exactly once across replicas and restarts, missed slots follow the misfire policy,
schedule changes are picked up without a restart, disabled schedules never fire.

No worker runs: the jobs a scheduler fires stay in their queue's stream, read with XRANGE. The id of
a stream entry starts with the Redis server time of the XADD in milliseconds (the enqueue time); the
entry's message carries the slot (labels.slot, epoch seconds) and the task id `<schedule>@<slot>`.
Most tests declare `align: true` (slots of `every: N` are then the multiples of N seconds since the
epoch, so the expected slots between two fires are plain arithmetic); the shipped default, unaligned
(first fire when a scheduler first sees the schedule), has a test of its own."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Generator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bootstrap.jobs.scheduler import MISFIRE_GRACE
from bootstrap.layout.keys import NORMAL, PRIORITIES
from tests.conftest import BOTH_MODES, RedisTarget
from tests.support.jobs_project import Fire, Project, fires, make_project, redis_client, wait_for
from tests.support.redis_keys import stored_last_slots

DELTA = "delta-sync-schedule"  # queue delta-sync
TOKEN = "token-refresh-schedule"  # queue token-refresh
STAGING = "staging-processor-schedule"  # queue staging-processor
STARTUP = 30.0  # seconds a scheduler process may take to start and fire (2 noisy cores)


def when(slot: float) -> str:
    """A slot as the scheduler writes it in task ids and logs."""
    return datetime.fromtimestamp(slot, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def last_slots(project: Project) -> dict[str, float]:
    client = redis_client(project)
    try:
        raw: dict[str, str] = stored_last_slots(client, project.key_prefix)
        return {k: float(v) for k, v in raw.items()}
    finally:
        client.close()


def stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM to the scheduler's process group, and wait until it is gone."""
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(15)


def assert_once_per_slot(found: list[Fire], schedule_id: str, every: float) -> list[float]:
    """Every fire is for a slot of the schedule, named after it; no slot twice, none missing between
    the first and the last one seen. Returns the slots in order."""
    for fire in found:
        assert fire.task_id == f"{schedule_id}@{when(fire.slot)}", fire
        assert fire.slot % every == 0, f"{fire.slot} is not a multiple of {every}"
    slots = [f.slot for f in found]
    duplicates = sorted({s for s in slots if slots.count(s) > 1})
    assert not duplicates, f"fired twice: {[when(s) for s in duplicates]}"
    assert len({f.task_id for f in found}) == len(found)
    expected = [min(slots) + i * every for i in range(round((max(slots) - min(slots)) / every) + 1)]
    missing = sorted(set(expected) - set(slots))
    assert not missing, f"never fired: {[when(s) for s in missing]}"
    return sorted(slots)


def fired_lines(log: str, schedule_id: str) -> list[str]:
    return re.findall(rf"schedule {schedule_id} fired for (\S+) ", log)


def skipped_lines(log: str, schedule_id: str) -> list[str]:
    """The slots logged as skipped: one line per tick for its whole stretch, "N slot(s) (FIRST to LAST)"."""
    found = []
    for count, first, last in re.findall(
        rf"schedule {schedule_id}: (\d+) slot\(s\) \((\S+)(?: to (\S+))?\) were not fired in time", log
    ):
        found.append(f"{count}: {first}" + (f" to {last}" if last else ""))
    return found


def stretch(slots: list[float]) -> list[str]:
    """What `skipped_lines` reads for one line naming `slots`."""
    return [f"{len(slots)}: {when(slots[0])}" + (f" to {when(slots[-1])}" if len(slots) > 1 else "")]


@pytest.fixture
def new_project(tmp_path: Path, mongo_uri: str, redis_target: RedisTarget) -> Iterator[Callable[..., Project]]:
    """make(("old", "new"), ...): a project with those edits of schedules.yaml, applied and generated.
    Its processes are killed at the end of the test."""
    made: list[Generator[Project, None, None]] = []

    def make(*edits: tuple[str, str], aligned: bool = True, queues: tuple[tuple[str, str], ...] = ()) -> Project:
        def edit(project: Project) -> None:
            if aligned:
                project.edit("schedules.yaml", "  timezone: UTC\n", "  timezone: UTC\n  align: true\n")
            for old, new in edits:
                project.edit("schedules.yaml", old, new)
            for old, new in queues:
                project.edit("queues.yaml", old, new)

        generator = make_project(tmp_path, mongo_uri, redis_target.url, edit, redis_target.mode)
        assert isinstance(generator, Generator)
        made.append(generator)
        project: Project = next(generator)
        return project

    yield make
    for generator in made:
        generator.close()  # runs make_project's `finally`: stop_all


@BOTH_MODES
def test_three_replicas_fire_each_slot_exactly_once(new_project: Callable[..., Project]) -> None:
    project = new_project(("every: 15m", "every: 1s"))
    for i in range(3):
        project.start_scheduler(f"s{i}")
    wait_for(lambda: len(fires(project, "delta-sync")) >= 32, STARTUP + 40, "32 fires", interval=0.5)
    logs = [project.log(f"s{i}") for i in range(3)]
    found = fires(project, "delta-sync")  # read after the logs: every fire in it is already logged
    slots = assert_once_per_slot(found, DELTA, 1)
    assert len(slots) >= 30
    # Each fire was claimed and logged by exactly one of the three replicas (all of them running).
    claimed = [slot for log in logs for slot in fired_lines(log, DELTA)]
    assert sorted(claimed) == sorted(f.task_id.split("@")[1] for f in found)
    assert all("scheduler started" in log for log in logs)
    assert all(f.lateness < MISFIRE_GRACE for f in found), [f.lateness for f in found]


def test_unaligned_schedule_fires_at_once_then_an_interval_apart_once_across_replicas(
    new_project: Callable[..., Project],
) -> None:
    """The shipped default (as BullMQ's repeatable jobs): no waiting for a multiple of the interval."""
    project = new_project(("every: 15m", "every: 2s"), aligned=False)
    started = time.time()
    for i in range(3):
        project.start_scheduler(f"s{i}")
    wait_for(lambda: len(fires(project, "delta-sync")) >= 4, STARTUP + 20, "4 fires", interval=0.2)
    found = fires(project, "delta-sync")
    first = found[0]
    # The first fire is at the first tick of the first scheduler up, not at the next multiple of 2 s...
    assert started < first.slot and first.lateness < 1.0, first
    # ... and the next ones follow it 2 s apart, each fired once by one of the three replicas.
    slots = [f.slot for f in found]
    assert [round(s - first.slot, 6) for s in slots] == [2.0 * i for i in range(len(slots))]
    assert all(f.task_id == f"{DELTA}@{when(f.slot)}" for f in found)
    claimed = [slot for i in range(3) for slot in fired_lines(project.log(f"s{i}"), DELTA)]
    assert sorted(claimed) == sorted(f.task_id.split("@")[1] for f in found)


def test_restart_within_the_grace_time_loses_and_repeats_no_slot(new_project: Callable[..., Project]) -> None:
    """A slot passes while no scheduler runs; a scheduler back within the grace time fires it, late,
    once. Starting a scheduler process takes 5-8 s on a loaded machine, more than the grace time, so
    the clock must not include it: the second scheduler is started (beside the first: replicas claim
    each slot once) and, once it has read its schedules, frozen (SIGSTOP) before the first one stops,
    then thawed (SIGCONT) after the slot passed: it comes back within a fraction of a second, with
    nothing but Redis to tell it what was handled."""
    project = new_project(("every: 15m", "every: 2s"))
    first = project.start_scheduler("first")
    wait_for(lambda: len(fires(project, "delta-sync")) >= 2, STARTUP, "2 fires", interval=0.05)
    second = project.start_scheduler("second")
    wait_for(lambda: f"schedule {DELTA}: " in project.log("second"), STARTUP, "the second scheduler to be ready")
    os.killpg(second.pid, signal.SIGSTOP)
    seen = len(fires(project, "delta-sync"))
    wait_for(lambda: len(fires(project, "delta-sync")) > seen, STARTUP, "a fire by the first", interval=0.05)
    stop(first)  # right after a fire
    before = fires(project, "delta-sync")
    gap_slot = before[-1].slot + 2
    # Thaw the second scheduler once the next slot has passed with no scheduler running: the gap
    # stays well under the grace time.
    time.sleep(max(0.0, gap_slot + 0.3 - time.time()))
    assert last_slots(project)[DELTA] == before[-1].slot
    os.killpg(second.pid, signal.SIGCONT)
    wait_for(lambda: len(fires(project, "delta-sync")) >= len(before) + 3, STARTUP, "3 more fires")
    found = fires(project, "delta-sync")
    after = found[len(before) :]
    assert_once_per_slot(found, DELTA, 2)
    # The slot missed while no scheduler ran was fired by the second one, late but within the grace time.
    assert after[0].slot == gap_slot and 0.3 <= after[0].lateness <= MISFIRE_GRACE, after[0]
    assert when(gap_slot) in fired_lines(project.log("second"), DELTA)
    assert "skipped" not in project.log("second")


def test_missed_slots_are_skipped_or_run_once(new_project: Callable[..., Project]) -> None:
    """delta-sync-schedule with misfire: skip and token-refresh-schedule with misfire: run_once, both
    every second; the scheduler is down for longer than the grace time."""
    project = new_project(
        ("every: 15m", "every: 1s\n    misfire: skip"), ("every: 45m", "every: 1s\n    misfire: run_once")
    )
    first = project.start_scheduler("first")
    wait_for(lambda: len(fires(project, "token-refresh")) >= 2, STARTUP, "2 fires")
    stop(first)
    handled = last_slots(project)  # the last slots handled before the stop
    before = {q: fires(project, q) for q in ("delta-sync", "token-refresh")}
    time.sleep(MISFIRE_GRACE + 3)
    project.start_scheduler("second")
    wait_for(
        lambda: all(len(fires(project, q)) >= len(before[q]) + 3 for q in before), STARTUP, "3 fires after the restart"
    )
    log = project.log("second")

    # skip: the slots late by more than the grace time at restart are not fired, and logged as skipped;
    # the later ones fire (late, but within the grace time) and then normal slots follow.
    after = fires(project, "delta-sync")[len(before["delta-sync"]) :]
    assert_once_per_slot(after, DELTA, 1)
    gap = [handled[DELTA] + 1 + i for i in range(round(after[0].slot - handled[DELTA]) - 1)]
    assert len(gap) >= 2, f"expected missed slots between {when(handled[DELTA])} and {after[0].task_id}"
    assert skipped_lines(log, DELTA) == stretch(gap)
    assert "(misfire: skip)" in log
    assert after[0].lateness <= MISFIRE_GRACE + 0.5
    assert after[0].enqueued - gap[-1] > MISFIRE_GRACE - 0.01  # the last skipped slot was indeed too late

    # run_once: one job for the whole missed stretch, for its latest slot; then the following slots.
    after = fires(project, "token-refresh")[len(before["token-refresh"]) :]
    assert_once_per_slot(after, TOKEN, 1)
    caught_up = after[0]
    # Entry ids are whole milliseconds: allow for the rounding down of the enqueue time.
    assert caught_up.lateness > MISFIRE_GRACE - 0.01, "the first fire after the restart is the missed stretch's"
    assert after[1].slot == caught_up.slot + 1 and after[1].lateness <= MISFIRE_GRACE + 0.5
    gap = [handled[TOKEN] + 1 + i for i in range(round(caught_up.slot - handled[TOKEN]) - 1)]
    assert gap, "the stretch has more slots than the one fired"
    assert skipped_lines(log, TOKEN) == stretch(gap)
    assert "(misfire: run_once)" in log
    assert when(caught_up.slot) in fired_lines(log, TOKEN)


def test_changed_and_removed_schedules_are_picked_up_without_restart(new_project: Callable[..., Project]) -> None:
    project = new_project(("every: 15m", "every: 1s"), ("every: 30m", "every: 1s"))
    project.start_scheduler("scheduler", update_interval=1)
    wait_for(
        lambda: len(fires(project, "delta-sync")) >= 2 and len(fires(project, "staging-processor")) >= 2,
        STARTUP,
        "2 fires of each",
    )
    project.edit("schedules.yaml", "every: 1s", "every: 3s")  # delta-sync-schedule
    text = (project.config / "schedules.yaml").read_text()
    block = re.search(rf"  {STAGING}:\n(    .*\n)+", text)
    assert block is not None
    (project.config / "schedules.yaml").write_text(text.replace(block.group(0), ""))
    assert project.bootstrap("apply") == 0
    applied_at = time.time()
    settled = applied_at + 3  # reload (update interval 1 s) and a tick, with a margin
    wait_for(
        lambda: len([f for f in fires(project, "delta-sync") if f.slot > settled]) >= 3,
        20,
        "3 fires of the changed schedule",
    )
    found = fires(project, "delta-sync")
    assert_once_per_slot([f for f in found if f.enqueued < applied_at], DELTA, 1)
    assert_once_per_slot([f for f in found if f.slot > settled], DELTA, 3)
    slots = [f.slot for f in found]
    assert len(slots) == len(set(slots)) and slots == sorted(slots)
    log = project.log("scheduler")
    # The removed schedule: no fire once apply deleted it (not even before the scheduler reloaded), and
    # its state is gone for good (a scheduler that had not reloaded yet does not recreate it).
    assert all(f.enqueued < applied_at for f in fires(project, "staging-processor"))
    assert STAGING not in last_slots(project)
    assert f"schedule {STAGING} fired" not in log.split("every 3s")[-1]
    assert f"schedule {DELTA}: delta-sync/run-delta-sync every 3s" in log


def test_disabled_schedule_never_fires(new_project: Callable[..., Project]) -> None:
    project = new_project(("every: 15m", "every: 1s\n    enabled: false"), ("every: 45m", "every: 1s"))
    project.start_scheduler("scheduler")
    wait_for(lambda: len(fires(project, "token-refresh")) >= 3, STARTUP, "3 fires of the enabled schedule")
    assert fires(project, "delta-sync") == []
    assert DELTA not in last_slots(project)
    assert DELTA not in project.log("scheduler")


def test_a_fire_lands_on_the_level_of_its_schedule_or_else_its_task(new_project: Callable[..., Project]) -> None:
    """delta-sync: task high, schedule silent -> high; token-refresh: task high, schedule normal ->
    normal; staging-processor: task normal, schedule low -> low."""
    project = new_project(
        ("every: 15m", "every: 1s"),
        ("every: 45m", "every: 1s\n    priority: normal"),
        ("every: 30m", "every: 1s\n    priority: low"),
        queues=(
            ("run-delta-sync: {timeout: 10m}", "run-delta-sync: {timeout: 10m, priority: high}"),
            ("refresh-tokens: {timeout: 5m}", "refresh-tokens: {timeout: 5m, priority: high}"),
        ),
    )
    expected = {"delta-sync": "high", "token-refresh": "normal", "staging-processor": "low"}
    project.start_scheduler()
    wait_for(
        lambda: all(len(fires(project, q, level)) >= 2 for q, level in expected.items()), STARTUP, "2 fires of each"
    )
    client = redis_client(project)
    try:
        for queue, level in expected.items():
            for other in PRIORITIES:
                if other != level:
                    assert fires(project, queue, other) == [], f"{queue} fired on {other}, not {level}"
            (_, fields), *_ = client.xrange(project.queue_keys(queue).stream_at(level), count=1)
            labels = json.loads(fields["data"])["labels"]
            # The label says the level, so a retry of the job goes back to it (normal: no label).
            assert labels.get("priority", NORMAL) == level, labels
    finally:
        client.close()
    assert "delta-sync/run-delta-sync every 1s (aligned), misfire run_once" in project.log("scheduler")
    assert "staging-processor/process-staging every 1s (aligned), misfire run_once, priority low" in project.log(
        "scheduler"
    )
