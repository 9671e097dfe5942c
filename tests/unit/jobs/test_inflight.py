"""A worker's in-flight bookkeeping: held, started, waiting, what to renew and what to give back."""

from __future__ import annotations

from bootstrap.jobs.inflight import InFlight


def test_read_jobs_are_held_and_count_as_waiting_until_started() -> None:
    held = InFlight()
    held.hold(["1-0", "2-0", "3-0"])
    held.start("1-0")
    assert "2-0" in held and "9-0" not in held
    assert (held.waiting, held.running) == (2, 1)
    assert sorted(held.held()) == ["1-0", "2-0", "3-0"]  # all renewed, started or not
    assert sorted(held.unstarted()) == ["2-0", "3-0"]


def test_letting_go_forgets_a_job_started_or_not() -> None:
    held = InFlight()
    held.hold(["1-0", "2-0"])
    held.start("1-0")
    held.let_go("1-0")  # acknowledged
    held.let_go("2-0")  # abandoned
    held.let_go("3-0")  # never held: nothing to do
    assert held.held() == [] and (held.waiting, held.running) == (0, 0)


def test_given_back_jobs_are_no_longer_held_and_started_ones_stay() -> None:
    held = InFlight()
    held.hold(["1-0", "2-0", "3-0"])
    held.start("3-0")
    held.gave_back(held.unstarted())
    assert held.held() == ["3-0"] and held.unstarted() == [] and held.running == 1
