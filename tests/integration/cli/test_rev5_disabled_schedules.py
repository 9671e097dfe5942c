"""Review rev5: with every schedule disabled (`enabled: false`, e.g. on a staging stack), `status`
flags "no live scheduler: the 1 schedule(s) do not fire" as needing attention, and `bootstrap
health`'s new `scheduler` check fails the same way (cli/health.py `scheduler` tests only
`spec.schedules`), so compose's health check (README: the worker's and the scheduler's) reports an
unhealthy stack for schedules that are off on purpose. Only enabled schedules need a scheduler."""

from __future__ import annotations

from bootstrap.cli.status import problems
from tests.unit.cli.test_status_render import schedule, status


def test_disabled_schedules_need_no_scheduler() -> None:
    data = {**status([schedule(enabled=False)]), "wiring": "w0", "schedulers": []}
    assert not [p for p in problems(data) if "scheduler" in p], problems(data)


def test_health_needs_no_scheduler_for_disabled_schedules(tmp_path, redis_server, key_prefix) -> None:  # type: ignore[no-untyped-def]
    import shutil
    from dataclasses import replace
    from pathlib import Path

    import redis

    from bootstrap.cli.health import scheduler
    from bootstrap.spec.load import load_spec

    config = tmp_path / "config"
    shutil.copytree(Path(__file__).resolve().parents[3] / "config", config)
    spec = load_spec(config, env={"REDIS_URL": redis_server.uri, "MONGODB_URI": "mongodb://127.0.0.1/x"})
    spec = replace(spec, schedules=tuple(replace(s, enabled=False) for s in spec.schedules))
    spec = replace(spec, redis=replace(spec.redis, key_prefix=key_prefix))
    client = redis.Redis.from_url(redis_server.uri)
    try:
        check = scheduler(spec, client, lambda spec: "w0")
    finally:
        client.close()
    assert check.ok, check
