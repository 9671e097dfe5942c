"""Bytes that are not UTF-8: one finding at the line and column of the first bad byte, counted as YAML
counts positions (characters, every YAML line break, no byte-order mark)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bootstrap.errors import Finding
from bootstrap.spec.load import read_document
from bootstrap.spec.yamlload import load_document


def finding(tmp_path: Path, data: bytes) -> Finding:
    path = tmp_path / "f.yaml"
    path.write_bytes(data)
    doc, findings = read_document(path, {}, "f.yaml")
    assert doc is None
    assert len(findings) == 1, [str(f) for f in findings]
    return findings[0]


@pytest.mark.parametrize(
    ("data", "line", "column"),
    [
        (b"\xffname: users\n", 1, 1),
        (b"name: caf\xe9\n", 1, 10),  # Latin-1
        (b"name: users\ndescription: \xc3\xa9t\xc3\xa9 \x80\n", 2, 18),  # after valid multi-byte characters
        (b"a: 1\r\nb: 2\r\nc: \xe9\r\n", 3, 4),  # CR LF is one line break
        (b"a: 1\rb: \xe9\n", 2, 4),  # so is a lone CR, for YAML
        (b"a: 1\n\xc2\x85b: \xe9\n", 3, 4),  # and NEL (U+0085)
        (b"\xef\xbb\xbfa: \xe9\n", 1, 4),  # a byte-order mark is not a column
        (b"a: \xe2\x82", 1, 4),  # a character cut short at the end of the file
    ],
)
def test_position_of_the_first_bad_byte(tmp_path: Path, data: bytes, line: int, column: int) -> None:
    found = finding(tmp_path, data)
    assert (found.file, found.line, found.column, found.path) == ("f.yaml", line, column, "")


def test_message_names_the_byte_and_the_fix(tmp_path: Path) -> None:
    found = finding(tmp_path, b"name: caf\xe9s\n")
    assert str(found) == (
        "f.yaml:1:10: not UTF-8 text: byte 0xe9 here does not start a valid UTF-8 character "
        "(invalid continuation byte); save the file as UTF-8"
    )


def test_only_the_first_bad_byte_is_reported(tmp_path: Path) -> None:
    found = finding(tmp_path, b"a: \xe9\nb: \xe9\n")
    assert (found.line, found.column) == (1, 4)


@pytest.mark.parametrize("text", ["a: 1\nb: {c: [1, @]}\n", "a: 1\r\nb: {c: [1, @]}\r\n", "a: 1\rb: {c: [1, @]}\r"])
def test_same_position_as_yaml_gives_for_a_character_there(tmp_path: Path, text: str) -> None:
    """The column agrees with YAML's own: put a character YAML rejects where the bad byte is."""
    _, yaml_findings = load_document(text, "f.yaml", {})
    bad = finding(tmp_path, text.replace("@", "\udce9").encode("utf-8", "surrogateescape"))
    assert (bad.line, bad.column) == (yaml_findings[0].line, yaml_findings[0].column)
