"""Fixtures of the job tests."""

from __future__ import annotations

import asyncio

import pytest

from bootstrap.jobs import hotpath


@pytest.fixture
def polls(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What each of the hot connection's polls for a reply returned (True: the reply, or part of
    it, came while polling; see hotpath.SPIN)."""
    seen: list[bool] = []
    poll = hotpath.poll

    def recorded(fd: int, reader: asyncio.StreamReader) -> bool:
        seen.append(poll(fd, reader))
        return seen[-1]

    monkeypatch.setattr(hotpath, "poll", recorded)
    return seen
