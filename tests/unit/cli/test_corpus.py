"""The bad-input corpus (tests/corpus/NNN-slug/): each case is the shipped config with a mistake.

A case holds `overlay/` (files copied over a fresh copy of config/; `<name>.delete` removes a shipped
file), optionally `env.json` (the only environment variables set while it runs) and `expect.json`, a
list of {file, line, fragment}. `bootstrap validate` must exit 1 without a crash and report exactly
the expected findings: each at `config/<file>:<line>:` (or `config/<file>: ` for line 0, a finding
about the whole file) with the fragment in its path or message, and nothing else.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bootstrap.cli.main import main

TESTS = Path(__file__).resolve().parents[2]
CORPUS = TESTS / "corpus"
SHIPPED = TESTS.parent / "config"
CASES = sorted(path for path in CORPUS.iterdir() if path.is_dir())
SUMMARY = re.compile(r"^\d+ problem\(s\) found in ")
MULTI_FILE_CASE = "several-mistakes-in-several-files"


def load_case(case: Path) -> tuple[dict[str, str], list[dict[str, Any]]]:
    env_file = case / "env.json"
    env: dict[str, str] = json.loads(env_file.read_text()) if env_file.exists() else {}
    expect: list[dict[str, Any]] = json.loads((case / "expect.json").read_text())
    return env, expect


def materialise(case: Path, project: Path) -> Path:
    """A copy of the shipped config under `project`, with the case's overlay applied."""
    config = project / "config"
    shutil.copytree(SHIPPED, config)
    overlay = case / "overlay"
    for source in sorted(overlay.rglob("*")):
        if source.is_dir():
            continue
        relative = source.relative_to(overlay)
        if source.name.endswith(".delete"):
            (config / relative.parent / source.name.removesuffix(".delete")).unlink()
        else:
            target = config / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    return config


def prefix(expected: dict[str, Any]) -> str:
    """How a finding about `expected` starts when the working directory holds config/."""
    shown = f"config/{expected['file']}"
    return f"{shown}:{expected['line']}:" if expected["line"] else f"{shown}: "


def only_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """Run with exactly `env` as the environment (the shipped bootstrap.yaml then uses its defaults)."""
    for name in list(os.environ):
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def run_validate(
    case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str, str]:
    env, _ = load_case(case)
    config = materialise(case, tmp_path)
    monkeypatch.chdir(tmp_path)  # findings then name files config/...
    only_env(monkeypatch, env)
    capsys.readouterr()
    code = main(["validate", "--config", str(config), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_no_crash(output: str) -> None:
    assert "Traceback" not in output
    assert "internal error" not in output


def test_corpus_is_big_enough_and_well_formed() -> None:
    assert len(CASES) >= 45
    numbers = [case.name.split("-", 1)[0] for case in CASES]
    assert len(set(numbers)) == len(numbers), "two cases share a number"
    for case in CASES:
        assert re.fullmatch(r"\d{3}-[a-z0-9-]+", case.name), case.name
        assert (case / "overlay").is_dir(), case.name
        _, expect = load_case(case)
        assert expect, f"{case.name} expects no finding"
        for item in expect:
            assert set(item) == {"file", "line", "fragment"}, case.name
            assert item["fragment"], case.name


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_case_reports_expected_findings(
    case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, expect = load_case(case)
    code, out, err = run_validate(case, tmp_path, monkeypatch, capsys)
    assert_no_crash(out + err)
    assert code == 1, out + err
    lines = err.splitlines()
    assert lines and SUMMARY.match(lines[-1]), err
    findings = lines[:-1]
    for expected in expect:
        start = prefix(expected)
        assert any(line.startswith(start) and expected["fragment"] in line[len(start) :] for line in findings), (
            f"expected {start} ...{expected['fragment']}... in:\n{err}"
        )
    assert len(findings) == len(expect), f"unexpected extra findings:\n{err}"


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_case_json_output(
    case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, expect = load_case(case)
    code, out, err = run_validate(case, tmp_path, monkeypatch, capsys, "--json")
    assert_no_crash(out + err)
    assert code == 1
    findings = json.loads(out)
    assert isinstance(findings, list)
    assert len(findings) == len(expect)
    for finding in findings:
        assert isinstance(finding, dict)
        assert set(finding) == {"file", "line", "column", "path", "message"}
        assert isinstance(finding["file"], str) and finding["file"]
        assert isinstance(finding["line"], int) and isinstance(finding["column"], int)
        assert isinstance(finding["path"], str)
        assert isinstance(finding["message"], str) and finding["message"]
    for expected in expect:
        assert any(
            f["file"] == f"config/{expected['file']}"
            and f["line"] == expected["line"]
            and expected["fragment"] in f"{f['path']}: {f['message']}"
            for f in findings
        ), expected


def test_mistakes_in_several_files_are_all_reported_in_one_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    case = next(case for case in CASES if case.name.endswith(MULTI_FILE_CASE))
    _, expect = load_case(case)
    code, _, err = run_validate(case, tmp_path, monkeypatch, capsys)
    assert code == 1
    files = {line.split(":", 1)[0] for line in err.splitlines()[:-1]}
    assert files == {f"config/{item['file']}" for item in expect}
    assert len(files) >= 5  # bootstrap.yaml, two collections, queues.yaml, schedules.yaml
    assert err.splitlines()[-1].startswith(f"{len(expect)} problem(s) found")


def test_shipped_config_is_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    only_env(monkeypatch, {})
    code = main(["validate", "--config", str(SHIPPED)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "valid (9 collections, 23 indexes, 5 queues, 5 schedules" in captured.out
    assert captured.err == ""
    assert main(["validate", "--config", str(SHIPPED), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


# --- end to end, in a separate interpreter ------------------------------------------------------


def run_module(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bootstrap", "validate", "--config", str(config)],
        cwd=config.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_subprocess_shipped_config_exits_0() -> None:
    result = run_module(SHIPPED, {})
    assert result.returncode == 0, result.stderr
    assert "valid (9 collections" in result.stdout
    assert result.stderr == ""


SUBPROCESS_CASES = ["yaml-unclosed-flow-mapping", "python-object-tag", MULTI_FILE_CASE]


@pytest.mark.parametrize("slug", SUBPROCESS_CASES)
def test_subprocess_invalid_config_exits_1_without_traceback(slug: str, tmp_path: Path) -> None:
    case = next(case for case in CASES if case.name.split("-", 1)[1] == slug)
    env, expect = load_case(case)
    config = materialise(case, tmp_path)
    result = run_module(config, env)
    assert result.returncode == 1
    assert_no_crash(result.stdout + result.stderr)
    for expected in expect:
        assert prefix(expected) in result.stderr
