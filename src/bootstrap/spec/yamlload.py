"""Load one YAML file into plain data plus the position of every key and value.

We compose the node graph with PyYAML's safe loader and build the values ourselves, so that:
- every value and key keeps its line and column (for error messages);
- no tag can construct a Python object (only the core YAML tags are accepted);
- duplicate keys are errors instead of silently keeping the last one;
- keys are always strings taken verbatim (`on:` stays "on", not True);
- aliases are expanded under a budget, so an alias bomb is a finding, not an outage;
- `${VAR}` interpolation happens per scalar, before its type is resolved.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bootstrap.errors import Finding
from bootstrap.spec.interpolate import InterpolationError, interpolate

PathKey = tuple[str | int, ...]

MAX_VALUES = 100_000  # far above any real config; an alias bomb hits it at once
MAX_DEPTH = 64
MAX_BYTES = 5_000_000

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_TAG}{name}" for name in ("str", "int", "float", "bool", "null", "timestamp")}


@dataclass
class Document:
    """A parsed YAML file: plain data and where each part of it came from."""

    file: str
    data: Any
    values: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    keys: dict[PathKey, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: PathKey, *, key: bool = False) -> tuple[int, int]:
        """Line and column of the value (or, with key=True, the key) at `path`, falling back to the
        nearest enclosing value that exists."""
        if key and path in self.keys:
            return self.keys[path]
        probe = tuple(path)
        while probe:
            if probe in self.values:
                return self.values[probe]
            probe = probe[:-1]
        return self.values.get((), (1, 1))

    def finding(self, path: PathKey, message: str, *, key: bool = False) -> Finding:
        line, column = self.locate(path, key=key)
        return Finding(self.file, line, column, dotted(path), message)


def dotted(path: PathKey) -> str:
    """`('fields', 'email', 'type')` -> `fields.email.type`; list indexes as `[0]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class _Abort(Exception):
    """Stops construction of a document; the finding is already recorded."""


class _Builder:
    def __init__(self, doc: Document, env: Mapping[str, str]) -> None:
        self.doc = doc
        self.env = env
        self.findings: list[Finding] = []
        self.count = 0
        self.resolver = yaml.resolver.Resolver()
        self.constructor = yaml.constructor.SafeConstructor()

    def fail(self, node: Node, path: PathKey, message: str) -> None:
        mark = node.start_mark
        path = path[:6]  # a runaway alias path says nothing more after a few levels
        self.findings.append(Finding(self.doc.file, mark.line + 1, mark.column + 1, dotted(path), message))

    def _resolve(self, text: str) -> str:
        """The tag YAML gives an unquoted scalar with this text (int, bool, str...)."""
        tag: str = self.resolver.resolve(ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
        return tag

    def build(self, node: Node, path: PathKey, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            self.fail(
                node,
                path,
                f"document expands to more than {MAX_VALUES} values (an alias bomb?); refusing to load it",
            )
            raise _Abort
        if depth > MAX_DEPTH:
            self.fail(node, path, f"nesting deeper than {MAX_DEPTH} levels (a recursive alias?)")
            raise _Abort
        self.doc.values.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, MappingNode):
            return self.mapping(node, path, depth)
        if isinstance(node, SequenceNode):
            if node.tag not in (f"{_TAG}seq",):
                self.fail(node, path, _tag_message(node.tag))
                return None
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        return self.scalar(node, path)

    def mapping(self, node: MappingNode, path: PathKey, depth: int) -> dict[str, Any] | None:
        if node.tag != f"{_TAG}map":
            self.fail(node, path, _tag_message(node.tag))
            return None
        out: dict[str, Any] = {}
        first_seen: dict[str, int] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == f"{_TAG}merge":
                merged.update(self.merge(value_node, path, depth))
                continue
            if not isinstance(key_node, ScalarNode):
                self.fail(key_node, path, "mapping keys must be plain strings, not lists or mappings")
                continue
            key = str(key_node.value)
            if key in first_seen:
                self.fail(
                    key_node, (*path, key), f"duplicate key '{key}' (first defined at line {first_seen[key]})"
                )
                continue
            first_seen[key] = key_node.start_mark.line + 1
            self.doc.keys[(*path, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = self.build(value_node, (*path, key), depth + 1)
        # Explicit keys win over merged ones, as YAML's merge key specifies.
        return {**merged, **out} if merged else out

    def merge(self, node: Node, path: PathKey, depth: int) -> dict[str, Any]:
        sources = node.value if isinstance(node, SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in reversed(sources):  # earlier sources take precedence
            if not isinstance(source, MappingNode):
                self.fail(source, path, "'<<' merges mappings only (expected an alias to a mapping)")
                continue
            value = self.mapping(source, path, depth + 1)
            merged.update(value or {})
        return merged

    def scalar(self, node: ScalarNode, path: PathKey) -> Any:
        tag = node.tag
        text = str(node.value)
        explicit = node.style is None and tag != self._resolve(text)
        if tag not in _SCALAR_TAGS:
            self.fail(node, path, _tag_message(tag))
            return None
        if "$" in text:
            try:
                text = interpolate(text, self.env)
            except InterpolationError as exc:
                self.fail(node, path, str(exc))
                return None
            if node.style is None and not explicit:
                # An unquoted `${PORT:-6379}` becomes the number 6379, as if written literally.
                tag = self._resolve(text)
        if tag in (f"{_TAG}str", f"{_TAG}timestamp"):
            return text  # dates stay text; the schema says what it expects
        try:
            value = self.constructor.construct_object(ScalarNode(tag, text))
        except (yaml.YAMLError, ValueError) as exc:
            self.fail(node, path, f"cannot read {text!r} as {tag.removeprefix(_TAG)}: {exc}")
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(node, path, f"{text!r} is not a finite number")
            return None
        return value


def _tag_message(tag: str) -> str:
    return (
        f"YAML tag {tag!r} is not allowed: configuration is plain data "
        "(mappings, lists, strings, numbers, booleans, null)"
    )


def load_document(text: str, file: str, env: Mapping[str, str]) -> tuple[Document | None, list[Finding]]:
    """Parse `text` (the content of `file`); return the document, or None with findings."""
    doc = Document(file, None)
    if len(text) > MAX_BYTES:
        return None, [Finding(file, 1, 1, "", f"file is larger than {MAX_BYTES} bytes")]
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        return None, [_syntax_finding(file, exc)]
    except yaml.YAMLError as exc:  # unmarked errors: reader errors on odd characters
        return None, [Finding(file, 1, 1, "", f"YAML syntax error: {exc}")]
    if root is None:
        return None, [Finding(file, 1, 1, "", "file is empty (expected a mapping of settings)")]
    builder = _Builder(doc, env)
    try:
        doc.data = builder.build(root, (), 0)
    except _Abort:
        return None, builder.findings
    except RecursionError:
        return None, [Finding(file, 1, 1, "", "document nests too deeply")]
    return (doc if not builder.findings else None), builder.findings


def _syntax_finding(file: str, exc: yaml.MarkedYAMLError) -> Finding:
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = exc.problem or "invalid YAML"
    if "'\\t'" in problem or "\t" in problem:
        problem = "tab character: YAML indentation must use spaces, not tabs"
    elif "expected a single document" in (exc.context or "") or "single document" in problem:
        problem = "more than one YAML document ('---') in one file (expected exactly one)"
    else:
        context = f" {exc.context}" if exc.context else ""
        problem = f"YAML syntax error: {problem}{context}"
    return Finding(file, line, column, "", problem)
