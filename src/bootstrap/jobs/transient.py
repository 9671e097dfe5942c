"""Transient connection errors: a job that fails with one is retried, apart from its task's own
retry policy, because the failure says nothing about the job (a MongoDB election, a restarted
Redis, a network blip) and a task without a retry policy would otherwise go straight to the failed
store after one attempt.

Transient: pymongo's ConnectionFailure and its kinds (AutoReconnect, NetworkTimeout,
ServerSelectionTimeoutError, NotPrimaryError, WaitQueueTimeoutError); redis-py's ConnectionError
(not AuthenticationError) and TimeoutError; Python's ConnectionError (refused, reset, aborted,
broken pipe), TimeoutError and socket.gaierror (name resolution), and any OSError whose errno is a
network one (unreachable network or host, network down, timed out). The error raised, or one it
was raised from (`raise ... from exc`). A job's own timeout is a JobTimedOut, not a TimeoutError:
it is never transient.

Up to TRANSIENT_RETRIES such retries per job, waiting 1 s, 2 s, 4 s, 8 s, 16 s (31 s in all); the
attempt count stays the same. Pure: no I/O.
"""

from __future__ import annotations

import errno
import socket

import pymongo.errors
import redis.exceptions

from bootstrap.errors import JobTimedOut
from bootstrap.jobs.labels import TRANSIENT_RETRIES

__all__ = ["FIRST_DELAY", "TRANSIENT_RETRIES", "delay", "is_transient"]

FIRST_DELAY = 1.0  # seconds before the first; doubled each time

_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE, errno.ETIMEDOUT,
        errno.ENETUNREACH, errno.ENETDOWN, errno.ENETRESET, errno.EHOSTUNREACH, errno.EHOSTDOWN,
    }
)  # fmt: skip


def delay(retry: int) -> float:
    """Seconds before transient retry number `retry` (1 = first): 1, 2, 4, 8, 16."""
    return float(FIRST_DELAY * 2.0 ** (retry - 1))


def is_transient(exc: BaseException) -> bool:
    """`exc`, or an error it was raised from, is a transient connection error."""
    seen: BaseException | None = exc
    for _ in range(5):  # a short chain of causes; never loops on a cycle
        if seen is None or isinstance(seen, JobTimedOut):  # raised from the timeout's own TimeoutError
            return False
        if _transient(seen):
            return True
        seen = seen.__cause__
    return False


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, pymongo.errors.ConnectionFailure):
        return True
    if isinstance(exc, redis.exceptions.AuthenticationError):
        return False  # a wrong password stays wrong
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return True
    if isinstance(exc, ConnectionError | TimeoutError | socket.gaierror):
        return True
    return isinstance(exc, OSError) and exc.errno in _NETWORK_ERRNOS
