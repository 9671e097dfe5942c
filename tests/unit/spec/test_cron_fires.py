"""A cron expression that names no existing date (`0 0 30 2 *`) is refused by validate, in the
schedule's own time zone, instead of crashing `status` and the scheduler later."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bootstrap.errors import ConfigError
from bootstrap.spec.checks import cron_problem
from bootstrap.spec.load import load_spec

SHIPPED = Path(__file__).resolve().parents[3] / "config"
ENV = {"MONGODB_URI": "mongodb://127.0.0.1:27017/msedb", "REDIS_URL": "redis://127.0.0.1:6379/0"}
SHIPPED_CRON = 'cron: "0 2 * * *"            # daily at 02:00'


@pytest.mark.parametrize("expression", ["0 0 30 2 *", "0 0 31 4 *", "15 3 31 2,4,6,9,11 *", "0 0 30,31 2 *"])
def test_a_cron_that_names_no_date_never_fires(expression: str) -> None:
    assert cron_problem(expression, "UTC") == (
        f"'{expression}' never fires: no date matches its day of month and month"
    )


@pytest.mark.parametrize(
    "expression",
    [
        "0 0 29 2 *",  # leap days only: still fires
        "0 0 30 2 1",  # day of month OR day of week: every Monday in February
        "0 0 31 * *",
        "*/5 * * * *",
        "30 2 * 3 0",  # inside the spring-forward gap on one Sunday, fires on the others
    ],
)
def test_a_cron_that_fires_sometimes_is_accepted(expression: str) -> None:
    assert cron_problem(expression, "Europe/Paris") is None
    assert cron_problem(expression, "UTC") is None


def test_an_unknown_time_zone_does_not_hide_the_cron_problem() -> None:
    # the time zone gets its own finding; the cron is still checked (in UTC)
    assert cron_problem("0 0 30 2 *", "Mars/Olympus") is not None
    assert cron_problem("0 0 * * *", "Mars/Olympus") is None


def test_validate_points_at_the_cron_line(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(SHIPPED, config)
    path = config / "schedules.yaml"
    text = path.read_text()
    assert SHIPPED_CRON in text
    path.write_text(text.replace(SHIPPED_CRON, 'cron: "0 0 30 2 *"\n    timezone: Europe/Paris'))
    with pytest.raises(ConfigError) as caught:
        load_spec(config, env=ENV)
    (finding,) = caught.value.findings
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "0 0 30 2 *" in text)
    assert (finding.line, finding.path) == (line, "schedules.pattern-analysis-schedule.cron")
    assert "never fires" in finding.message
