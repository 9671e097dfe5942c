"""A GitOps / CI walk: `validate` and `generate --check` as pre-commit and CI checks, `plan --json
--detailed-exitcode` posted on pull requests, `apply` on merge against staging then production (same
config, different environment), nightly drift detection. Each test asserts what such a pipeline
expects; each was marked xfail(strict) until the tool did so (see
/work/notes/walk-gitops.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pymongo import MongoClient

from bootstrap.cli.main import main
from tests.conftest import Result, copy_config

README_REDIS_URL = "url: redis://:${REDIS_PASSWORD}@redis:6379/0"  # README, "bootstrap.yaml"


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """`bootstrap ARGS...` in this process, a usage error (argparse's SystemExit) included as its code."""

    def call(*args: str) -> Result:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return call


def offline_config(tmp_path: Path, redis_line: str | None = None) -> Path:
    """A copy of the shipped config in a project of its own, as a fresh clone in CI has it (no servers)."""
    config = copy_config(tmp_path / "project" / "config", "gitops")
    if redis_line is not None:
        settings = config / "bootstrap.yaml"
        lines = [
            redis_line if line.strip().startswith("url: ${REDIS_URL") else line
            for line in settings.read_text().splitlines()
        ]
        settings.write_text("\n".join(lines) + "\n")
    return config


def add_users_index(config: Path, keys: str) -> None:
    users = config / "collections" / "users.yaml"
    text = users.read_text()
    users.write_text(text.replace("    sparse: true\n", f"    sparse: true\n  - keys: {keys}\n", 1))


# --- pre-commit / CI checks without servers or secrets ---------------------------------------------


def test_validate_needs_no_secret_for_the_readme_password_variable(
    tmp_path: Path, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("REDIS_URL", "REDIS_PASSWORD", "REDIS_HOST", "MONGODB_URI"):
        monkeypatch.delenv(name, raising=False)
    config = offline_config(tmp_path, f"  {README_REDIS_URL}")
    monkeypatch.setenv("REDIS_PASSWORD", "only-on-the-machine-that-generates")
    assert run("generate", "--config", str(config)).code == 0  # a developer's machine, committed
    monkeypatch.delenv("REDIS_PASSWORD")  # CI: no secrets for checks that connect to nothing
    result = run("validate", "--config", str(config))
    assert result.code == 0, result.err
    check = run("generate", "--check", "--config", str(config))
    assert check.code == 0, check.err


def test_the_default_validate_suggests_for_a_password_variable_is_accepted(
    tmp_path: Path, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("REDIS_URL", "REDIS_PASSWORD", "REDIS_HOST"):
        monkeypatch.delenv(name, raising=False)
    config = offline_config(tmp_path, f"  {README_REDIS_URL}")
    first = run("validate", "--config", str(config))  # unset: kept as written, with a warning
    assert first.code == 0 and "warning: redis.url: environment variable REDIS_PASSWORD is not set" in first.err
    offline_config(tmp_path / "again", "  url: redis://:${REDIS_PASSWORD:-}@redis:6379/0")
    monkeypatch.setenv("REDIS_PASSWORD", "hunter2hunter2")
    again = run("validate", "--config", str(tmp_path / "again" / "project" / "config"))
    assert again.code == 0, again.err  # an empty default is no password written in the file


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MONGODB_URI", "mongodb:/admin:Sup3rSecret@db.internal:27017/msedb"),
        ("MONGODB_URI", "mongodb+srv//admin:Sup3rSecret@cluster0.example.net/msedb"),
        ("REDIS_URL", "redis//:Sup3rSecret@redis.internal:6379/0"),
    ],
)
def test_a_mistyped_uri_in_the_environment_never_prints_its_password(
    tmp_path: Path, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    config = offline_config(tmp_path)
    monkeypatch.setenv("BOOTSTRAP_LOG_FORMAT", "text")  # --log-format sets it: put back after the test
    monkeypatch.setenv(variable, value)  # a CI secret with a typo
    for args in (("validate",), ("--log-format", "json", "plan", "--json")):
        result = run(*args, "--config", str(config))
        assert result.code == 1
        assert "is not valid" in result.err  # the finding is there ...
        assert "Sup3rSecret" not in result.out + result.err, result.err  # ... without the password


def test_generate_check_passes_in_every_environment_for_the_same_commit(
    tmp_path: Path, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WORKER_CONCURRENCY", raising=False)
    config = offline_config(tmp_path)
    queues = config / "queues.yaml"
    queues.write_text(
        queues.read_text().replace("  concurrency: 10\n", "  concurrency: ${WORKER_CONCURRENCY:-10}\n", 1)
    )
    assert run("validate", "--config", str(config)).code == 0
    assert run("generate", "--config", str(config)).code == 0  # committed with staging's (default) value
    assert run("generate", "--check", "--config", str(config)).code == 0
    monkeypatch.setenv("WORKER_CONCURRENCY", "40")  # production's CI job
    check = run("generate", "--check", "--config", str(config))
    assert check.code == 0, check.err
    # ... and production's workers run production's value, from the committed package.
    generated = config.parent / "generated"
    assert _worker_concurrency(generated, {"WORKER_CONCURRENCY": "40"}) == (0, "40")
    assert _worker_concurrency(generated, {}) == (0, "10")
    code, err = _worker_concurrency(generated, {"WORKER_CONCURRENCY": "forty"})
    assert code == 1 and "queues.yaml defaults.concurrency: ${WORKER_CONCURRENCY:-10} is 'forty' here" in err
    # The worker command says so in one line, not a traceback.
    clean = {k: v for k, v in os.environ.items() if k != "WORKER_CONCURRENCY"}
    worker = subprocess.run(
        [sys.executable, "-m", "msedb_jobs.worker"], cwd=generated, env={**clean, "WORKER_CONCURRENCY": "0"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert worker.returncode == 1 and worker.stderr == (
        "msedb_jobs: queues.yaml defaults.concurrency: ${WORKER_CONCURRENCY:-10} is 0 here: "
        "0 is too small (expected at least 1)\n"
    )


def _worker_concurrency(generated: Path, env: dict[str, str]) -> tuple[int, str]:
    """A new process's view of the first queue's concurrency, from the generated package: (exit code,
    its output, or its last line of error)."""
    script = "from msedb_jobs.spec import RUNTIME; print(RUNTIME.queues[0].concurrency)"
    clean = {k: v for k, v in os.environ.items() if k != "WORKER_CONCURRENCY"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=generated, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )
    return done.returncode, done.stdout.strip() if done.returncode == 0 else done.stderr.strip().splitlines()[-1]


# --- plan on a pull request -------------------------------------------------------------------------


def test_detailed_exitcode_fails_a_plan_that_apply_would_refuse(config_dir: Path, run: Callable[..., Result]) -> None:
    assert run("apply", "--config", str(config_dir)).code == 0
    users = config_dir / "collections" / "users.yaml"
    users.write_text(users.read_text().replace("  - keys: {email: 1}\n    unique: true\n", "  - keys: {email: 1}\n"))
    plan = run("plan", "--json", "--detailed-exitcode", "--config", str(config_dir))
    data = json.loads(plan.out)
    assert data["blocked"] is True and data["changes"] is False  # nothing apply would do; it refuses
    assert run("apply", "--config", str(config_dir)).code == 1
    assert plan.code not in (0, 2), "a blocked plan reads as 'changes pending' to the CI script"


def test_plan_json_says_what_it_is_a_plan_of(config_dir: Path, run: Callable[..., Result]) -> None:
    plan = run("plan", "--json", "--config", str(config_dir))
    assert plan.code == 0, plan.err
    data = json.loads(plan.out)
    status = json.loads(run("status", "--json", "--config", str(config_dir)).out)
    assert data.get("spec_hash") == status["spec_hash"]
    assert "redis" in data and "mongodb" in data, sorted(data)
    assert any(key in data for key in ("version", "format_version", "schema_version")), sorted(data)


# --- apply on merge -----------------------------------------------------------------------------------


def test_apply_can_be_pinned_to_the_reviewed_plan(
    config_dir: Path, mongo_uri: str, run: Callable[..., Result], tmp_path: Path
) -> None:
    assert run("apply", "--config", str(config_dir)).code == 0
    add_users_index(config_dir, "{lastLoginAt: -1}")  # the pull request
    reviewed = run("plan", "--prune", "--json", "--config", str(config_dir))
    assert json.loads(reviewed.out)["summary"]["drop"] == 0  # what the reviewers saw: one index to create
    saved = tmp_path / "reviewed-plan.json"
    saved.write_text(reviewed.out)
    mongo: MongoClient[dict[str, object]] = MongoClient(mongo_uri)
    try:
        users = mongo.get_default_database()["users"]
        users.create_index("displayName")  # a DBA's emergency index, after the review, before the merge
        applied = run("apply", "--prune", "--plan", str(saved), "--config", str(config_dir))
        assert "displayName_1" in users.index_information(), "apply dropped an index no one reviewed"
        assert applied.code == 1, applied.out + applied.err  # refused: live state differs from the review
    finally:
        mongo.close()


# --- editors --------------------------------------------------------------------------------------------


def test_modelines_resolve_in_a_project_of_its_own(tmp_path: Path, run: Callable[..., Result]) -> None:
    config = offline_config(tmp_path)
    assert run("validate", "--config", str(config)).code == 0
    assert run("generate", "--config", str(config)).code == 0
    assert run("schemas", "--check", "--config", str(config)).code == 1  # not there yet
    assert run("schemas", "--config", str(config)).code == 0  # what the README says to run once
    assert run("schemas", "--check", "--config", str(config)).code == 0
    unresolved = []
    for file in sorted(config.rglob("*.yaml")):
        first = file.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), file
        target = first.split("$schema=", 1)[1].strip()
        if not target.startswith(("http://", "https://")) and not (file.parent / target).is_file():
            unresolved.append(f"{file.relative_to(config)} -> {target}")
    assert not unresolved, unresolved
