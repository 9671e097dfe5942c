"""A Redis outage longer than the visibility timeout leaves every running job idle past it. Found by
the operator walk: as Redis came back, a worker could take over jobs whose owner was still running
them (a race between the owner's renewal and the other's takeover), so they ran twice at once. Now
an owner retries its renewal every RENEW_RETRY seconds while Redis is away, and a worker whose read
failed takes nothing over until the owners had a renewal period to renew (`Reclaimer.outage`).
Real Redis, stopped and started again on its data; the owner's real renewal thread."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from bootstrap.jobs import upkeep
from bootstrap.jobs.inflight import InFlight
from bootstrap.jobs.upkeep import Reclaimer, Renewer
from bootstrap.layout.keys import GROUP, QueueKeys, as_text
from bootstrap.local.servers import RedisServer

VISIBILITY = 2.0  # seconds
OUTAGE = 3.5  # seconds: longer than the visibility timeout


def _outage_then_look(tmp_path: Path, told: bool) -> tuple[list[str], str]:
    """A job held and renewed by `owner`; Redis away for OUTAGE seconds; then another worker's
    reclaimer (told of the outage, as its read loop tells it, or not) looks for 3 seconds. Returns
    the entries it took over and who holds the job at the end."""
    server = RedisServer(tmp_path / "redis")  # append-only file on: the restart keeps the data
    server.start()
    keys = QueueKeys(f"t-{uuid.uuid4().hex[:8]}", "q")
    client = redis.Redis.from_url(server.uri)
    client.xgroup_create(keys.stream, GROUP, id="0", mkstream=True)
    client.xadd(keys.stream, {"data": "x"})
    [[_, [(entry, _)]]] = client.xreadgroup(GROUP, "owner", {keys.stream: ">"}, count=1)
    entry_id = as_text(entry)
    held = InFlight()
    held.hold([entry_id])
    renewer = Renewer(redis.Redis.from_url(server.uri, socket_timeout=1), keys, "owner", VISIBILITY, held)
    renewer.start()
    reclaimer = Reclaimer(keys, "other", VISIBILITY, InFlight())
    reclaimer.due()  # its first look, before the outage: nothing to take over

    async def look() -> list[str]:
        conn: Any = aioredis.from_url(server.uri)
        taken: list[str] = []
        try:
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                if reclaimer.due():
                    taken += [ref for ref, _, _ in await reclaimer.reclaim(conn, lambda: 10)]
                await asyncio.sleep(0.02)
        finally:
            await conn.aclose()
        return taken

    try:
        server.stop()
        time.sleep(OUTAGE)
        if told:
            reclaimer.outage()  # its read failed during the outage (the last failure: just before)
        server.start()
        taken = asyncio.run(look())
        [pending] = client.xpending_range(keys.stream, GROUP, min="-", max="+", count=1)
        return taken, as_text(pending["consumer"])
    finally:
        renewer.stop()
        client.close()
        server.stop()


def test_a_worker_back_from_an_outage_leaves_running_jobs_to_their_owner(tmp_path: Path) -> None:
    taken, holder = _outage_then_look(tmp_path, told=True)
    assert taken == [] and holder == "owner"


def test_without_the_grace_the_job_is_taken_from_its_live_owner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scenario is sharp: a reclaimer not told of the outage (as before this fix) takes the job
    from its live owner, whose renewal comes later (held back here by the visibility timeout, so
    that a busy machine cannot let it win), and the job runs in both workers."""
    monkeypatch.setattr(upkeep, "RENEW_RETRY", VISIBILITY)
    taken, _ = _outage_then_look(tmp_path, told=False)
    assert len(taken) == 1
