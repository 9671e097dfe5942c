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
from bootstrap.errors import WARNING, ConfigError, ContractError, Finding
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


def test_an_empty_default_that_is_null_is_named_as_written_into_the_package(tmp_path: Path) -> None:
    """`dsn: ${SENTRY_DSN:-}` (unquoted) is null where CI generates (no secret there): null cannot be
    tagged (like true and false), so the package holds None in every environment. Loading says so,
    naming the field, so the user quotes it (text is resolved where the process runs) or sets it."""
    config = _config(tmp_path, DSN)
    warnings: list[Finding] = []
    load_spec(config, {}, warnings)
    (warning,) = [w for w in warnings if w.path == "defaults.middlewares[0].kwargs.dsn"]
    assert warning.severity == WARNING and "${SENTRY_DSN:-} is null here: generated code holds null" in warning.message


def test_a_quoted_empty_default_reaches_production_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Quoted, the same value is text: generated where SENTRY_DSN is not set, production workers get
    production's DSN."""
    name, old, new = DSN
    config = _config(tmp_path, (name, old, new.replace("${SENTRY_DSN:-}", '"${SENTRY_DSN:-}"')))
    runtime = _runtime(config, PRODUCTION, monkeypatch, generated={})
    assert dict(runtime.queues[0].middlewares[0].kwargs) == {"dsn": PRODUCTION["SENTRY_DSN"]}


# --- 5. the package name follows a templated project --------------------------------------------------


def test_a_templated_project_without_a_package_name_is_warned_of(tmp_path: Path) -> None:
    """With `project: ${PROJECT:-msedb}` and no `codegen.package`, the package is named after each
    environment's project (`msedb_jobs`, `acme_jobs`): `generate --check` elsewhere looks for another
    folder. Loading says so and what to write; with `codegen.package` set, every environment agrees."""
    config = _config(
        tmp_path,
        ("bootstrap.yaml", "project: msedb\n", "project: ${PROJECT:-msedb}\n"),
        ("bootstrap.yaml", "  package: msedb_jobs\n", ""),
    )
    warnings: list[Finding] = []
    load_spec(config, {}, warnings)
    assert any(w.path == "project" and "set codegen.package" in w.message for w in warnings), warnings
    settings = config / "bootstrap.yaml"
    settings.write_text(settings.read_text().replace("codegen:\n", "codegen:\n  package: msedb_jobs\n"))
    assert load_spec(config, {}).codegen.package == load_spec(config, {"PROJECT": "acme"}).codegen.package


# --- 6. user data shaped like a marker ------------------------------------------------------------


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


def test_one_marker_costs_a_process_little_memory(tmp_path: Path) -> None:
    """A single `concurrency: ${WORKER_CONCURRENCY:-10}` makes every process that imports the
    package load jsonschema-rs (about 4.5 MiB resident) to check its values: 7.7 MiB in all here,
    each field's schema compiled alone (the review measured ~9 MiB with whole file schemas). The
    bound keeps it under that (README: a worker is 67 MiB against BullMQ's 91)."""
    plain = _start_cost_mib(tmp_path, _config(tmp_path / "a"), "plain")
    marked = _start_cost_mib(
        tmp_path,
        _config(tmp_path / "b", ("queues.yaml", "  concurrency: 10\n", "  concurrency: ${WORKER_CONCURRENCY:-10}\n")),
        "marked",
    )
    assert marked - plain < 9.0, (plain, marked)
