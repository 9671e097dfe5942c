"""Review rev5: escaping control characters in text-log arguments un-masks passwords.

logs.TextFormatter now writes a str argument's newline or tab as the two characters `\\n` / `\\t`
(`printable`) *before* the line is masked; `redact.mask` ends a URL's host at a separator, and `\\`
is none, so `redis://:S3cretPw@redis:6379` followed by a newline inside an argument keeps its
password -- the very gap fixed today for the JSON formatter ("masked before json.dumps"). Before
this change the real newline ended the host and the line was masked. Arguments are where outside
text goes: the worker logs `job failed: ... %s` with the handler's error message, which may be
multi-line and name a URL (seen below with the formatter the workers use)."""

from __future__ import annotations

import logging

import pytest

from bootstrap.logs import TextFormatter

SECRET = "S3cretPw77"


@pytest.mark.parametrize(
    "error",
    [
        f"ConnectionError: cannot reach redis://:{SECRET}@redis:6379\nwill retry",
        f"ServerSelectionTimeoutError: mongodb://app:{SECRET}@db.internal\n  during handling",
        f"RuntimeError: redis://:{SECRET}@redis\tthen",
    ],
    ids=["redis-newline", "mongodb-newline", "tab"],
)
def test_a_multi_line_argument_is_masked(error: str) -> None:
    record = logging.LogRecord(
        "bootstrap.jobs", logging.WARNING, __file__, 1,
        "job failed: queue=%s task=%s id=%s attempt %d of %d: %s; retrying in %.2fs",
        ("delta-sync", "run-delta-sync", "j-1", 1, 3, error, 5.0), None,
    )  # fmt: skip
    line = TextFormatter().format(record)
    assert "****" in line
    assert SECRET not in line
