"""Review 10 (pure: nothing connects): problems found in 9d0534c..b424541, values of bootstrap.yaml,
queues.yaml and schedules.yaml written as `${VAR}` kept as markers in the generated package and
resolved by each process (spec.envvalues). Each test states the right behaviour; see
/work/notes/review-rev10.md.

The reference for "right" is the one the change itself uses (tests/unit/spec/test_envvalues.py): a
process started with environment E reads from the generated literal what `load_spec` with E gives,
and refuses at start-up what `bootstrap validate` with E refuses (README "Several environments": "A
process checks each such value as `validate` does (its type, range, pattern, and durations)")."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bootstrap.codegen.artifacts import contract_literal
from bootstrap.codegen.render import render
from bootstrap.errors import ConfigError, ContractError
from bootstrap.jobs.contract import Runtime
from bootstrap.spec.load import load_spec
from tests.conftest import SHIPPED_CONFIG


def _config(tmp_path: Path, *edits: tuple[str, str, str]) -> Path:
    """The shipped config with `(file, old, new)` replacements (each `old` must be there)."""
    config = tmp_path / "project" / "config"
    shutil.copytree(SHIPPED_CONFIG, config)
    for name, old, new in edits:
        path = config / name
        text = path.read_text()
        assert old in text, (name, old)
        path.write_text(text.replace(old, new, 1))
    return config


def _runtime(config: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch, generated: dict[str, str]) -> Runtime:
    """What a process started with `env` reads from the package generated with `generated`."""
    literal = contract_literal(load_spec(config, generated))
    for name in {*env, *generated}:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Runtime.from_literal(literal)


# --- 1. single-field checks of `validate` that a process skips -----------------------------------

# (edit, environment): `validate` with that environment refuses the value (checks.py, not the JSON
# Schema: duration ranges, time zones, cron expressions; a middleware's import path sits under a
# oneOf, whose error jsonschema reports at the list entry, not at `path`).
SKIPPED_AT_START = {
    "visibility_timeout 0s (>= 1s)": (
        ("queues.yaml", "  visibility_timeout: 5m ", "  visibility_timeout: ${VISIBILITY:-5m} "), {"VISIBILITY": "0s"}),
    "shutdown_timeout 2h (<= 1h)": (
        ("queues.yaml", "  shutdown_timeout: 30s\n", "  shutdown_timeout: ${SHUTDOWN:-30s}\n"), {"SHUTDOWN": "2h"}),
    "task timeout 0 (>= 1ms)": (
        ("queues.yaml", "refresh-tokens: {timeout: 5m}", "refresh-tokens:\n        timeout: ${TOKEN_TIMEOUT:-5m}"),
        {"TOKEN_TIMEOUT": "0"}),
    "rate_limit per 0s (>= 1ms)": (
        ("queues.yaml", "  max_deliveries: 3 ",
         "  rate_limit:\n    max: 10\n    per: ${RATE_PER:-1s}\n  max_deliveries: 3 "),
        {"RATE_PER": "0s"}),
    "retention max_age 0s (>= 1s)": (
        ("queues.yaml", "completed: {max_age: 1h, max_count: 200}",
         "completed:\n      max_age: ${COMPLETED_AGE:-1h}\n      max_count: 200\n   "), {"COMPLETED_AGE": "0s"}),
    "every 500ms (>= 1s)": (("schedules.yaml", "    every: 45m", "    every: ${TOKEN_EVERY:-45m}"),
                            {"TOKEN_EVERY": "500ms"}),
    "unknown time zone": (("schedules.yaml", "  timezone: UTC", "  timezone: ${SCHEDULE_TZ:-UTC}"),
                          {"SCHEDULE_TZ": "Europe/Pariss"}),
    "cron that is no cron": (("schedules.yaml", '    cron: "0 2 * * *"', '    cron: "${ANALYSIS_CRON:-0 2 * * *}"'),
                             {"ANALYSIS_CRON": "at two"}),
    "cron that never fires": (("schedules.yaml", '    cron: "0 2 * * *"', '    cron: "${ANALYSIS_CRON:-0 2 * * *}"'),
                              {"ANALYSIS_CRON": "0 2 31 2 *"}),
    "middleware import path": (
        ("queues.yaml", "  max_deliveries: 3 ",
         "  middlewares:\n    - path: ${MIDDLEWARE:-os.path:join}\n  max_deliveries: 3 "),
        {"MIDDLEWARE": "not an import path"}),
}  # fmt: skip


@pytest.mark.xfail(strict=True, reason="process accepts values validate refuses (duration ranges, tz, cron, oneOf)")
@pytest.mark.parametrize("case", SKIPPED_AT_START)
def test_a_process_refuses_what_validate_refuses_in_its_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """README: a process checks each such value "as `validate` does (its type, range, pattern, and
    durations)". These are single-field checks (not "checks across fields", which README leaves to
    validate/plan/apply). A worker with VISIBILITY=0s reclaims every job it is still running; one
    with RATE_PER=0s has a zero-length window; the scheduler's declared (fallback) schedules fire
    every 500ms or in an unknown zone. `validate` with the same environment refuses each."""
    edit, env = SKIPPED_AT_START[case]
    config = _config(tmp_path, edit)
    load_spec(config, {})  # the package generates where the variable is not set
    with pytest.raises(ConfigError):
        load_spec(config, env)  # validate, plan and apply with that environment refuse it
    with pytest.raises(ContractError):
        _runtime(config, env, monkeypatch, generated={})


# --- 2. an explicit YAML tag on a template ----------------------------------------------------------


@pytest.mark.xfail(strict=True, reason="`!!int ${VAR}` validates and generates, but every process refuses it")
@pytest.mark.parametrize("written", ['!!int "${WORKER_CONCURRENCY:-10}"', "!!int ${WORKER_CONCURRENCY:-10}"])
def test_an_explicitly_tagged_template_resolves_as_loading_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, written: str
) -> None:
    """Loading constructs an explicit `!!int` scalar as an int after interpolation (yamlload: the
    explicit tag is kept, only the plain untagged case is "retyped"). The marker records retyped=False,
    so `resolve` returns the text "10" and the schema check fails: the package `generate` wrote is
    refused at import in every environment, the generating one included, with "(quoted, so it is
    text: remove the quotes)" even when nothing is quoted."""
    config = _config(tmp_path, ("queues.yaml", "  concurrency: 10\n", f"  concurrency: {written}\n"))
    assert load_spec(config, {}).queues[0].concurrency == 10
    assert _runtime(config, {}, monkeypatch, generated={}).queues[0].concurrency == 10
    assert _runtime(config, {"WORKER_CONCURRENCY": "40"}, monkeypatch, generated={}).queues[0].concurrency == 40


# --- 3. an integral float where an integer is expected ----------------------------------------------


@pytest.mark.xfail(strict=True, reason="WORKER_CONCURRENCY=10.0: validate accepts, worker refuses with 'run generate'")
def test_an_integral_float_validate_accepts_starts_the_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """JSON Schema counts 10.0 as an integer, so `validate` (and `plan`, `apply`) with
    WORKER_CONCURRENCY=10.0 pass and the spec says concurrency 10.0; the worker's `_read` then wants
    an `int` and refuses with "this bootstrap cannot read it: run `bootstrap generate`", advice that
    cannot help (the package is current; the environment decides). Either both refuse with the
    field and the variable named, or both accept."""
    config = _config(tmp_path, ("queues.yaml", "  concurrency: 10\n", "  concurrency: ${WORKER_CONCURRENCY:-10}\n"))
    env = {"WORKER_CONCURRENCY": "10.0"}
    assert load_spec(config, env).queues[0].concurrency == 10  # validate: fine
    try:
        runtime = _runtime(config, env, monkeypatch, generated={})
    except ContractError as exc:
        assert "bootstrap generate" not in str(exc), str(exc)
        raise
    assert runtime.queues[0].concurrency == 10


# --- 4. null is baked like true/false, silently ------------------------------------------------------

DSN = ("queues.yaml", "  max_deliveries: 3 ",
       "  middlewares:\n    - path: os.path:join\n      kwargs:\n        dsn: ${SENTRY_DSN:-}\n"
       "  max_deliveries: 3 ")  # fmt: skip
PRODUCTION = {"SENTRY_DSN": "https://key@sentry.example/1"}


@pytest.mark.xfail(strict=True, reason="a ${VAR:-} that is null where generate runs is baked as None")
def test_an_empty_default_is_not_baked_into_the_package(tmp_path: Path) -> None:
    """`dsn: ${SENTRY_DSN:-}` (unquoted) is null where CI generates (no secret there) and a string in
    production: null cannot be tagged (like bool), so the package holds None. README names only true
    and false as baked; `generate --check` in production then fails (spec.py differs)."""
    config = _config(tmp_path, DSN)
    assert render(load_spec(config, {}))["spec.py"] == render(load_spec(config, PRODUCTION))["spec.py"]


@pytest.mark.xfail(strict=True, reason="production workers silently get the middleware kwarg None")
def test_production_workers_get_the_production_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same config: generated where SENTRY_DSN is not set (as a CI job without secrets does), the
    workers with SENTRY_DSN set build the middleware with dsn=None, with no error or warning."""
    config = _config(tmp_path, DSN)
    runtime = _runtime(config, PRODUCTION, monkeypatch, generated={})
    assert dict(runtime.queues[0].middlewares[0].kwargs) == {"dsn": PRODUCTION["SENTRY_DSN"]}


# --- 5. the package name follows a templated project --------------------------------------------------


@pytest.mark.xfail(strict=True, reason="project: ${PROJECT} names the generated package per environment")
def test_a_templated_project_does_not_rename_the_package(tmp_path: Path) -> None:
    """With `project: ${PROJECT:-msedb}` and no `codegen.package`, the project in the contract is a
    marker, but the package (`<project>_jobs`, computed in build.codegen) is not: `generate --check`
    in an environment with another PROJECT looks for another folder. README says a value written with
    `${...}` in bootstrap.yaml is a template in the one package; codegen settings are baked, but this
    one is not written as a setting at all."""
    config = _config(
        tmp_path,
        ("bootstrap.yaml", "project: msedb\n", "project: ${PROJECT:-msedb}\n"),
        ("bootstrap.yaml", "  package: msedb_jobs\n", ""),
    )
    assert load_spec(config, {}).codegen.package == load_spec(config, {"PROJECT": "acme"}).codegen.package


# --- 6. user data shaped like a marker ------------------------------------------------------------


@pytest.mark.xfail(strict=True, reason="a kwargs dict with the marker's six keys is resolved as a marker")
def test_kwargs_shaped_like_a_marker_stay_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A schedule's kwargs are free JSON. One holding exactly the keys $env, retyped, duration, kind,
    file and path is taken for a marker by `resolve`: the scheduler's declared schedule fires with the
    string "hello" instead of the mapping `load_spec` (and apply) give. (Its `$env` written with a `$`
    is worse: the inner value is tagged too and `resolve` dies with KeyError, not a ContractError.)"""
    kwargs = (
        "    kwargs:\n      payload:\n        $env: hello\n        retyped: false\n        duration: false\n"
        "        kind: schedules\n        file: schedules.yaml\n"
        "        path: [schedules, token-refresh-schedule, kwargs, payload]\n"
    )
    config = _config(tmp_path, ("schedules.yaml", "    every: 45m\n", "    every: 45m\n" + kwargs))
    expected = dict(load_spec(config, {}).schedules[-1].kwargs["payload"])
    assert expected["$env"] == "hello"
    got = _runtime(config, {}, monkeypatch, generated={}).schedules[-1].kwargs["payload"]
    assert not isinstance(got, str), got
    assert dict(got) == expected


# --- 7. environment values that crash the resolver instead of a ContractError ---------------------

APP_NAME = ("bootstrap.yaml", "  app_name: msedb-bootstrap", "  app_name: ${MONGO_APP_NAME:-msedb-bootstrap}")
PREFIX = ("bootstrap.yaml", "  key_prefix: msedb\n", "  key_prefix: ${KEY_PREFIX:-msedb}\n")
CRASHES = {
    "not UTF-8 (lone surrogate)": (APP_NAME, "MONGO_APP_NAME", os.fsdecode(b"app\xff")),  # UnicodeEncodeError
    "YAML merge key <<": (PREFIX, "KEY_PREFIX", "<<"),  # yaml ConstructorError
    "YAML value key =": (PREFIX, "KEY_PREFIX", "="),  # yaml ConstructorError
}


@pytest.mark.xfail(strict=True, reason="some env values raise UnicodeEncodeError/ConstructorError, not ContractError")
@pytest.mark.parametrize("case", CRASHES)
def test_a_value_loading_refuses_is_a_contract_error_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """Loading reports each as a finding naming the field (a lone surrogate from a variable that is
    not UTF-8, which os.environ holds by surrogateescape; `<<` and `=`, which YAML resolves to tags
    with no constructor). `_resolve` catches only InterpolationError and ValueError: the process dies
    with a UnicodeEncodeError from the schema check or a yaml ConstructorError, naming neither the
    file, the field nor the variable (README: "stops it at start-up with the file, the field and the
    variable")."""
    edit, name, value = CRASHES[case]
    config = _config(tmp_path, edit)
    with pytest.raises(ConfigError):
        load_spec(config, {name: value})
    with pytest.raises(ContractError, match=name):
        _runtime(config, {name: value}, monkeypatch, generated={})


# --- 8. what markers cost every process -------------------------------------------------------------

# Resident memory now (VmRSS): ru_maxrss would start at the parent's peak (kept across fork/exec).
_MEASURE = """
import json, sys
from bootstrap.jobs.contract import Runtime
def rss():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
literal = json.load(open(sys.argv[1]))
before = rss()
Runtime.from_literal(literal)
print((rss() - before) / 1024)
"""


def _start_cost_mib(tmp_path: Path, config: Path, name: str) -> float:
    literal = tmp_path / f"{name}.json"
    literal.write_text(json.dumps(contract_literal(load_spec(config, {}))))
    env = {k: v for k, v in os.environ.items() if k != "WORKER_CONCURRENCY"}
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(literal)], capture_output=True, text=True, check=True, env=env, timeout=60
    )
    return float(out.stdout.strip())


@pytest.mark.xfail(strict=True, reason="one ${VAR} adds ~9 MiB to every worker/scheduler/app process")
def test_one_marker_costs_a_process_little_memory(tmp_path: Path) -> None:
    """A single `concurrency: ${WORKER_CONCURRENCY:-10}` makes every process that imports the
    package load jsonschema-rs and compile the schemas of its kind at start-up (~4.6 + ~4.3 MiB of
    resident memory), to check a handful of values: about 13% of the 67 MiB README gives for a
    worker. Expected: checking a few scalars costs well under a few MiB."""
    plain = _start_cost_mib(tmp_path, _config(tmp_path / "a"), "plain")
    marked = _start_cost_mib(
        tmp_path,
        _config(tmp_path / "b", ("queues.yaml", "  concurrency: 10\n", "  concurrency: ${WORKER_CONCURRENCY:-10}\n")),
        "marked",
    )
    assert marked - plain < 3.0, (plain, marked)
