"""`bootstrap validate` imports the declared job handlers as workers would (the project folder and
the generated output folder on the path) and reports each one workers could not use, at the line
that declares it. Other commands never import handlers."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from bootstrap.cli.main import main
from bootstrap.errors import ConfigError
from bootstrap.spec.load import load_spec
from tests.conftest import SHIPPED_CONFIG

HANDLERS = '''\
import pathlib

pathlib.Path(__file__).with_name("imported.marker").write_text("yes")


async def good(**kwargs):
    return None


def plain(**kwargs):
    return None


not_a_function = 42


async def generator(**kwargs):
    yield 1
'''


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    shutil.copytree(SHIPPED_CONFIG, root / "config")
    (root / "handlers.py").write_text(HANDLERS)
    monkeypatch.chdir(tmp_path)  # not the project folder: workers find handlers there wherever they start
    return root


def declare(project: Path, **tasks: str) -> dict[str, int]:
    """A queue `handled` whose tasks use these handlers; the line of each `handler:`."""
    queues = project / "config" / "queues.yaml"
    text = queues.read_text().rstrip("\n") + "\n  handled:\n    tasks:\n"
    lines = {}
    for name, handler in tasks.items():
        text += f"      {name}:\n        handler: \"{handler}\"\n"
        lines[name] = text.count("\n")
    queues.write_text(text)
    return lines


def validate(project: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["validate", "--config", str(project / "config")])
    return code, capsys.readouterr().err


def test_good_handlers_async_or_plain_pass(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    declare(project, **{"t-async": "handlers:good", "t-plain": "handlers:plain"})
    code, err = validate(project, capsys)
    assert code == 0, err
    assert (project / "imported.marker").exists()


@pytest.mark.parametrize(
    ("handler", "files", "message"),
    [
        ("handlers:nope", {}, "handler handlers:nope: module handlers (project/handlers.py) has no 'nope'"),
        ("handlers:not_a_function", {}, "handler handlers:not_a_function: handlers:not_a_function is a int, "
         "not a function (async def or def)"),
        ("handlers:generator", {}, "is a generator function"),
        ("missing_module:run", {}, "cannot import missing_module: ModuleNotFoundError: No module named "
         "'missing_module'"),
        ("broken:run", {"broken.py": "import os\n\nasync def run(**kw):\n    return undefined_name\n\nx = os.nope\n"},
         "cannot import broken: AttributeError: module 'os' has no attribute 'nope' (at project/broken.py:6)"),
        ("syntax:run", {"syntax.py": "async def run(**kw)\n    return 1\n"},
         "cannot import syntax: SyntaxError: expected ':' (project/syntax.py, line 1)"),
        ("exits:run", {"exits.py": "import sys\nsys.exit(2)\n"}, "cannot import exits: SystemExit: 2"),
        ("gone:run", {"gone.py": "import os\nos._exit(5)\n"}, "importing it ended the process (exit code 5)"),
    ],
)  # fmt: skip
def test_a_handler_workers_could_not_use_is_a_finding_at_its_line(
    project: Path, capsys: pytest.CaptureFixture[str], handler: str, files: dict[str, str], message: str
) -> None:
    for name, text in files.items():
        (project / name).write_text(text)
    line = declare(project, **{"t-good": "handlers:good", "t-bad": handler})["t-bad"]
    code, err = validate(project, capsys)
    assert code == 1
    assert f"project/config/queues.yaml:{line}:18: queues.handled.tasks.t-bad.handler: " in err, err
    assert message in err, err
    assert "t-good" not in err and "1 problem(s) found" in err
    assert "importlib" not in err and "handlers.py:" not in err, err  # a place in the user's code, or none


def test_handlers_in_the_generated_output_folder_are_found(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "generated").mkdir()
    (project / "generated" / "in_output.py").write_text("async def run(**kwargs):\n    return None\n")
    declare(project, **{"t-out": "in_output:run"})
    code, err = validate(project, capsys)
    assert code == 0, err


def test_all_problems_at_once_with_the_other_findings(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    declare(project, **{"t-bad": "handlers:nope"})
    settings = project / "config" / "bootstrap.yaml"
    settings.write_text(settings.read_text().replace("project: msedb", "project: msedb\nunknown_key: 1"))
    code, err = validate(project, capsys)
    assert code == 1 and "has no 'nope'" in err and "unknown_key" in err, err


def test_loading_the_spec_for_other_commands_imports_no_handler(project: Path) -> None:
    declare(project, **{"t-bad": "handlers:nope"})
    load_spec(project / "config")  # what plan, apply, status, up use
    assert not (project / "imported.marker").exists()
    with pytest.raises(ConfigError):
        load_spec(project / "config", import_handlers=True)
    assert (project / "imported.marker").exists()


def test_no_handler_declared_no_process(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shipped config declares no handler: validate starts no process (it stays fast)."""

    def refuse(*args: object, **kwargs: object) -> Callable[..., object]:
        raise AssertionError("a process was started")

    monkeypatch.setattr(subprocess, "run", refuse)
    code, err = validate(project, capsys)
    assert code == 0, err


def test_a_handler_that_uses_the_generated_package_before_it_is_generated_says_to_generate(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The next phase's handlers import the generated models: validate, before the first generate,
    names the way out instead of only "No module named msedb_jobs"."""
    (project / "uses_models.py").write_text("from msedb_jobs.models import User\n\n\nasync def run(**kw):\n    pass\n")
    declare(project, **{"t-models": "uses_models:run"})
    code, err = validate(project, capsys)
    assert code == 1
    assert "No module named 'msedb_jobs'" in err
    assert "msedb_jobs is the package `bootstrap generate` writes (to " in err and "run it, then validate again" in err

    assert main(["generate", "--config", str(project / "config")]) == 0
    code, err = validate(project, capsys)
    assert code == 0, err
