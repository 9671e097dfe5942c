"""Small hand-built specs for the pure compare tests: only what a test declares, nothing from YAML."""

from __future__ import annotations

from pathlib import Path

from bootstrap.spec.model import Codegen, Collection, MongoSettings, Queue, RedisSettings, Schedule, Spec

PREFIX = "t"


def spec_of(
    collections: tuple[Collection, ...] = (),
    queues: tuple[Queue, ...] = (),
    schedules: tuple[Schedule, ...] = (),
    *,
    policy: str = "noeviction",
) -> Spec:
    return Spec(
        project="t",
        root=Path("/nonexistent"),
        mongodb=MongoSettings(uri="mongodb://127.0.0.1:1/t", database="t"),
        redis=RedisSettings(url="redis://127.0.0.1:1/0", key_prefix=PREFIX, maxmemory_policy=policy),
        codegen=Codegen(package="t_jobs", output=Path("/nonexistent/generated")),
        collections=collections,
        queues=queues,
        schedules=schedules,
    )
