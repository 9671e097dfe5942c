"""Property tests: any mutation of the shipped config either loads or fails with findings, never crashes.

Each example starts from the shipped config/, changes one file (a key deleted, a value replaced by a
random value of any JSON-ish type, a random key inserted, a name replaced by random text, random text
or bytes spliced into the YAML) and calls load_spec: it must return a Spec (whose hash can be
computed) or raise ConfigError whose findings all name a file and say something. Any other exception
is a bug.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bootstrap.errors import ConfigError
from bootstrap.spec.load import load_spec

SHIPPED = Path(__file__).resolve().parents[3] / "config"
ORIGINALS = {str(p.relative_to(SHIPPED)): p.read_bytes() for p in sorted(SHIPPED.rglob("*.yaml"))}
DATA = {name: yaml.safe_load(text) for name, text in ORIGINALS.items()}
FILES = sorted(ORIGINALS)

PROPERTY_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

text = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)  # no lone surrogates: not UTF-8
scalars = st.none() | st.booleans() | st.integers() | st.floats() | text | st.integers(min_value=10**20)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("prop") / "config"
    (folder / "collections").mkdir(parents=True)
    yield folder


def reset(config: Path) -> None:
    for name, content in ORIGINALS.items():
        (config / name).write_bytes(content)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value inside `node` (keys of mappings, indexes of lists)."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from paths(value, (*prefix, i))


def containers(node: Any) -> list[tuple[Any, ...]]:
    return [p for p in paths(node) if isinstance(get(node, p), dict)]


def get(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


def check(config: Path) -> None:
    """The property itself."""
    try:
        spec = load_spec(config, {})
    except ConfigError as exc:
        assert exc.findings
        for finding in exc.findings:
            assert isinstance(finding.file, str) and finding.file
            assert isinstance(finding.message, str) and finding.message.strip()
            assert isinstance(finding.line, int) and finding.line >= 0
            assert isinstance(finding.column, int) and finding.column >= 0
            assert str(finding)
    else:
        assert len(spec.hash()) == 16


def write(config: Path, name: str, data: Any) -> None:
    (config / name).write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


@PROPERTY_SETTINGS
@given(st.data())
def test_delete_a_key(config: Path, data: st.DataObject) -> None:
    reset(config)
    name = data.draw(st.sampled_from(FILES))
    doc = copy.deepcopy(DATA[name])
    where = data.draw(st.sampled_from([p for p in containers(doc) if get(doc, p)]))
    key = data.draw(st.sampled_from(sorted(get(doc, where))))
    del get(doc, where)[key]
    write(config, name, doc)
    check(config)


@PROPERTY_SETTINGS
@given(st.data())
def test_replace_a_value(config: Path, data: st.DataObject) -> None:
    reset(config)
    name = data.draw(st.sampled_from(FILES))
    doc = copy.deepcopy(DATA[name])
    where = data.draw(st.sampled_from([p for p in paths(doc) if p]))
    get(doc, where[:-1])[where[-1]] = data.draw(values)
    write(config, name, doc)
    check(config)


@PROPERTY_SETTINGS
@given(st.data())
def test_insert_a_key(config: Path, data: st.DataObject) -> None:
    reset(config)
    name = data.draw(st.sampled_from(FILES))
    doc = copy.deepcopy(DATA[name])
    where = data.draw(st.sampled_from(containers(doc)))
    get(doc, where)[data.draw(text)] = data.draw(values)
    write(config, name, doc)
    check(config)


NAMED = [
    ("queues.yaml", ("queues",)),
    ("schedules.yaml", ("schedules",)),
    *((name, ("fields",)) for name in FILES if name.startswith("collections/")),
    *(("queues.yaml", ("queues", queue, "tasks")) for queue in DATA["queues.yaml"]["queues"]),
]


@PROPERTY_SETTINGS
@given(st.data())
def test_random_names(config: Path, data: st.DataObject) -> None:
    reset(config)
    name, where = data.draw(st.sampled_from(NAMED))
    doc = copy.deepcopy(DATA[name])
    mapping = get(doc, where)
    old = data.draw(st.sampled_from(sorted(mapping)))
    new = data.draw(text | st.sampled_from(["import", "class", "None", "a.b", "$where", "émail", "x-", "_", "system"]))
    get(doc, where)[new] = mapping.pop(old)
    if data.draw(st.booleans()) and name.startswith("collections/"):
        doc["name"] = data.draw(text)
    write(config, name, doc)
    check(config)


YAML_BITS = [
    *":-{}[],&*!|>'\"%@`#?\t\n $<=~",
    *("\n  ", "${X", "${", "<<: ", "- ", ": ", "---\n", "&a ", "*a", "!!python/name:os.system "),
]


@PROPERTY_SETTINGS
@given(st.data())
def test_random_text_in_a_file(config: Path, data: st.DataObject) -> None:
    reset(config)
    name = data.draw(st.sampled_from(FILES))
    original = ORIGINALS[name]
    at = data.draw(st.integers(0, len(original)))
    cut = data.draw(st.integers(0, 40))
    yamlish = st.lists(st.sampled_from(YAML_BITS), max_size=8).map("".join)
    inserted = data.draw(text.map(str.encode) | yamlish.map(str.encode) | st.binary(max_size=20))
    (config / name).write_bytes(original[:at] + inserted + original[at + cut :])
    check(config)
