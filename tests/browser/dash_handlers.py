"""A handler for the browser tests, copied into the test project: it fails until the test says it
is fixed (a Redis key), so a job fails, shows up in the dashboard, and completes when retried."""

from __future__ import annotations

import os
from typing import Any

import redis.asyncio as aioredis

from bootstrap.jobs.handlers import Job


async def flaky(job: Job, fixed_key: str = "", **kwargs: Any) -> str:
    client = aioredis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        fixed = bool(fixed_key) and bool(await client.exists(fixed_key))
    finally:
        await client.aclose()
    if not fixed:
        raise RuntimeError(f"the upstream service is down (job {job.id})")
    return "done"
