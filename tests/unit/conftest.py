"""Fixtures of the unit tests."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from bootstrap import logs


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """A stream to give bootstrap's log handler; the root logger as it was, afterwards."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    out = io.StringIO()
    yield out
    root.handlers[:] = saved
    root.setLevel(level)
    logs._writer = None
