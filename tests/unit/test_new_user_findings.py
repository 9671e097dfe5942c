"""What a new user ran into following the README (found by a walk through it; each was a bug):
a Redis URL naming a database, YAML syntax messages, plan lines, collection names, editors'
leftovers in the config folder, the dashboard token, the schemas as an editor applies them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bootstrap.dashboard.serve import guard_for
from bootstrap.engine.redis.operations import PutSchedule
from bootstrap.errors import BootstrapError, ConfigError
from bootstrap.layout import schedules as stored
from bootstrap.spec.load import load_spec
from bootstrap.spec.model import Schedule
from bootstrap.spec.yamlload import load_document

SHIPPED = Path(__file__).resolve().parents[2] / "config"


def test_redis_url_with_a_database_name_is_a_finding() -> None:
    with pytest.raises(ConfigError) as caught:
        load_spec(SHIPPED, {"REDIS_URL": "redis://127.0.0.1:6379/msedb"})
    assert any(f.path == "redis.url" for f in caught.value.findings), [str(f) for f in caught.value.findings]


def test_key_after_a_list_item_names_no_yaml_token() -> None:
    text = "fields:\n  - email: string\n  microsoftId: string\n"
    doc, findings = load_document(text, "users.yaml", {})
    assert doc is None
    (finding,) = findings
    assert (finding.line, finding.column) == (3, 3)
    assert "'?'" not in finding.message, finding.message


def test_changed_interval_is_shown_as_a_duration() -> None:
    before = stored.definition(Schedule("token-refresh-schedule", "token-refresh", "refresh-tokens", every=2700.0))
    after = stored.definition(Schedule("token-refresh-schedule", "token-refresh", "refresh-tokens", every=3600.0))
    (line,) = PutSchedule("token-refresh-schedule", after, before).describe()
    assert "every 45m -> 1h" in line, line


def test_a_collection_may_be_called_systems(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(SHIPPED, config)
    audit = config / "collections" / "auditlogs.yaml"
    audit.write_text(audit.read_text().replace("name: auditlogs\n", "name: systems\n"))
    load_spec(config, {})


@pytest.mark.parametrize("leftover", ["users.yaml~", ".#users.yaml", "#users.yaml#"])
def test_editor_leftovers_in_collections_are_skipped(tmp_path: Path, leftover: str) -> None:
    config = tmp_path / "config"
    shutil.copytree(SHIPPED, config)
    path = config / "collections" / leftover
    if leftover.startswith(".#"):
        path.symlink_to("root@host.4242:1764460000")  # how emacs locks a file being edited
    else:
        path.write_text((config / "collections" / "users.yaml").read_text())
    load_spec(config, {})


def test_a_guessable_dashboard_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOTSTRAP_DASHBOARD_TOKEN", "x")
    with pytest.raises(BootstrapError):
        guard_for("0.0.0.0")


def _raw_schema_errors(path: Path, kind: str) -> list[str]:
    """What an editor's YAML language server reports for a file: its schema applied to the text as
    written (before `${...}` is interpolated)."""
    import yaml
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    from bootstrap import resources
    from bootstrap.spec.schema_check import SCHEMA_FILES

    registry: Registry[object] = Registry().with_resources(
        (f"{name}.schema.json", Resource.from_contents(resources.schema(f"{name}.schema.json")))
        for name in SCHEMA_FILES
    )
    validator = Draft202012Validator(resources.schema(f"{kind}.schema.json"), registry=registry)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(yaml.safe_load(path.read_text()))]


def test_shipped_files_pass_their_schema_as_an_editor_reads_them() -> None:
    files = [(SHIPPED / f"{kind}.yaml", kind) for kind in ("bootstrap", "queues", "schedules")]
    files += [(path, "collection") for path in sorted((SHIPPED / "collections").glob("*.yaml"))]
    errors = {path.name: found for path, kind in files if (found := _raw_schema_errors(path, kind))}
    assert errors == {}


@pytest.mark.parametrize(
    ("variable", "said"),
    [
        ("MONGODB_URI", "mongodb.uri: expected a MongoDB connection string starting with mongodb://"),
        ("REDIS_URL", "redis.url: expected a Redis URL starting with redis://"),
    ],
)
def test_a_uri_still_starting_with_dollar_brace_once_interpolated_is_refused(variable: str, said: str) -> None:
    """The schemas let `${` through for editors; the value it becomes must still be a URI."""
    with pytest.raises(ConfigError) as caught:
        load_spec(SHIPPED, {variable: "${NOT_A_URI}"})  # an environment value is taken as is
    assert any(said in str(f) for f in caught.value.findings), [str(f) for f in caught.value.findings]
