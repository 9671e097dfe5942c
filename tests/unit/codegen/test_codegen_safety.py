"""Values from YAML never reach generated code unescaped: names are validated before codegen, and
every literal is escaped."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bootstrap.codegen.pyliteral import literal
from bootstrap.errors import ConfigError
from bootstrap.spec.load import load_spec

CONFIG = Path(__file__).resolve().parents[3] / "config"
ENV = {"MONGODB_URI": "mongodb://127.0.0.1:27017/msedb", "REDIS_URL": "redis://127.0.0.1:6379/0"}
INJECTION = 'x"; import os; os.system("touch /tmp/pwned") #'

# (file, text in the shipped file, replacement with the injection, where the finding must point)
PLACES = [
    ("queues.yaml", "  delta-sync:\n", f"  '{INJECTION}':\n", "queues"),
    ("queues.yaml", "      run-delta-sync: {timeout: 10m}", f"      '{INJECTION}': {{timeout: 10m}}", "tasks"),
    (
        "queues.yaml",
        "      run-delta-sync: {timeout: 10m}",
        f"      run-delta-sync: {{handler: '{INJECTION}'}}",
        "handler",
    ),
    ("schedules.yaml", "  delta-sync-schedule:\n", f"  '{INJECTION}':\n", "schedules"),
    ("collections/users.yaml", "name: users", f"name: '{INJECTION}'", "name"),
    ("collections/users.yaml", "model: User", f"model: '{INJECTION}'", "model"),
    ("collections/users.yaml", "  displayName: string", f"  '{INJECTION}': string", "fields"),
    ("bootstrap.yaml", "  package: msedb_jobs", f"  package: '{INJECTION}'", "codegen.package"),
    ("bootstrap.yaml", "  key_prefix: msedb", f"  key_prefix: '{INJECTION}'", "redis.key_prefix"),
    ("bootstrap.yaml", "project: msedb", f"project: '{INJECTION}'", "project"),
]


@pytest.mark.parametrize(("file", "old", "new", "where"), PLACES, ids=[p[3] for p in PLACES])
def test_an_injection_attempt_in_any_name_is_rejected(
    tmp_path: Path, file: str, old: str, new: str, where: str
) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    path = config / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError) as caught:
        load_spec(config, env=ENV)
    assert any(where.split(".")[-1] in f.path or where in f.message for f in caught.value.findings), [
        str(f) for f in caught.value.findings
    ]


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False, allow_infinity=False),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=8,
    )
)
def test_every_literal_reads_back_as_the_same_value(value: object) -> None:
    source = literal(value)
    assert ast.literal_eval(source) == value
