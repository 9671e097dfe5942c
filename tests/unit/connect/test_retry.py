"""Connect retry: what `connect_retry` means (retries after the first attempt, waits never above
max_delay, jitter included) and the one tenacity path every client takes."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import pytest

from bootstrap.connect import retry
from bootstrap.connect.retry import Target
from bootstrap.spec.model import ConnectRetry

SEED = ConnectRetry()  # the seed's "max 10 retries, base delay 1000 ms, max delay 30000 ms"


def _target(policy: ConnectRetry, transient: type[BaseException] = ConnectionError) -> Target:
    return Target(
        kind="Test",
        address="redis://:s3cret@db.internal:6379/0",
        policy=policy,
        transient=lambda exc: isinstance(exc, transient),
        reason=str,
        log=logging.getLogger("tests.retry"),
    )


def test_the_default_is_the_seed() -> None:
    assert (SEED.retries, SEED.attempts, SEED.delay, SEED.max_delay, SEED.jitter) == (10, 11, 1.0, 30.0, True)


def test_waits_double_up_to_max_delay_without_jitter() -> None:
    policy = ConnectRetry(jitter=False)
    assert [policy.wait(n) for n in range(1, 11)] == [1, 2, 4, 8, 16, 30, 30, 30, 30, 30]
    fixed = ConnectRetry(backoff="fixed", delay=2.0, jitter=False)
    assert {fixed.wait(n) for n in range(1, 11)} == {2.0}


@pytest.mark.parametrize("seed", range(20))
def test_jitter_never_waits_longer_than_max_delay(seed: int) -> None:
    rng = random.Random(seed)
    for n in range(1, 101):
        wait = SEED.wait(n, draw=rng.uniform)
        nominal = min(2.0 ** (n - 1), 30.0)
        assert nominal / 2 <= wait <= nominal <= SEED.max_delay


def test_huge_retry_numbers_do_not_overflow() -> None:
    assert ConnectRetry(retries=100, jitter=False).wait(100) == 30.0


def test_retries_means_retries_after_the_first_attempt(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    def attempt() -> str:
        nonlocal calls
        calls += 1
        raise ConnectionError("refused")

    policy = ConnectRetry(retries=3, delay=0.001, max_delay=0.002)
    with caplog.at_level(logging.WARNING, "tests.retry"), pytest.raises(ConnectionError):
        retry.call(_target(policy), attempt)
    assert calls == 4  # the first attempt and 3 retries
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    assert lines[0].startswith("Test redis://:****@db.internal:6379/0 not reachable (retry 1 of 3 in ")
    assert all("s3cret" not in line for line in lines)


def test_zero_retries_tries_once() -> None:
    calls = []

    def attempt() -> None:
        calls.append(1)
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        retry.call(_target(ConnectRetry(retries=0)), attempt)
    assert calls == [1]


def test_success_after_failures_returns_the_value() -> None:
    outcomes = iter([ConnectionError("down"), ConnectionError("down"), "PONG"])

    def attempt() -> str:
        outcome = next(outcomes)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    assert retry.call(_target(ConnectRetry(retries=5, delay=0.001)), attempt) == "PONG"


def test_a_final_error_is_not_retried() -> None:
    calls = 0

    def attempt() -> None:
        nonlocal calls
        calls += 1
        raise PermissionError("bad password")

    target = _target(ConnectRetry(retries=5, delay=0.001))
    with pytest.raises(PermissionError) as info:
        retry.call(target, attempt)
    assert calls == 1
    assert retry.gave_up(target, info.value) == (
        "Test at redis://:****@db.internal:6379/0 refused the connection: bad password"
    )
    assert retry.gave_up(target, ConnectionError("down")) == (
        "cannot reach Test at redis://:****@db.internal:6379/0 after 6 attempt(s) (5 retries): down"
    )


def test_the_async_path_follows_the_same_policy() -> None:
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("down")
        return "PONG"

    assert asyncio.run(retry.call_async(_target(ConnectRetry(retries=2, delay=0.001)), attempt)) == "PONG"
    calls = -10
    with pytest.raises(ConnectionError):
        asyncio.run(retry.call_async(_target(ConnectRetry(retries=2, delay=0.001)), attempt))
    assert calls == -7


def test_a_plain_function_returning_a_coroutine_is_awaited() -> None:
    """redis-py's async `ping` is such a function: its result must be awaited, not returned."""

    async def pong() -> str:
        return "PONG"

    def ping() -> Any:
        return pong()

    assert asyncio.run(retry.call_async(_target(ConnectRetry(retries=0)), ping)) == "PONG"


def test_a_hint_goes_with_the_first_failed_attempt_and_the_final_message(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI's hint when nothing says where the servers are (see cli.common.use_servers_of_up)."""
    monkeypatch.setitem(retry.HINTS, "Test", "start `bootstrap up`")

    def attempt() -> None:
        raise ConnectionError("refused")

    target = _target(ConnectRetry(retries=2, delay=0.001, max_delay=0.002))
    with caplog.at_level(logging.WARNING, "tests.retry"), pytest.raises(ConnectionError) as info:
        retry.call(target, attempt)
    first, second = (r.getMessage() for r in caplog.records)
    assert first.endswith("refused (start `bootstrap up`)") and second.endswith(": refused")
    assert retry.gave_up(target, info.value).endswith("(2 retries): refused (start `bootstrap up`)")
