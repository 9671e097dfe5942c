"""A queue's runtime for tests that run a broker in process: small retention, one test queue."""

from __future__ import annotations

from typing import Any

from bootstrap.jobs.runtime import QueueRuntime


def in_process_runtime(redis_url: str, prefix: str, queue: str = "q", **settings: Any) -> QueueRuntime:
    """`settings` override the defaults (concurrency 1, visibility 30 s, 1 h / 100 records kept)."""
    values: dict[str, Any] = {
        "visibility_timeout": 30,
        "concurrency": 1,
        "completed_max_age": 3600,
        "completed_max_count": 100,
        "failed_max_age": 3600,
        "failed_max_count": 100,
        **settings,
    }
    return QueueRuntime(prefix=prefix, queue=queue, redis_url=redis_url, **values)
