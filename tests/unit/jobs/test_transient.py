"""Which errors count as transient connection errors, and the waits between their retries."""

from __future__ import annotations

import errno
import socket

import pymongo.errors
import pytest
import redis.exceptions

from bootstrap.errors import JobTimedOut
from bootstrap.jobs import labels
from bootstrap.jobs.transient import TRANSIENT_RETRIES, delay, is_transient


def caused(error: BaseException, cause: BaseException) -> BaseException:
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    "error",
    [
        pymongo.errors.AutoReconnect("primary stepped down"),
        pymongo.errors.NetworkTimeout("timed out"),
        pymongo.errors.ServerSelectionTimeoutError("no servers"),
        pymongo.errors.NotPrimaryError("not primary"),
        pymongo.errors.ConnectionFailure("gone"),
        redis.exceptions.ConnectionError("Connection refused"),
        redis.exceptions.TimeoutError("Timeout reading"),
        redis.exceptions.BusyLoadingError("Redis is loading the dataset"),
        ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
        ConnectionResetError(errno.ECONNRESET, "reset"),
        BrokenPipeError(errno.EPIPE, "broken pipe"),
        TimeoutError("socket timed out"),
        socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"),
        OSError(errno.ENETUNREACH, "Network is unreachable"),
        OSError(errno.EHOSTUNREACH, "No route to host"),
        caused(RuntimeError("could not save"), pymongo.errors.AutoReconnect("x")),  # raised from one
    ],
    ids=repr,
)
def test_transient_connection_errors(error: BaseException) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        JobTimedOut("the job ran longer than its timeout of 3s"),  # the job's own timeout ...
        caused(JobTimedOut("ran longer than 3s"), TimeoutError()),  # ... as the receiver raises it
        pymongo.errors.DuplicateKeyError("E11000"),
        pymongo.errors.OperationFailure("Authentication failed", code=18),
        pymongo.errors.ConfigurationError("bad uri"),
        redis.exceptions.AuthenticationError("invalid password"),
        redis.exceptions.ResponseError("WRONGTYPE"),
        FileNotFoundError(errno.ENOENT, "no such file"),
        PermissionError(errno.EACCES, "denied"),
        OSError(errno.ENOSPC, "No space left on device"),
        ValueError("bad input"),
        RuntimeError("boom"),
    ],
    ids=repr,
)
def test_other_errors_are_not_transient(error: BaseException) -> None:
    assert not is_transient(error)


def test_a_cycle_of_causes_ends() -> None:
    first, second = RuntimeError("a"), ValueError("b")
    first.__cause__, second.__cause__ = second, first
    assert not is_transient(first)


def test_five_retries_waiting_1_2_4_8_16_seconds() -> None:
    assert TRANSIENT_RETRIES == 5
    assert [delay(n) for n in range(1, TRANSIENT_RETRIES + 1)] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert labels.transient_retries({}) == 0 and labels.transient_retries({"transient_retries": "3"}) == 3
    with pytest.raises(labels.LabelError, match="label transient_retries: 6 is not a whole number from 0 to 5"):
        labels.transient_retries({"transient_retries": 6})
    assert labels.transient_retries_or_none({"transient_retries": "many"}) == TRANSIENT_RETRIES  # none left
