"""The YAML loader: positions, duplicate keys, merge keys, string keys, interpolation typing, safety."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bootstrap.errors import Finding
from bootstrap.spec.load import read_document
from bootstrap.spec.yamlload import MAX_DEPTH, MAX_VALUES, Document, dotted, load_document


def load(text: str, env: dict[str, str] | None = None) -> Document:
    doc, findings = load_document(text, "f.yaml", env or {})
    assert not findings, [str(f) for f in findings]
    assert doc is not None
    return doc


def problems(text: str, env: dict[str, str] | None = None) -> list[Finding]:
    doc, findings = load_document(text, "f.yaml", env or {})
    assert doc is None
    assert findings
    return findings


def only(text: str, env: dict[str, str] | None = None) -> Finding:
    findings = problems(text, env)
    assert len(findings) == 1, [str(f) for f in findings]
    return findings[0]


# --- positions ---------------------------------------------------------------------------------

POSITIONS = """\
name: users
fields:
  email: {type: string, required: true}
  tags:
    - a
    - b
indexes:
  - keys: {email: 1}
    unique: true
"""


def test_positions_of_values() -> None:
    doc = load(POSITIONS)
    assert doc.values[()] == (1, 1)
    assert doc.values[("name",)] == (1, 7)
    assert doc.values[("fields",)] == (3, 3)  # a block mapping starts at its first key
    assert doc.values[("fields", "email")] == (3, 10)
    assert doc.values[("fields", "email", "type")] == (3, 17)
    assert doc.values[("fields", "email", "required")] == (3, 35)
    assert doc.values[("fields", "tags", 1)] == (6, 7)
    assert doc.values[("indexes", 0)] == (8, 5)
    assert doc.values[("indexes", 0, "unique")] == (9, 13)


def test_positions_of_keys() -> None:
    doc = load(POSITIONS)
    assert doc.keys[("name",)] == (1, 1)
    assert doc.keys[("fields", "email")] == (3, 3)
    assert doc.keys[("fields", "email", "required")] == (3, 25)
    assert doc.keys[("indexes", 0, "unique")] == (9, 5)
    assert ("indexes", 0) not in doc.keys  # list items have no key


def test_locate_prefers_key_and_falls_back_to_nearest_enclosing_value() -> None:
    doc = load(POSITIONS)
    assert doc.locate(("fields", "email")) == (3, 10)
    assert doc.locate(("fields", "email"), key=True) == (3, 3)
    assert doc.locate(("fields", "email", "default")) == (3, 10)  # not written: its mapping
    assert doc.locate(("indexes", 0, "name"), key=True) == (8, 5)
    assert doc.locate(("nowhere", "at", "all")) == (1, 1)


def test_finding_carries_file_position_and_dotted_path() -> None:
    doc = load(POSITIONS)
    finding = doc.finding(("indexes", 0, "unique"), "bad")
    assert finding == Finding("f.yaml", 9, 13, "indexes[0].unique", "bad")
    assert str(finding) == "f.yaml:9:13: indexes[0].unique: bad"
    assert str(doc.finding((), "whole file")) == "f.yaml:1:1: whole file"


def test_dotted() -> None:
    assert dotted(()) == ""
    assert dotted(("a",)) == "a"
    assert dotted(("a", "b", 0, "c")) == "a.b[0].c"
    assert dotted((0, 1)) == "[0][1]"


def test_positions_after_byte_order_mark_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_bytes(b"\xef\xbb\xbfa: 1\r\nb:\r\n  c: 2\r\n")
    doc, findings = read_document(path, {})
    assert not findings and doc is not None
    assert doc.data == {"a": 1, "b": {"c": 2}}
    assert doc.values[("b", "c")] == (3, 6)


# --- duplicate keys ---------------------------------------------------------------------------


def test_duplicate_key_is_a_finding_at_the_second_occurrence() -> None:
    finding = only("a: 1\nb:\n  x: 1\n  y: 2\n  x: 3\n")
    assert (finding.line, finding.column, finding.path) == (5, 3, "b.x")
    assert finding.message == "duplicate key 'x' (first defined at line 3)"


def test_every_duplicate_is_reported() -> None:
    findings = problems("a: 1\na: 2\nb: 1\nb: 2\n")
    assert [(f.line, f.path) for f in findings] == [(2, "a"), (4, "b")]


def test_duplicate_key_in_flow_mapping() -> None:
    assert only("a: {x: 1, x: 2}\n").message.startswith("duplicate key 'x'")


# --- merge keys -------------------------------------------------------------------------------


def test_merge_key() -> None:
    doc = load("base: &base {attempts: 3, delay: 5s}\nretry:\n  <<: *base\n  delay: 10s\n")
    assert doc.data["retry"] == {"attempts": 3, "delay": "10s"}


def test_merge_key_explicit_value_wins_and_is_located_where_written() -> None:
    doc = load("base: &base {attempts: 3, delay: 5s}\nretry:\n  <<: *base\n  delay: 10s\n")
    assert doc.values[("retry", "delay")] == (4, 10)
    assert doc.keys[("retry", "delay")] == (4, 3)
    assert doc.values[("retry", "attempts")] == (1, 24)  # merged: where the anchor wrote it


def test_merge_key_explicit_value_wins_when_written_before_the_merge() -> None:
    doc = load("base: &base {a: 1, b: 2}\nc: {b: 3, <<: *base}\n")
    assert doc.data["c"] == {"a": 1, "b": 3}


def test_merge_key_earlier_source_wins() -> None:
    doc = load("x: &x {a: 1}\ny: &y {a: 2, b: 2}\nz:\n  <<: [*x, *y]\n")
    assert doc.data["z"] == {"a": 1, "b": 2}


def test_nested_merge() -> None:
    doc = load("x: &x {a: 1}\ny: &y {<<: *x, b: 2}\nz: {<<: *y, c: 3}\n")
    assert doc.data["z"] == {"a": 1, "b": 2, "c": 3}


def test_recursive_merge_terminates() -> None:
    doc = load("a: &a {x: 1, <<: *a}\n")
    assert doc.data == {"a": {"x": 1}}


def test_exponential_merge_is_cheap() -> None:
    lines = ["l0: &l0 {a: 1}"]
    for level in range(1, 30):
        lines.append(f"l{level}: &l{level} {{<<: [{', '.join([f'*l{level - 1}'] * 10)}], k{level}: 1}}")
    started = time.perf_counter()
    doc, findings = load_document("\n".join(lines) + "\n", "f.yaml", {})
    assert time.perf_counter() - started < 5
    assert doc is not None or findings


@pytest.mark.parametrize("text", ["a: {<<: 5}\n", "a: {<<: [1, 2]}\n", "a: {<<: [[1]]}\n"])
def test_merge_of_non_mapping_is_a_finding(text: str) -> None:
    assert all("'<<' merges mappings only" in f.message for f in problems(text))


# --- keys stay strings, values resolve as YAML says -----------------------------------------------


def test_keys_are_verbatim_strings() -> None:
    doc = load("on: 1\noff: 2\nyes: 3\nno: 4\ntrue: 5\nnull: 6\n~: 7\n1: 8\n1.5: 9\n2024-01-01: 10\n")
    assert list(doc.data) == ["on", "off", "yes", "no", "true", "null", "~", "1", "1.5", "2024-01-01"]


def test_values_resolve_by_yaml_rules() -> None:
    doc = load("a: on\nb: no\nc: '5'\nd: 5\ne: 5.5\nf: null\ng: ~\nh:\ni: 2024-01-31\nj: 0x1f\nk: 1_000\n")
    assert doc.data == {
        "a": True,
        "b": False,
        "c": "5",
        "d": 5,
        "e": 5.5,
        "f": None,
        "g": None,
        "h": None,
        "i": "2024-01-31",  # dates stay text; the schema says what it expects
        "j": 31,
        "k": 1000,
    }


def test_huge_integer_is_kept_exactly() -> None:
    assert load(f"a: {10**100}\n").data == {"a": 10**100}


@pytest.mark.parametrize("text", ["a: .inf\n", "a: -.inf\n", "a: .nan\n", "a: .NaN\n", "a: [1, .inf]\n"])
def test_non_finite_numbers_are_refused(text: str) -> None:
    assert "is not a finite number" in only(text).message


def test_keys_that_are_collections_are_refused() -> None:
    finding = only("? [a, b]\n: 1\n")
    assert "mapping keys must be plain strings" in finding.message


# --- interpolation and typing -------------------------------------------------------------------


def test_unquoted_interpolation_is_typed_like_a_literal() -> None:
    doc = load("port: ${PORT:-6379}\nflag: ${FLAG:-true}\nratio: ${R:-0.5}\nnothing: ${N:-null}\n")
    assert doc.data == {"port": 6379, "flag": True, "ratio": 0.5, "nothing": None}


def test_quoted_interpolation_stays_a_string() -> None:
    doc = load("a: '${PORT:-6379}'\nb: \"${PORT:-6379}\"\n")
    assert doc.data == {"a": "6379", "b": "6379"}


def test_explicit_tag_decides_the_type_of_interpolation() -> None:
    doc = load(
        "a: !!str ${PIN}\nb: &b !!str ${PIN}\nc: !!str &c ${PIN}\nd: *b\nf: !!int ${PIN}\ng: &g ${PIN}\n",
        {"PIN": "0042"},
    )
    # Untagged, 0042 is read as written literally: a YAML 1.1 octal number. !!str keeps the text.
    assert doc.data == {"a": "0042", "b": "0042", "c": "0042", "d": "0042", "f": 34, "g": 34}


def test_null_document_is_not_empty() -> None:
    assert load("~\n").data is None  # load_spec reports the scalar


def test_interpolation_types_the_environment_value() -> None:
    doc = load("port: ${PORT:-6379}\nname: ${PORT:-6379}x\n", {"PORT": "6380"})
    assert doc.data == {"port": 6380, "name": "6380x"}


@pytest.mark.parametrize("value", ["{a: 1}", "[1, 2]", "*alias", "a: b", "!!python/object:os.system", "- x", "# c"])
def test_environment_value_is_never_parsed_as_yaml(value: str) -> None:
    doc = load("v: ${V}\n", {"V": value})
    assert doc.data == {"v": value}


def test_interpolation_in_keys_is_not_done() -> None:
    assert load("${NAME}: 1\n").data == {"${NAME}": 1}


def test_interpolation_error_is_a_finding_at_the_value() -> None:
    finding = only("a: 1\nuri: ${MONGODB_URI}\n")
    assert (finding.line, finding.column, finding.path) == (2, 6, "uri")
    assert "MONGODB_URI is not set and has no default" in finding.message


def test_double_dollar_escapes() -> None:
    assert load("a: $${NOT_A_VAR}\n").data == {"a": "${NOT_A_VAR}"}


def test_interpolation_inside_flow_collection_gets_a_clear_message() -> None:
    finding = only("pool: {max_size: ${POOL:-50}, min_size: 5}\n")
    assert finding.line == 1
    assert "'${...}' inside a {...} or [...] collection" in finding.message


# --- safe loading -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("a: !!python/object/apply:os.system ['touch /tmp/bootstrap-pwned']\n", "!!python/object/apply:os.system"),
        ("a: !!python/name:os.system\n", "!!python/name:os.system"),
        ("a: !!python/object:collections.OrderedDict {}\n", "!!python/object:collections.OrderedDict"),
        ("a: !include other.yaml\n", "!include"),
        ("a: !Ref x\n", "!Ref"),
        ("a: !!binary aGVsbG8=\n", "!!binary"),
        ("a: !!set {x, y}\n", "!!set"),
        ("a: !!omap [x: 1]\n", "!!omap"),
        ("a: !<tag:example.com,2024:thing> 1\n", "tag:example.com,2024:thing"),
    ],
)
def test_tags_that_construct_objects_are_refused(text: str, tag: str) -> None:
    finding = only(text)
    assert finding.line == 1 and finding.path == "a"
    assert f"YAML tag '{tag}' is not allowed" in finding.message
    assert not Path("/tmp/bootstrap-pwned").exists()


def test_core_tags_are_accepted() -> None:
    doc = load("a: !!str 5\nb: !!int '7'\nc: !!float 1\nd: !!bool true\ne: !!null ''\nf: !!map {x: 1}\ng: !!seq [1]\n")
    assert doc.data == {"a": "5", "b": 7, "c": 1.0, "d": True, "e": None, "f": {"x": 1}, "g": [1]}


def test_core_tag_with_impossible_value_is_a_finding() -> None:
    assert "cannot read 'abc' as int" in only("a: !!int abc\n").message


def test_anchors_and_aliases_are_expanded() -> None:
    doc = load("a: &retry {attempts: 3}\nb: *retry\nc: [*retry, *retry]\n")
    assert doc.data["b"] == {"attempts": 3}
    assert doc.data["c"] == [{"attempts": 3}, {"attempts": 3}]
    assert doc.data["b"] is not doc.data["a"]  # plain data, not shared objects
    assert doc.values[("b", "attempts")] == (1, 22)  # where the anchored value is written


def test_undefined_alias_is_a_finding() -> None:
    assert "undefined alias" in only("a: *nope\n").message


def test_recursive_alias_is_a_finding() -> None:
    finding = only("a: &a [1, *a]\n")
    assert f"nesting deeper than {MAX_DEPTH} levels" in finding.message
    assert finding.line == 1


def test_alias_bomb_is_a_finding_and_fast() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    previous = "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
        previous = name
    started = time.perf_counter()
    finding = only("\n".join(lines) + "\n")
    assert time.perf_counter() - started < 5
    assert f"aliases expand to more than {MAX_VALUES} values (an alias bomb?)" in finding.message


@pytest.mark.parametrize(
    "text",
    [
        "[" * 5000 + "]" * 5000,
        "[" * 500 + "]" * 500,  # deeper than allowed, but within libyaml's own limit
        "- " * 5000 + "x",
        "a: " + "{a: " * 5000 + "1" + "}" * 5000,
        "a:\n" + "".join(" " * i + "a:\n" for i in range(1, 400)),
        "[" * 2_000_000,
    ],
)
def test_deep_nesting_is_a_finding(text: str) -> None:
    finding = only(text)
    assert "nests too deeply" in finding.message or "nesting deeper than" in finding.message


def test_deep_nesting_is_located() -> None:
    finding = only("a: 1\nb: 2\nc: " + "[" * 1000 + "]" * 1000 + "\n")
    assert finding.line == 3


def test_too_large_file_is_a_finding() -> None:
    assert "larger than" in only("a: " + "x" * 5_000_001).message


@pytest.mark.parametrize("text", ["a: \x00\n", "a: \x07b\n", "a: \ufffe\n"])
def test_control_characters_are_a_finding(text: str) -> None:
    assert only(text).message


# --- whole-file problems and syntax errors --------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "   \n# x\n  \n", "---\n", "--- # x\n\n"])
def test_empty_file(text: str) -> None:
    finding = only(text)
    assert (finding.line, finding.message) == (1, "file is empty (expected a mapping of settings)")


def test_top_level_list_and_scalar_load_as_data() -> None:
    # The loader returns them; load_spec says a mapping was expected.
    assert load("- a\n- b\n").data == ["a", "b"]
    assert load("just text\n").data == "just text"


def test_multiple_documents() -> None:
    finding = only("a: 1\n---\nb: 2\n")
    assert finding.line == 2
    assert "more than one YAML document" in finding.message


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("a:\n\tb: 1\n", 2, "tab character: YAML indentation must use spaces, not tabs"),
        ("a: 1\nb: {x: 1, y: 2\nc: 3\n", 2, "this '{' is not closed"),
        ("a: 1\nb: [x, y\nc: 3\n", 2, "this '[' is not closed"),
        ('a: "x\nb: 2\nc: "y"\n', 1, "this quoted string runs on to line 3"),
        ("a: 1\nb: 'x\nc: 2\n", 2, "this quoted string is never closed"),
        ("a: 1\nb 2\nc: 3\n", 2, "is the ':' after the key missing?"),
        ("a:\n    b: 1\n  c: 2\n", 3, "indentation does not match the lines above it"),
        ("a: b: c\n", 1, "unexpected ':' here"),
        ("a: 1\n- b\n", 2, "unexpected list item '-'"),
        ("a: {b: 1}}\n", 1, "unexpected '}'"),
        ("a: @x\n", 1, "character '@' cannot start a value (put the value in quotes)"),
        ("a: `x`\n", 1, "cannot start a value"),
    ],
)
def test_syntax_errors_point_at_the_mistake(text: str, line: int, message: str) -> None:
    finding = only(text)
    assert finding.line == line, str(finding)
    assert message in finding.message
    assert finding.path == ""


def test_plain_values_do_not_count_against_the_alias_budget() -> None:
    """A long list written out (a 100,000-value enum) is data, not an alias bomb."""
    values = [f"v{i}" for i in range(MAX_VALUES + 10)]
    doc = load("enum: [" + ", ".join(values) + "]\n")
    assert doc.data["enum"] == values


def test_values_an_alias_repeats_count_against_the_budget() -> None:
    """Below the budget an alias repeats freely; past it, even a few aliases are refused."""
    chunk = "[" + ", ".join(["x"] * 1000) + "]"
    assert len(load(f"a: &a {chunk}\nb: [{', '.join(['*a'] * 90)}]\n").data["b"]) == 90
    finding = only(f"a: &a {chunk}\nb: [{', '.join(['*a'] * 101)}]\n")
    assert f"aliases expand to more than {MAX_VALUES} values (an alias bomb?)" in finding.message
