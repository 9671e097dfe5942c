"""The command line loads only what the chosen command needs, and ends as soon as it is done.

Each check runs in a fresh interpreter (`sys.modules` of this one holds whatever other tests imported).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bootstrap.cli.main import COMMANDS, _driver_error, main

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "config"
JOB_STACK = ("taskiq", "aiohttp", "jinja2", "pydantic")  # never for validate, plan or apply
DRIVERS = ("pymongo", "redis", "bson")
SLOW_TO_IMPORT = ("jsonschema", "referencing", "croniter", "importlib.resources")


def loaded_after(code: str) -> set[str]:
    """Top-level package names (and `importlib.resources`) imported by running `code`."""
    script = (
        "import json, sys\n"
        f"{code}\n"
        "names = {m.split('.')[0] for m in sys.modules} | ({'importlib.resources'} & set(sys.modules))\n"
        "print(json.dumps(sorted(names)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_importing_the_entry_point_loads_no_dependency() -> None:
    loaded = loaded_after("import bootstrap.cli.main")
    assert "bootstrap" in loaded
    assert not loaded & {*JOB_STACK, *DRIVERS, *SLOW_TO_IMPORT, "yaml"}


def test_no_command_module_is_imported_before_one_is_chosen() -> None:
    script = (
        "import sys\n"
        "from bootstrap.cli.main import parser\n"
        "parser()\n"
        "assert not [m for m in sys.modules if m.startswith(('bootstrap.cli.', 'bootstrap.engine', 'bootstrap.jobs'))\n"
        "            and m not in ('bootstrap.cli.main', 'bootstrap.cli.options')], sorted(sys.modules)\n"
    )
    loaded_after(script)


@pytest.mark.parametrize("command", ["validate", "plan", "apply"])
def test_parsing_a_core_command_loads_no_job_stack(command: str) -> None:
    loaded = loaded_after(f"from bootstrap.cli.main import parser\nparser().parse_args([{command!r}])")
    assert not loaded & set(JOB_STACK)


def test_validate_run_loads_no_driver_and_no_job_stack() -> None:
    loaded = loaded_after(
        "from bootstrap.cli.main import main\n"
        f"assert main(['validate', '--config', {str(SHIPPED)!r}]) == 0\n"
    )
    assert not loaded & {*JOB_STACK, *DRIVERS, *SLOW_TO_IMPORT}


def test_an_invalid_config_still_gets_jsonschema_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """jsonschema is imported only for an invalid document, and then explains it."""
    config = tmp_path / "config"
    config.mkdir()
    (config / "bootstrap.yaml").write_text("project: p\nmongodb: {uri: 'mongodb://h/d', pool: {max_size: x}}\n"
                                           "redis: {url: 'redis://h'}\n")
    assert main(["validate", "--config", str(config)]) == 1
    assert "mongodb.pool.max_size: expected an integer, got string 'x'" in capsys.readouterr().err


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for name, command in COMMANDS.items():
        assert name in out
        assert command.help.split()[0] in out


@pytest.mark.parametrize(("command", "option"), [("plan", "--detailed-exitcode"), ("apply", "--lock-timeout"),
                                                 ("validate", "--json"), ("jobs", "ACTION")])
def test_command_help_shows_its_own_options(command: str, option: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert option in out
    assert "--config DIR" in out or command == "jobs"


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["nope"])
    assert exit_.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_config_of_a_nested_action_is_kept(tmp_path: Path) -> None:
    from bootstrap.cli.main import parser

    before = parser().parse_args(["jobs", "--config", str(tmp_path), "failed", "q"])
    after = parser().parse_args(["jobs", "failed", "q", "--config", str(tmp_path)])
    assert before.config == after.config == tmp_path


def test_driver_errors_are_recognised_without_importing_drivers() -> None:
    from pymongo.errors import OperationFailure
    from redis.exceptions import ConnectionError as RedisConnectionError

    assert _driver_error(OperationFailure("not authorized")) == "MongoDB"
    assert _driver_error(RedisConnectionError("refused")) == "Redis"
    assert _driver_error(ValueError("a bug")) is None


# --- the exit -------------------------------------------------------------------------------------


def run_entry(argv: list[str], prelude: str = "") -> subprocess.CompletedProcess[str]:
    script = (
        f"import sys\n{prelude}\nsys.argv = ['bootstrap', *{argv!r}]\nfrom bootstrap.cli.main import entry\nentry()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # stdout to a pipe: block-buffered
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)


def test_entry_ends_with_the_commands_exit_code_and_all_its_output(tmp_path: Path) -> None:
    done = run_entry(["validate", "--config", str(SHIPPED)])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{SHIPPED}: valid (9 collections")  # written to a pipe, so block-buffered
    broken = tmp_path / "config"
    broken.mkdir()
    done = run_entry(["validate", "--config", str(broken)])
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == f"1 problem(s) found in {broken}"


def test_entry_exits_at_once_only_when_nothing_else_runs(tmp_path: Path) -> None:
    """A non-daemon thread still running (not ours, but possible) gets the usual exit, which waits
    for it; without one, output printed but not yet flushed is flushed."""
    marker = tmp_path / "finished"
    prelude = (
        "import threading, time\n"
        f"threading.Thread(target=lambda: (time.sleep(2), open({str(marker)!r}, 'w').close())).start()\n"
    )
    done = run_entry(["validate", "--config", str(SHIPPED)], prelude)
    assert done.returncode == 0
    assert marker.exists()
    unflushed = "import bootstrap.console\nbootstrap.console.out = lambda text='', **_: print(text)\n"
    done = run_entry(["validate", "--config", str(SHIPPED), "--json"], unflushed)
    assert done.returncode == 0
    assert done.stdout == "[]\n"


def test_commands_that_end_at_once_are_the_short_ones() -> None:
    quick = {name for name, command in COMMANDS.items() if command.ends_at_once}
    assert {"validate", "plan", "apply"} <= quick
    assert not quick & {"up", "enqueue", "generate"}  # child processes, asyncio, files: the usual exit
