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

from tests.conftest import Result


def _enqueue(cli: Callable[..., Result], config: Path, queue: str, task: str, *extra: str) -> None:
    assert cli("enqueue", queue, task, "--config", str(config), *extra).code == 0


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
    assert "? queue token-refresh is no longer declared, but its keys hold 2 waiting (or running), 1 delayed" in out
    assert cli("apply", "--config", str(config_dir)).code == 0  # nothing of it is touched
    assert cli("plan", "--config", str(config_dir)).out.count("is no longer declared") == 1


def test_plan_says_jobs_wait_for_a_renamed_task(config_dir: Path, cli: Callable[..., Result]) -> None:
    assert cli("apply", "--config", str(config_dir)).code == 0
    _enqueue(cli, config_dir, "pattern-analysis", "analyze-patterns", "--count", "3")  # no worker runs: they wait
    for name in ("queues.yaml", "schedules.yaml"):
        path = config_dir / name
        path.write_text(path.read_text().replace("analyze-patterns", "analyze-user-patterns"))
    assert cli("validate", "--config", str(config_dir)).code == 0

    out = cli("plan", "--config", str(config_dir)).out
    assert "? 3 job(s) waiting or delayed for task(s) analyze-patterns, which queue pattern-analysis no longer" in out
