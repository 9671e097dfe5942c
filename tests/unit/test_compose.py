"""compose.yaml cannot run here (no Docker engine): check its structure instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "compose.yaml"


def load() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def test_services_and_start_order() -> None:
    services = load()["services"]
    assert set(services) == {"mongo", "redis", "apply", "worker", "scheduler"}
    assert services["mongo"]["image"].startswith("mongo:8")
    assert services["redis"]["image"].startswith("redis:7")
    assert services["apply"]["depends_on"] == {
        "mongo": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    for name in ("worker", "scheduler"):
        assert services[name]["depends_on"] == {"apply": {"condition": "service_completed_successfully"}}
    assert "bootstrap apply" in " ".join(services["apply"]["command"])


def test_health_checks() -> None:
    services = load()["services"]
    for name in ("mongo", "redis"):
        check = services[name]["healthcheck"]
        assert check["test"][0] == "CMD" and check["retries"] > 0
    assert "ping" in services["redis"]["healthcheck"]["test"]
    for name in ("worker", "scheduler"):  # the container's own checks (not the scheduler's for a worker)
        check = services[name]["healthcheck"]
        assert check["test"][:4] == ["CMD", "bootstrap", "health", "--only"] and check["retries"] > 0
        assert ("scheduler" in check["test"][4]) == (name == "scheduler") and "drift" not in check["test"][4]
        assert check["start_period"]


def test_redis_runs_with_noeviction_and_append_only_persistence() -> None:
    command = load()["services"]["redis"]["command"]
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert command[command.index("--appendonly") + 1] == "yes"
    assert load()["services"]["redis"]["volumes"]


def test_every_setting_comes_from_the_environment_and_is_documented() -> None:
    services = load()["services"]
    readme = (COMPOSE.parent / "README.md").read_text()
    for name in ("apply", "worker", "scheduler"):
        environment = services[name]["environment"]
        for key, value in environment.items():
            if key.startswith("PIP_"):
                continue
            assert value.startswith(f"${{{key}:-"), (name, key)
            assert f"`{key}`" in readme, f"{key} is not documented in the README"


def test_workers_stop_gracefully() -> None:
    services = load()["services"]
    assert services["worker"]["stop_grace_period"] and "exec python -m msedb_jobs.worker" in " ".join(
        services["worker"]["command"]
    )
