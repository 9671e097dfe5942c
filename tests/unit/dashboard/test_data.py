"""The pure parts of what the dashboard pages show: throughput buckets, pages of failed jobs,
schedule timelines and misfires, a failed job as shown (credentials masked)."""

from __future__ import annotations

import itertools

from bootstrap.dashboard import data


def test_buckets_cover_the_last_hour_in_equal_parts() -> None:
    edges = data.bucket_edges(10_000.0)
    assert len(edges) == data.BUCKETS
    assert edges[0][0] == 10_000.0 - 3600 and edges[-1][1] == 10_000.0
    assert all(a[1] == b[0] for a, b in itertools.pairwise(edges))
    assert {round(end - start, 6) for start, end in edges} == {300.0}


def test_paginate_clamps_and_links() -> None:
    page = data.paginate(10_000, 3)
    assert (page.number, page.pages, page.start, page.stop) == (3, 200, 100, 149)
    assert (page.previous, page.next) == (2, 4)
    assert data.paginate(10_000, 999).number == 200
    assert data.paginate(10_000, -5).number == 1
    empty = data.paginate(0, 1)
    assert (empty.pages, empty.previous, empty.next) == (1, None, None)
    last = data.paginate(51, 2)
    assert (last.start, last.next) == (50, None)


EVERY_15M = {"queue": "q", "task": "t", "every": 900, "retry": {}, "kwargs": {}, "enabled": True}
DAILY_2AM = {"queue": "q", "task": "t", "cron": "0 2 * * *", "timezone": "UTC", "retry": {}, "kwargs": {}}


def test_timeline_of_an_interval_and_a_cron_schedule() -> None:
    start = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
    slots = data.timeline(EVERY_15M, start, start + 86400)
    assert len(slots) == 96 and all(s % 900 == 0 for s in slots) and slots[0] >= start
    daily = data.timeline(DAILY_2AM, start, start + 86400)
    assert len(daily) == 1 and daily[0] % 86400 == 2 * 3600
    assert data.timeline({**EVERY_15M, "enabled": False}, start, start + 86400) == []
    assert len(data.timeline({**EVERY_15M, "every": 1}, start, start + 86400)) == data.TIMELINE_LIMIT


def test_missed_slots_count_what_came_due_unhandled() -> None:
    now = 9000.0 * 100 + 10  # just after a slot
    assert data.missed_slots(EVERY_15M, now - 10, now) == 0  # the latest slot was handled
    assert data.missed_slots(EVERY_15M, now - 10 - 3 * 900, now) == 3
    assert data.missed_slots(EVERY_15M, None, now) == 0  # never seen by a scheduler: nothing missed yet
    assert data.missed_slots(EVERY_15M, 0.0, now) == 100  # bounded, as the scheduler's catch-up is


def test_a_failed_job_is_shown_with_credentials_masked() -> None:
    record = {
        "id": "abc", "task": "sync", "finished_at": 5.0, "attempts": 3, "max_attempts": 3,
        "error": "ConnectionError: mongodb://app:s3cret@db:27017 refused",
        "traceback": "Traceback ...\n  redis://:hunter2@cache:6379/0\n",
        "args": [1], "kwargs": {"url": "https://u:pw@example.com/x"},
    }  # fmt: skip
    shown = data.shown_job(record)
    text = " ".join(str(v) for v in shown.values())
    for secret in ("s3cret", "hunter2", "pw@"):
        assert secret not in text
    assert shown["id"] == "abc" and '"args": [1]' in shown["arguments"]
    assert "u:****@example.com" in shown["arguments"]  # in the arguments too


def test_text_without_urls_or_options_is_shown_as_it_is() -> None:
    shown = data.shown_job({"id": "x", "error": "ValueError: bad <input> & more", "traceback": "  line 1"})
    assert shown["error"] == "ValueError: bad <input> & more" and shown["traceback"] == "  line 1"
    assert data.shown_job({"id": "x", "error": "failed: password=hunter2"})["error"] == "failed: password=****"
