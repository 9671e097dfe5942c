"""Fixtures of the job tests."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bootstrap.jobs import hotpath


@pytest.fixture
def polls(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What each of the hot connection's polls for a reply returned (True: the reply, or part of
    it, came while polling; see hotpath.SPIN)."""
    seen: list[bool] = []
    poll = hotpath.poll

    def recorded(fd: int, reader: asyncio.StreamReader, replies: Any = None) -> bool:
        seen.append(poll(fd, reader, replies))
        return seen[-1]

    monkeypatch.setattr(hotpath, "poll", recorded)
    return seen
