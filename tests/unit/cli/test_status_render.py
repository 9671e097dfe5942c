"""`bootstrap status` as text: tables whose columns never run together, runs told from skipped slots."""

from __future__ import annotations

import re
from typing import Any

from bootstrap.cli.status import render, table

NOW = 1_800_000_000.0


def status(schedules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "spec_hash": "abc",
        "mongodb": {"uri": "mongodb://127.0.0.1:1/x", "database": "x"},
        "redis": {"url": "redis://127.0.0.1:2/0"},
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
