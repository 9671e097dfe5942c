"""`bootstrap status` as text: tables whose columns never run together, runs told from skipped slots."""

from __future__ import annotations

import re
from typing import Any

from bootstrap.cli.status import render, table

NOW = 1_800_000_000.0
QUEUE = "a-queue-with-a-very-long-name-too"


def status(schedules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "spec_hash": "abc",
        "mongodb": {"uri": "mongodb://127.0.0.1:1/x", "database": "x"},
        "redis": {"url": "redis://127.0.0.1:2/0", "marker": {"id": "m", "at": 0.0}},
        "in_sync": True,
        "collections": [
            {
                "name": "a-collection-with-a-long-name-indeed",
                "exists": True,
                "documents": 1234567890,
                "indexes": "10/10",
                "drift": [],
            },
        ],
        "redis_drift": [],
        "last_apply": None,
        "queues": [
            {
                "queue": "a-queue-with-a-very-long-name-too",
                "waiting": 123456789,
                "running": 1,
                "delayed": 0,
                "completed": 98765432101,
                "failed": 7,
            },
        ],
        "schedules": schedules,
        "workers": [],
    }


def schedule(**row: Any) -> dict[str, Any]:
    base = {"id": "a-schedule-whose-id-is-longer-than-thirty", "when": "cron 0 */2 * * 1-5", "enabled": True,
            "last_run": None, "last_slot": None, "last_outcome": None, "next_run": NOW + 3600}  # fmt: skip
    return {**base, **row}


def cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def section(lines: list[str], first_header: str, rows: int = 1) -> list[str]:
    """The table under `first_header`: its header and `rows` rows."""
    start = next(i for i, line in enumerate(lines) if line.startswith(first_header))
    return lines[start : start + 1 + rows]


def test_every_column_is_separated_however_long_its_cells() -> None:
    lines = render(status([schedule(last_run=NOW - 7200, last_slot=NOW - 7200, last_outcome="completed")]), NOW)
    for header, width in (("collection", 4), ("queue", 6), ("schedule", 4)):
        rows = section(lines, header)
        assert all(len(cells(row)) == width for row in rows), rows
    schedules = section(lines, "schedule")
    assert cells(schedules[1])[:2] == ["a-schedule-whose-id-is-longer-than-thirty", "cron 0 */2 * * 1-5"]
    assert cells(schedules[1])[2].endswith("(2h00m ago)")


def test_a_handled_slot_that_fired_nothing_is_not_a_run() -> None:
    lines = render(status([schedule(last_slot=NOW - 60), schedule(id="new")]), NOW)
    rows = section(lines, "schedule", 2)
    assert cells(rows[1])[2] == "none on record"
    assert cells(rows[2])[2] == "never"


def test_a_failed_run_says_so() -> None:
    failed = schedule(last_run=NOW - 5, last_slot=NOW - 5, last_outcome="failed")
    rows = section(render(status([failed]), NOW), "schedule")
    assert cells(rows[1])[2].endswith("(5s ago), failed")


def test_table_aligns_counts_right() -> None:
    assert table(["name", "n"], [["a", "1"], ["bb", "100"]], right={1}) == ["name    n", "a       1", "bb    100"]


def worker(queue: str, wiring: str | None) -> dict[str, Any]:
    return {"queue": queue, "name": f"host-1-{queue}", "started": NOW - 60, "running": 0, "wiring": wiring}


def test_workers_on_other_wiring_than_the_specs_are_flagged() -> None:
    data = {**status([]), "worker_wiring": "new0", "workers": [worker("a-queue-with-a-very-long-name-too", "old0")]}
    lines = render(data, NOW)
    assert lines[1] == "MongoDB and Redis match the spec, but the jobs need attention:"
    assert "1 worker(s) run other wiring (old0) than the spec's (new0)" in lines[2]
    assert any("wiring old0 (not the spec's)" in line for line in lines)
    data["workers"] = [worker("a-queue-with-a-very-long-name-too", "new0")]
    assert render(data, NOW)[1] == "everything matches the spec"


def test_crash_looping_children_of_up_are_reported() -> None:
    children = [
        {"name": "worker a", "pid": None, "state": "gave up", "restarts": 5, "log": ".bootstrap/logs/worker-a.log"},
        {"name": "worker b", "pid": 7, "state": "restarting", "restarts": 2, "log": ".bootstrap/logs/worker-b.log"},
        {"name": "scheduler", "pid": 8, "state": "running", "restarts": 0, "log": ".bootstrap/logs/scheduler.log"},
    ]
    up = {"pid": 42, "restart_window": 60.0, "max_restarts": 5, "children": children}
    lines = render({**status([]), "up": up}, NOW)
    text = "\n".join(lines)
    assert "worker a kept crashing: `bootstrap up` (pid 42) stopped it after 5 restarts in 60s; see " in text
    assert "worker b is crash-looping: restarted 2 time(s) in the last 60s" in text
    assert "scheduler" not in text.split("\n\n")[0]
    assert "queue a-queue-with-a-very-long-name-too: 123456789 job(s) waiting and no live worker" in text


def test_a_paused_queue_is_marked_and_named_as_needing_attention() -> None:
    data = status([])
    data["queues"][0]["paused"] = True
    lines = render(data, NOW)
    queues = section(lines, "queue")
    assert cells(queues[1])[0] == "a-queue-with-a-very-long-name-too (paused)"
    assert len(cells(queues[1])) == 6
    text = "\n".join(lines)
    assert (
        "queue a-queue-with-a-very-long-name-too is paused: 123456789 job(s) waiting "
        "(`bootstrap jobs resume a-queue-with-a-very-long-name-too`)" in text
    )
    assert "no live worker" not in text  # paused on purpose: not a missing worker


def test_schedules_with_no_live_scheduler_or_one_on_other_wiring_are_flagged() -> None:
    data = {**status([schedule()]), "wiring": "new0", "schedulers": [], "workers": [worker(QUEUE, "new0")]}
    lines = render(data, NOW)
    assert lines[1] == "MongoDB and Redis match the spec, but the jobs need attention:"
    assert lines[2] == (
        "  ! no live scheduler: the 1 enabled schedule(s) do not fire (start the scheduler, see `bootstrap health`)"
    )
    assert "schedulers seen in the last 30s: none" in lines
    data["schedulers"] = [{"name": "host-1:42", "started": NOW - 120, "wiring": "old0", "queues": ["q"]}]
    lines = render(data, NOW)
    assert "1 scheduler(s) run other wiring (old0) than the spec's (new0)" in lines[2]
    assert cells(lines[lines.index("schedulers seen in the last 30s: 1") + 1]) == [
        "host-1:42", "up 2m00s", "wiring old0 (not the spec's)"
    ]  # fmt: skip
    data["schedulers"][0]["wiring"] = "new0"
    assert render(data, NOW)[1] == "everything matches the spec"
    assert render({**data, "schedules": [], "schedulers": []}, NOW)[1] == "everything matches the spec"


def test_a_schedule_only_change_flags_the_scheduler_not_the_workers() -> None:
    # Workers carry the hash of the files they run (no schedules.py): a cron edit changes only the
    # full wiring, which the scheduler runs.
    data = {
        **status([]),
        "wiring": "full1",
        "worker_wiring": "work0",
        "workers": [worker("a-queue-with-a-very-long-name-too", "work0")],
        "schedulers": [{"name": "host:1", "started": NOW - 60, "wiring": "full0"}],
    }
    text = "\n".join(render(data, NOW))
    assert "worker(s) run other wiring" not in text
    assert "1 scheduler(s) run other wiring (full0) than the spec's (full1)" in text
