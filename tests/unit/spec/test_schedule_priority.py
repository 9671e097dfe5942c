"""A schedule's `priority:`: read into the spec (None: the task's level), refused with its position
when it is not a level."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bootstrap.errors import ConfigError
from bootstrap.jobs.slots import problem
from bootstrap.layout.schedules import definition
from bootstrap.spec.load import load_spec
from bootstrap.spec.model import Schedule

SHIPPED = Path(__file__).resolve().parents[3] / "config"


def with_priority(tmp_path: Path, value: str) -> Path:
    config = tmp_path / "config"
    shutil.copytree(SHIPPED, config)
    schedules = config / "schedules.yaml"
    text = schedules.read_text()
    assert "    every: 15m\n" in text
    schedules.write_text(text.replace("    every: 15m\n", f"    every: 15m\n    priority: {value}\n", 1))
    return config


def test_a_schedule_declares_the_level_of_its_jobs(tmp_path: Path) -> None:
    spec = load_spec(with_priority(tmp_path, "high"), {})
    levels = {s.id: s.priority for s in spec.schedules}
    assert levels["delta-sync-schedule"] == "high"
    assert levels["token-refresh-schedule"] is None  # not declared: its task's level


def test_an_unknown_level_is_refused_with_its_position(tmp_path: Path) -> None:
    config = with_priority(tmp_path, "urgent")
    with pytest.raises(ConfigError) as caught:
        load_spec(config, {})
    (finding,) = caught.value.findings
    line = (config / "schedules.yaml").read_text().splitlines().index("    priority: urgent") + 1
    assert str(finding).startswith(f"{config / 'schedules.yaml'}:{line}:")
    expected = "schedules.delta-sync-schedule.priority: 'urgent' is not allowed (expected one of: high, normal, low)"
    assert expected in str(finding)


def test_the_stored_definition_has_a_priority_only_when_one_is_declared() -> None:
    """Definitions stored before `priority` existed stay equal to the declared ones: no plan change."""
    plain, high = Schedule("s", "q", "t", every=60.0), Schedule("s", "q", "t", every=60.0, priority="high")
    assert "priority" not in definition(plain)
    assert definition(high) == {**definition(plain), "priority": "high"}
    assert problem(definition(high)) is None
