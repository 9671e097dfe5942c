"""Masking credentials takes time in proportion to the text, whatever it holds.

`redact.mask` runs on every line the tool logs and on a failed job's error and traceback before they
are stored. Its URL search (`_SCHEME`: `[a-zA-Z][a-zA-Z0-9+.-]*://`, tried at every position) is
quadratic in a run of letters and digits with no `://`: 10,000 characters 0.18 s, 30,000 1.5 s,
100,000 22 s here. Found with a job that failed with a large error message (an 8 MiB run of one
letter, as a driver error quoting a document can hold): the worker's event loop stayed blocked in
`mask` for longer than the test's minute, its jobs waiting (leases renewed, so never handed to
another worker), and SIGTERM could not stop it within `shutdown_timeout`."""

from __future__ import annotations

import time

from bootstrap.redact import mask

# Not a timing of the mask (benchmarks do that): a guard against a search that is quadratic. A linear
# one takes milliseconds here; the quadratic one took about 40 minutes for a word this long.
RUN = 1_000_000


def test_a_long_word_is_masked_in_linear_time() -> None:
    text = "error: " + "x" * RUN + " redis://user:secret@host:6379/0"
    started = time.perf_counter()
    masked = mask(text)
    took = time.perf_counter() - started
    assert masked.endswith("redis://user:****@host:6379/0")
    assert took < 5, f"mask took {took:.1f}s for {len(text):,} characters"


def test_many_urls_on_one_long_line_are_masked_in_linear_time() -> None:
    text = "a://b " * 200_000 + "redis://user:secret@host:6379/0"
    started = time.perf_counter()
    masked = mask(text)
    took = time.perf_counter() - started
    assert masked.endswith("redis://user:****@host:6379/0")
    assert took < 5, f"mask took {took:.1f}s for {len(text):,} characters"
