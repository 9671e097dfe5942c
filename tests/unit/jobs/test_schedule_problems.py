"""`slots.problem`: which stored schedule definitions the slot functions cannot work on (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from bootstrap.jobs.slots import NEVER_FIRES, due_slots, problem
from bootstrap.layout.schedules import definition
from bootstrap.spec.model import Schedule

NOW = 1_795_000_000.0
GOOD = definition(Schedule("s", "q", "t", cron="0 2 * * *"))


def test_declared_schedules_have_no_problem() -> None:
    assert problem(GOOD, NOW) is None
    assert problem(definition(Schedule("s", "q", "t", every=900.0)), NOW) is None
    assert problem({**GOOD, "cron": "0 0 29 2 1"}, NOW) is None  # rare (29 Feb on a Monday), but real


@pytest.mark.parametrize("cron", ["0 0 30 2 *", "0 0 31 4 *", "0 0 31 11 *"])
def test_a_cron_naming_no_existing_date_never_fires(cron: str) -> None:
    found = problem({**GOOD, "cron": cron}, NOW)
    assert found == f"{NEVER_FIRES} (cron '{cron}' names no date that exists)"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"cron": "61 * * * *"}, "cron '61 * * * *' is not valid"),
        ({"cron": None, "every": 0}, "every: 0 is not a positive number of seconds"),
        ({"cron": None, "every": "15m"}, "every: '15m' is not a positive number"),
        ({"cron": None, "every": True}, "every: True is not a positive number"),
        ({"cron": None, "every": float("inf")}, "every: inf is not a positive number"),
        ({"every": 60.0}, "needs exactly one of cron and every"),
        ({"cron": None}, "needs exactly one of cron and every"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"timezone": "../../etc/passwd"}, "unknown time zone"),
        ({"queue": None}, "no queue"),
        ({"task": ""}, "no task"),
        ({"retry": "3"}, "retry and kwargs must be JSON objects"),
        ({"kwargs": [1]}, "retry and kwargs must be JSON objects"),
        ({"priority": "urgent"}, "priority 'urgent' is not one of high, normal, low"),
    ],
)
def test_unreadable_definitions_say_why(changes: dict[str, Any], expected: str) -> None:
    found = problem({**GOOD, **changes}, NOW)
    assert found is not None and found.startswith("unreadable definition") and expected in found


@pytest.mark.parametrize("junk", [None, [], "text", 3])
def test_a_stored_value_that_is_not_an_object(junk: object) -> None:
    assert problem(junk, NOW) == "unreadable definition (not a JSON object)"


def test_what_problem_accepts_the_slot_functions_handle() -> None:
    assert due_slots({**GOOD, "cron": "0 0 29 2 1"}, None, NOW)
    assert due_slots(definition(Schedule("s", "q", "t", every=7.0)), NOW - 70, NOW)
