"""What a worker accepts from its stream: labels read as data, entries that cannot run set aside
with a reason and a record (pure: no server)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bootstrap.jobs import labels
from bootstrap.jobs.intake import RAW_KEPT, UNSERVED_FOR, Rejected, Unserved, accept
from bootstrap.jobs.message import JobMessage


def data(**overrides: Any) -> dict[bytes, bytes]:
    message = {"task_id": "j-1", "task_name": "t", "labels": {}, "args": [], "kwargs": {"x": 1}, **overrides}
    return {b"data": json.dumps(message).encode()}


def check(
    fields: dict[Any, Any] | None, deliveries: int = 1, max_deliveries: int = 3
) -> JobMessage | Unserved | Rejected:
    return accept("1-0", fields, deliveries, max_deliveries, lambda name: name == "t")


def test_a_good_job_is_accepted_with_its_attempt_as_an_int() -> None:
    job = check(data(labels={"attempt": "3", "schedule_id": "s", "retry": "anything"}))
    assert isinstance(job, JobMessage)
    assert job.labels == {"attempt": 3, "schedule_id": "s", "retry": "anything"}  # retry: kept, never used
    assert check(data()).labels["attempt"] == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (None, "the stream entry has no 'data' field"),
        ({b"other": b"x"}, "the stream entry has no 'data' field"),
        ({b"data": b"\xff\xfe"}, "not a job message"),
        ({b"data": b"null"}, "not a job message"),
        (data(task_id=5), "not a job message (task_id: Input should be a valid string)"),
        (data(kwargs=[1]), "not a job message (kwargs: Input should be"),
        (data(labels_types={"attempt": 99}, labels={"attempt": "1"}), "not a job message (ValueError: 99 is not"),
        (data(labels_types={"attempt": 2}, labels={"attempt": "zz"}), "not a job message (ValueError: invalid literal"),
        (data(task_name="other", labels={"unserved_since": 1.0}), "unknown task 'other': no worker of this queue"),
        (data(labels={"attempt": "zz"}), "label attempt: 'zz' is not a whole number from 1 to 100"),
        (data(labels={"attempt": True}), "label attempt: True is not a whole number"),
        (data(labels={"attempt": 2.5}), "label attempt: 2.5 is not a whole number"),
        (data(labels={"attempt": 101}), "label attempt: 101 is not a whole number from 1 to 100"),
        (data(labels={"attempt": "1" * 40}), "label attempt: '1111111111111111111111111111111111111111' is not"),
        (data(labels={"transient_retries": 9}), "label transient_retries: 9 is not a whole number from 0 to 5"),
        (data(labels={"schedule_id": 7}), "label schedule_id: 7 is not a schedule id"),
        (data(labels={"schedule_id": ""}), "label schedule_id: '' is not a schedule id"),
    ],
)
def test_entries_that_cannot_run_are_rejected_with_the_reason(fields: dict[Any, Any] | None, reason: str) -> None:
    rejected = check(fields)
    assert isinstance(rejected, Rejected)
    assert rejected.reason.startswith(reason) and rejected.record["error"] == rejected.reason
    record = rejected.record
    # Always a record `bootstrap jobs` can show and `jobs retry` can re-enqueue.
    assert isinstance(record["id"], str) and isinstance(record["task"], str)
    assert isinstance(record["args"], list) and isinstance(record["kwargs"], dict)
    assert isinstance(record["labels"], dict)
    assert record["rejected"] is True and record["entry"] == "1-0"


def test_what_can_be_read_of_a_rejected_job_is_kept_and_unreadable_data_is_kept_raw() -> None:
    rejected = check(data(task_name="other", labels={"attempt": 2, "unserved_since": 1}))
    assert isinstance(rejected, Rejected)
    assert (rejected.job_id, rejected.record["task"], rejected.record["kwargs"]) == ("j-1", "other", {"x": 1})
    assert rejected.record["attempts"] == 2 and "data" not in rejected.record
    unreadable = check({b"data": b"x" * (RAW_KEPT * 2)})
    assert isinstance(unreadable, Rejected)
    assert unreadable.job_id == "entry-1-0" and unreadable.record["data"] == "x" * RAW_KEPT


def test_a_job_delivered_more_than_max_deliveries_is_rejected() -> None:
    assert isinstance(check(data(), deliveries=3, max_deliveries=3), JobMessage)
    rejected = check(data(labels={"attempt": 2}), deliveries=4, max_deliveries=3)
    assert isinstance(rejected, Rejected)
    assert rejected.reason == "delivered 3 times without finishing: its worker died each time"
    assert (rejected.job_id, rejected.record["deliveries"], rejected.record["attempts"]) == ("j-1", 4, 2)


@given(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.lists(st.integers())))
def test_a_label_is_a_valid_attempt_or_a_label_error_never_anything_else(value: Any) -> None:
    try:
        attempt = labels.attempt({"attempt": value})
    except labels.LabelError as exc:
        assert str(exc).startswith("label attempt: ")
    else:
        assert 1 <= attempt <= labels.MAX_ATTEMPT
    assert 1 <= labels.attempt_or_first({"attempt": value}) <= labels.MAX_ATTEMPT


def test_a_task_this_worker_does_not_serve_is_handed_back_until_none_served_it_for_a_while() -> None:
    """A rolling deploy: the other release's workers may serve it. First read: handed back from now;
    later reads keep that time; once UNSERVED_FOR has passed, set aside as an unknown task."""
    before = time.time()
    first = check(data(task_name="other"))
    assert isinstance(first, Unserved) and before <= first.since <= time.time()
    again = check(data(task_name="other", labels={"unserved_since": first.since - 60}))
    assert isinstance(again, Unserved) and again.since == first.since - 60
    as_text = check(data(task_name="other", labels={"unserved_since": str(first.since)}))  # taskiq's kicker: strings
    assert isinstance(as_text, Unserved) and as_text.since == first.since
    late = check(data(task_name="other", labels={"unserved_since": time.time() - UNSERVED_FOR - 1}))
    assert isinstance(late, Rejected) and late.reason.startswith("unknown task 'other'")
    junk = check(data(task_name="other", labels={"unserved_since": "soon"}))  # not a time: from now
    assert isinstance(junk, Unserved) and junk.since >= before
