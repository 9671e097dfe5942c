"""Review 9 (pure, and in-process CLI runs that connect to nothing): problems found in a943aec,
each as a test of the right behaviour. See /work/notes/review-rev9.md."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from bootstrap.cli import health
from bootstrap.spec.load import load_spec
from bootstrap.spec.yamlload import Finding
from tests.conftest import SHIPPED_CONFIG


def _sentinel_config(tmp_path: Path) -> Path:
    """The shipped config on a Sentinel set whose hosts come from the environment, with no default
    (each environment has its own sentinels; README: `hosts: "${REDIS_SENTINELS:-...}"`)."""
    config = tmp_path / "project" / "config"
    shutil.copytree(SHIPPED_CONFIG, config)
    settings = config / "bootstrap.yaml"
    settings.write_text(settings.read_text().replace(
        "  key_prefix: msedb\n",
        '  key_prefix: msedb\n  mode: sentinel\n  sentinel: {master: mymaster, hosts: "${REDIS_SENTINELS}"}\n',
    ))  # fmt: skip
    return config


def test_validate_without_the_sentinel_hosts_variable_keeps_it_as_written(tmp_path: Path) -> None:
    """A CI job or pre-commit hook without the environment's variables: `redis.sentinel.hosts` stays
    `${REDIS_SENTINELS}` in the generated package (build.redis_settings takes its template, as for the
    URL), so nothing offline reads its value: it is kept as written, with a warning, as the URL is.
    It was before a943aec; README now says only values "written into the generated package" are errors."""
    config = _sentinel_config(tmp_path)
    warnings: list[Finding] = []
    spec = load_spec(config, env={}, warnings=warnings, offline=True)
    assert spec.redis.sentinel_hosts_template == "${REDIS_SENTINELS}"
    assert any("REDIS_SENTINELS" in str(w) for w in warnings), warnings


def _help_of_health(option: str) -> str:
    parser = argparse.ArgumentParser()
    health.add_arguments(parser)
    return str(next(a for a in parser._actions if option in a.option_strings).help)


def test_health_help_recommends_the_schedulers_check_compose_uses() -> None:
    text = _help_of_health("--only")
    assert "schedules,scheduler" not in text, text
