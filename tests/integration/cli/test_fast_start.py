"""`plan` and `apply` as whole processes against real servers: only what they need is imported, every
connection is closed by the time the command returns, and the process ends with its exit code and
all of its output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bootstrap.cli.main import main

JOB_STACK = {"taskiq", "aiohttp", "jinja2", "pydantic"}


def bootstrap(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # pipes: block-buffered output
    return subprocess.run([sys.executable, "-m", "bootstrap", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def sockets() -> set[str]:
    """This process's open sockets (as /proc names them)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the listing's own descriptor, closed already
        if target.startswith("socket:"):
            found.add(target)
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_no_connection_outlives_the_command(config_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = sockets()
    for command in (["plan"], ["apply"], ["apply"], ["plan", "--detailed-exitcode"]):
        assert main([*command, "--config", str(config_dir)]) == 0, capsys.readouterr().err
        assert sockets() <= before, command


def test_plan_and_apply_end_with_their_exit_code_and_all_their_output(config_dir: Path) -> None:
    config = ("--config", str(config_dir))
    first = bootstrap("plan", "--detailed-exitcode", *config)
    assert first.returncode == 2, first.stderr
    assert first.stdout.splitlines()[-1].startswith("Plan: "), first.stdout  # the summary closes it
    applied = bootstrap("apply", *config)
    assert applied.returncode == 0, applied.stderr
    lines = applied.stdout.splitlines()
    assert lines[-1].startswith("Applied: ") and len(lines) > 40
    again = bootstrap("apply", *config)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == "No changes: MongoDB and Redis match the spec."
    assert bootstrap("plan", "--detailed-exitcode", *config).returncode == 0


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_plan_and_apply_import_no_job_stack(config_dir: Path, command: str) -> None:
    script = (
        "import json, sys\n"
        "from bootstrap.cli.main import main\n"
        f"code = main([{command!r}, '--config', {str(config_dir)!r}])\n"
        "print(json.dumps([code, sorted({m.split('.')[0] for m in sys.modules})]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    code, loaded = json.loads(done.stdout.splitlines()[-1])
    assert code == 0, done.stderr
    assert not set(loaded) & JOB_STACK
    assert {"pymongo", "redis"} <= set(loaded)  # the check sees what a real run loads
