"""Day 2: a queue removed from queues.yaml, or a task renamed, while jobs still wait for it.

`plan` says "No changes" for the removed queue (its waiting and delayed jobs stay in Redis, never run,
and no command shows them any more: `jobs failed` / `jobs show` answer "unknown queue"), and only
"~ change schedule ...: task A -> B" for the renamed task, whose waiting and delayed jobs all go to
the failed-job store ("unknown task") once the workers run the new wiring, with no way to retry them
under the new name. The README's `plan` promise is "the operations apply would run"; an operator
expects it to say that jobs are left behind before they are."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Result


def _enqueue(cli: Callable[..., Result], config: Path, queue: str, task: str, *extra: str) -> None:
    assert cli("enqueue", queue, task, "--config", str(config), *extra).code == 0


@pytest.mark.xfail(strict=True, reason="plan says nothing of the waiting and delayed jobs of a removed queue")
def test_plan_says_a_removed_queue_still_holds_jobs(config_dir: Path, cli: Callable[..., Result]) -> None:
    assert cli("apply", "--config", str(config_dir)).code == 0
    _enqueue(cli, config_dir, "token-refresh", "refresh-tokens", "--count", "2")  # no worker runs: they wait
    _enqueue(cli, config_dir, "token-refresh", "refresh-tokens", "--delay", "1h")
    queues = config_dir / "queues.yaml"
    text = queues.read_text()
    queues.write_text(text[: text.index("  token-refresh:\n")])
    schedules = config_dir / "schedules.yaml"
    schedules.write_text(re.sub(r"  token-refresh-schedule:\n(    .*\n)+", "", schedules.read_text()))
    assert cli("validate", "--config", str(config_dir)).code == 0

    out = cli("plan", "--config", str(config_dir)).out
    assert "waiting" in out and "delayed" in out, (
        out
    )  # e.g. "? queue token-refresh is no longer declared: 2 waiting, 1 delayed"


@pytest.mark.xfail(strict=True, reason="plan says nothing of the jobs waiting for a task that is renamed")
def test_plan_says_jobs_wait_for_a_renamed_task(config_dir: Path, cli: Callable[..., Result]) -> None:
    assert cli("apply", "--config", str(config_dir)).code == 0
    _enqueue(cli, config_dir, "pattern-analysis", "analyze-patterns", "--count", "3")  # no worker runs: they wait
    for name in ("queues.yaml", "schedules.yaml"):
        path = config_dir / name
        path.write_text(path.read_text().replace("analyze-patterns", "analyze-user-patterns"))
    assert cli("validate", "--config", str(config_dir)).code == 0

    out = cli("plan", "--config", str(config_dir)).out
    assert "waiting" in out, out  # e.g. "! 3 job(s) waiting for task analyze-patterns, which is no longer declared"
