"""Load one YAML file into plain data plus the position of every key and value.

We compose the node graph with PyYAML's safe loader and build the values ourselves, so that:
- every value and key keeps its line and column (for error messages);
- no tag can construct a Python object (only the core YAML tags are accepted);
- duplicate keys are errors instead of silently keeping the last one;
- keys are always strings taken verbatim (`on:` stays "on", not True);
- aliases are expanded under a budget (values written out count nothing, values an alias
  repeats count one each), so an alias bomb is a finding, not an outage;
- `${VAR}` interpolation happens per scalar, before its type is resolved.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bootstrap.errors import ERROR, WARNING, Finding, InterpolationError
from bootstrap.spec.interpolate import KeepUnset, interpolate

PathKey = tuple[str | int, ...]

MAX_VALUES = 100_000  # values aliases may repeat: far above any real config; an alias bomb hits it at once
MAX_DEPTH = 64
MAX_BYTES = 5_000_000
MAX_EXPLAINED = 200_000  # larger files with a syntax error get libyaml's message (see _compose)

BOOL_HINT = " (YAML reads unquoted yes, no, on, off, true and false as booleans: quote the value)"

_TAG = "tag:yaml.org,2002:"
_TAGGED = re.compile(r"(?:&\S+\s+)?!")  # a node's properties: an optional anchor, then its tag
_SCALAR_TAGS = {f"{_TAG}{name}" for name in ("str", "int", "float", "bool", "null", "timestamp")}
_STR, _TIMESTAMP, _MAP, _SEQ, _MERGE = (f"{_TAG}{name}" for name in ("str", "timestamp", "map", "seq", "merge"))


@dataclass
class Document:
    """A parsed YAML file: plain data and where each part of it came from."""

    file: str
    data: Any
    values: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    keys: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    # The text of every scalar that used ${...}, before interpolation: generated code keeps the
    # template (resolved at run time) instead of today's value, which may hold a secret.
    templates: dict[PathKey, str] = field(default_factory=dict)
    # Values that kept a variable that is not set as written (offline commands: interpolate.KeepUnset).
    unset: set[PathKey] = field(default_factory=set)
    # How the value of a template is typed after interpolation, for resolving it again elsewhere
    # (spec.envvalues): "" when written unquoted and untagged (YAML reads the text: an unquoted
    # `${PORT:-6379}` is the number 6379), else its explicit tag (`!!int`); absent: text.
    typed: dict[PathKey, str] = field(default_factory=dict)

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
    def __init__(self, doc: Document, env: Mapping[str, str], text: str) -> None:
        self.doc = doc
        self.env = env
        self.text = text
        self.findings: list[Finding] = []
        self.count = 0  # values built again through an alias (written-out values are bounded by MAX_BYTES)
        self.built: set[int] = set()  # collections built once: building one again is an alias expanding
        self.aliasing = 0  # how many alias expansions the value being built is inside
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
        if type(node) is not ScalarNode:
            # A collection built before is an alias (or a merge) repeating it: it and everything it
            # holds count against the budget. A scalar alias is one value, bounded by the text.
            if id(node) in self.built:
                self.aliasing += 1
                try:
                    return self._build(node, path, depth)
                finally:
                    self.aliasing -= 1
            self.built.add(id(node))
        return self._build(node, path, depth)

    def _build(self, node: Node, path: PathKey, depth: int) -> Any:
        if self.aliasing:
            self.count += 1
            if self.count > MAX_VALUES:
                self.fail(
                    node,
                    path,
                    f"aliases expand to more than {MAX_VALUES} values (an alias bomb?); refusing to load it",
                )
                raise _Abort
        if depth > MAX_DEPTH:
            self.fail(node, path, f"nesting deeper than {MAX_DEPTH} levels (a recursive alias?)")
            raise _Abort
        values = self.doc.values
        if path not in values:  # an alias seen again keeps the position of its first use
            mark = node.start_mark
            values[path] = (mark.line + 1, mark.column + 1)
        kind = type(node)
        if kind is ScalarNode:
            text = node.value
            if node.tag == _STR and "$" not in text:  # most values: plain text, nothing to interpolate or convert
                return text if text.isascii() else self._utf8(node, path, text)
            return self.scalar(node, path)  # type: ignore[arg-type]
        if kind is MappingNode:
            return self.mapping(node, path, depth)  # type: ignore[arg-type]
        assert kind is SequenceNode
        if node.tag != _SEQ:
            self.fail(node, path, _tag_message(node.tag))
            return None
        return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]

    def mapping(self, node: MappingNode, path: PathKey, depth: int) -> dict[str, Any] | None:
        if node.tag != _MAP:
            self.fail(node, path, _tag_message(node.tag))
            return None
        out: dict[str, Any] = {}
        keys = self.doc.keys
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merges.append(value_node)
                continue
            key = self.key(key_node, path)
            if key is None:
                continue
            at = (*path, key)
            mark = key_node.start_mark
            if key in out:
                self.fail(key_node, at, f"duplicate key '{key}' (first defined at line {keys[at][0]})")
                continue
            keys[at] = (mark.line + 1, mark.column + 1)
            out[key] = self.build(value_node, at, depth + 1)
        if not merges:
            return out
        # Explicit keys win over merged ones, and earlier merge sources over later ones, as YAML's merge
        # key specifies. Each key is built once, from where it wins, so positions point there.
        merged: dict[str, Any] = {}
        for key_node, value_node in self.merged_pairs(merges, path, set()):
            key = self.key(key_node, path)
            if key is None or key in out or key in merged:
                continue
            mark = key_node.start_mark
            self.doc.keys.setdefault((*path, key), (mark.line + 1, mark.column + 1))
            merged[key] = self.build(value_node, (*path, key), depth + 1)
        return {**merged, **out}

    def key(self, node: Node, path: PathKey) -> str | None:
        if type(node) is not ScalarNode:
            self.fail(node, path, "mapping keys must be plain strings, not lists or mappings")
            return None
        text = str(node.value)
        return text if text.isascii() else self._utf8(node, path, text)

    def _utf8(self, node: Node, path: PathKey, text: str) -> str | None:
        """`text` as UTF-8 can hold it (what MongoDB, Redis and the generated Python files hold): a
        surrogate pair (`"\\ud83d\\ude00"`, JSON's way to write an emoji) is the character it stands
        for; a lone surrogate is a finding here (None) rather than a failure of `generate` or `apply`."""
        try:
            text.encode("utf-8")
            return text
        except UnicodeEncodeError:
            pass
        try:  # pairs joined into their characters
            joined = text.encode("utf-16", "surrogatepass").decode("utf-16")
            joined.encode("utf-8")
            return joined
        except UnicodeError:
            lone = next(c for c in text if "\ud800" <= c <= "\udfff")
            self.fail(
                node,
                path,
                f"{lone.encode('unicode_escape').decode()} is a lone surrogate (half of a pair), which UTF-8 "
                "cannot hold (MongoDB, Redis and the generated files store UTF-8): write the character itself",
            )
            return None
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = text[exc.start : exc.end].encode("unicode_escape").decode()
            self.fail(
                node,
                path,
                f"{bad} is a lone surrogate, which UTF-8 cannot hold (MongoDB, Redis and the generated files "
                "store UTF-8): write the character it stands for, or a pair",
            )
            return False
        return True

    def merged_pairs(self, merges: list[Node], path: PathKey, seen: set[int]) -> list[tuple[Node, Node]]:
        """The key and value nodes `<<` brings in, in order of precedence. A source already merged is
        skipped: it could add nothing, and skipping it stops recursive and exponential merges."""
        pairs: list[tuple[Node, Node]] = []
        for merge in merges:
            for source in merge.value if isinstance(merge, SequenceNode) else [merge]:
                if not isinstance(source, MappingNode) or source.tag != _MAP:
                    self.fail(source, path, "'<<' merges mappings only (expected an alias to a mapping)")
                    continue
                if id(source) in seen:
                    continue
                seen.add(id(source))
                nested = [value for key, value in source.value if key.tag == _MERGE]
                pairs += [(key, value) for key, value in source.value if key.tag != _MERGE]
                pairs += self.merged_pairs(nested, path, seen)
        return pairs

    def scalar(self, node: ScalarNode, path: PathKey) -> Any:
        tag = node.tag
        text: str = node.value
        if tag not in _SCALAR_TAGS:
            self.fail(node, path, _tag_message(tag))
            return None
        if "$" in text:
            env = self.env
            if isinstance(env, KeepUnset) and path not in env.paths:
                env = env.env  # kept only where nothing offline reads the value (see KeepUnset)
            kept = len(env.unset) if isinstance(env, KeepUnset) else 0
            try:
                self.doc.templates[path] = text
                text = interpolate(text, env)
            except InterpolationError as exc:
                self.fail(node, path, str(exc))
                return None
            if isinstance(env, KeepUnset) and len(env.unset) > kept:
                self.doc.unset.add(path)
                names = ", ".join(dict.fromkeys(env.unset[kept:]))
                mark = node.start_mark
                self.findings.append(Finding(
                    self.doc.file, mark.line + 1, mark.column + 1, dotted(path[:6]),
                    f"environment variable {names} is not set: checked as written (plan, apply and the workers "
                    "need it set)", WARNING,
                ))  # fmt: skip
            plain = not node.style  # None from PyYAML, "" from libyaml
            # Nodes do not record whether their tag was written (`!!str ${PORT}`); the text at their
            # start does.
            explicit = _TAGGED.match(self.text, node.start_mark.index) is not None
            if plain and not explicit:
                # An unquoted `${PORT:-6379}` becomes the number 6379, as if written literally.
                tag = self._resolve(text)
                self.doc.typed[path] = ""
            elif explicit and tag != _STR:
                self.doc.typed[path] = tag
        if tag in (_STR, _TIMESTAMP):
            # dates stay text; the schema says what it expects
            return text if text.isascii() else self._utf8(node, path, text)
        known = _SCALARS.get((tag, text), _MISSING)
        if known is not _MISSING:
            return known
        try:
            value = self.constructor.construct_object(ScalarNode(tag, text))
        except (yaml.YAMLError, ValueError) as exc:
            self.fail(node, path, f"cannot read {text!r} as {tag.removeprefix(_TAG)}: {exc}")
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(node, path, f"{text!r} is not a finite number")
            return None
        if len(_SCALARS) < _SCALARS_KEPT:
            _SCALARS[(tag, text)] = value
        return value


# Numbers, booleans and null by (tag, text): immutable values that configs repeat (`required: true`,
# `1`, `-1`), so each is constructed once per process. Bounded, so a huge file cannot grow it forever.
_SCALARS: dict[tuple[str, str], Any] = {}
_SCALARS_KEPT = 10_000
_MISSING = object()


def _tag_message(tag: str) -> str:
    shown = tag.replace(_TAG, "!!", 1) if tag.startswith(_TAG) else tag  # as written: !!python/object
    return (
        f"YAML tag '{shown}' is not allowed: configuration is plain data "
        "(mappings, lists, strings, numbers, booleans, null)"
    )


def load_document(text: str, file: str, env: Mapping[str, str]) -> tuple[Document | None, list[Finding]]:
    """Parse `text` (the content of `file`); return the document, or None with findings."""
    doc = Document(file, None)
    if len(text) > MAX_BYTES:
        return None, [Finding(file, 1, 1, "", f"file is larger than {MAX_BYTES} bytes")]
    try:
        root = _compose(text)
    except yaml.MarkedYAMLError as exc:
        if exc.problem == _LIBYAML_TOO_DEEP and exc.problem_mark:
            mark = exc.problem_mark
            return None, [Finding(file, mark.line + 1, mark.column + 1, "", _TOO_DEEP)]
        return None, [_syntax_finding(file, text, exc)]
    except yaml.YAMLError as exc:  # unmarked errors: reader errors on odd characters
        return None, [Finding(file, 1, 1, "", f"YAML syntax error: {exc}")]
    except RecursionError:
        return None, [_too_deep(file, text)]
    if root is None or (isinstance(root, ScalarNode) and root.value == "" and not root.style):
        # Nothing at all, or only '---' and comments.
        return None, [Finding(file, 1, 1, "", "file is empty (expected a mapping of settings)")]
    builder = _Builder(doc, env, text)
    try:
        doc.data = builder.build(root, (), 0)
    except _Abort:
        return None, builder.findings
    except RecursionError:
        return None, [_too_deep(file, text)]
    failed = any(finding.severity == ERROR for finding in builder.findings)  # warnings keep the document
    return (None if failed else doc), builder.findings


def _too_deep(file: str, text: str) -> Finding:
    """Where nesting first goes deeper than MAX_DEPTH (PyYAML's parser, unlike its composer, does not
    recurse, so this walk is safe however deep the text nests)."""
    depth, line, column = 0, 1, 1
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
                    break
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        pass
    return Finding(file, line, column, "", _TOO_DEEP)


_TAGS_KEPT = 10_000


def _fast_loader() -> type[yaml.CSafeLoader] | None:
    """libyaml's safe loader, its tag resolution memoised: libyaml calls back into PyYAML's Python
    resolver (a few regular expressions) for every scalar, and configs repeat their scalars (`type`,
    `string`, `true`). The answer depends only on the text and on whether it was quoted."""
    base: type[yaml.CSafeLoader] | None = getattr(yaml, "CSafeLoader", None)
    if base is None:
        return None
    tags: dict[tuple[str, tuple[bool, bool]], str] = {}
    resolve: Callable[..., str] = base.resolve

    class Loader(base):  # type: ignore[valid-type, misc]
        def resolve(self, kind: type[Node], value: Any, implicit: Any) -> str:
            if kind is not ScalarNode:
                return resolve(self, kind, value, implicit)
            key = (value, implicit)
            known = tags.get(key)
            if known is None:
                known = resolve(self, kind, value, implicit)
                if len(tags) < _TAGS_KEPT:
                    tags[key] = known
            return known

    return Loader


_FAST_LOADER = _fast_loader()
_LIBYAML_TOO_DEEP = "exceeded maximum nesting depth"
_TOO_DEEP = f"document nests too deeply (expected at most {MAX_DEPTH} levels)"


def _compose(text: str) -> Node | None:
    """The node graph of `text`: from libyaml when PyYAML has it (many times faster), else, and to
    explain a file libyaml rejects, from the pure-Python parser, whose messages the ones below are
    written for. Not for nesting deeper than libyaml allows nor a huge file: the pure parser takes time
    quadratic in nesting depth, so libyaml's error stands."""
    if _FAST_LOADER is not None:
        try:
            return yaml.compose(text, Loader=_FAST_LOADER)
        except yaml.MarkedYAMLError as exc:
            if exc.problem == _LIBYAML_TOO_DEEP or len(text) > MAX_EXPLAINED:
                raise
        except yaml.YAMLError:
            pass
    return yaml.compose(text, Loader=yaml.SafeLoader)


_TOKEN_WORDS = {
    "'<block mapping start>'": "'key: value'",
    "'<scalar>'": "text",
    "'-'": "list item '-'",
    "'<block sequence start>'": "list item '-'",
    "'?'": "'key: value'",  # PyYAML's token for a key
}


def _syntax_finding(file: str, text: str, exc: yaml.MarkedYAMLError) -> Finding:
    """A syntax error located where the user has to look: PyYAML reports where parsing failed, which for an
    unclosed bracket, quote or a key without ':' is the line after the mistake."""
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "invalid YAML"
    context = exc.context or ""
    opened = exc.context_mark
    failed_at = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "the end"
    prefix = "YAML syntax error: "
    if "'\\t'" in problem or "\t" in problem:
        prefix, problem = "", "tab character: YAML indentation must use spaces, not tabs"
    elif "expected a single document" in context or "single document" in problem:
        prefix, problem = "", "more than one YAML document ('---') in one file (expected exactly one)"
    elif mark and mark.index > 0 and text[mark.index - 1 : mark.index + 1] == "${" and "flow" in context:
        problem = (
            "'${...}' inside a {...} or [...] collection: YAML reads its braces as syntax; write this "
            "key on its own line in block style (key: ${VAR:-default})"
        )
    elif opened and "while parsing a flow" in context:
        bracket = "{" if "mapping" in context else "["
        mark, problem = opened, f"this '{bracket}' is not closed ({problem} at {failed_at})"
    elif opened and "while scanning a quoted scalar" in context:
        mark, problem = opened, "this quoted string is never closed (missing closing quote)"
    elif opened and "while scanning a simple key" in context:
        mark, problem = opened, "expected 'key: value' on this line (is the ':' after the key missing?)"
    elif mark and (quote := _unclosed_quote(text, mark.index)):
        mark, problem = quote, f"this quoted string runs on to {failed_at}: is its closing quote missing?"
    elif problem.startswith("expected <block end>, but found "):
        found = problem.removeprefix("expected <block end>, but found ")
        if found in ("'}'", "']'"):
            problem = f"unexpected {found} (no open bracket for it to close)"
        elif found == "'?'" and "block collection" in context:  # PyYAML's key token: a key among list items
            problem = (
                "unexpected 'key: value' among a list's items: indent it under an item, or start it with "
                "'- ' to make it an item of its own"
            )
        else:
            found = _TOKEN_WORDS.get(found, found)
            problem = f"unexpected {found}: this line's indentation does not match the lines above it"
    elif problem == "mapping values are not allowed here":
        problem = (
            "unexpected ':' here: this line is indented deeper than the key above it allows, or a "
            "plain value contains ': ' (put such a value in quotes)"
        )
    elif "that cannot start any token" in problem:
        char = problem.removeprefix("found ").removesuffix(" that cannot start any token")
        problem = f"{char} cannot start a value (put the value in quotes)"
    else:
        problem = f"{problem} {context}".strip()
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    return Finding(file, line, column, "", prefix + problem)


def _unclosed_quote(text: str, index: int) -> yaml.Mark | None:
    """Where a quoted string that spans lines and ends just before `index` (where parsing failed)
    begins: the usual trace of a missing closing quote, which swallows the lines after it."""
    last: yaml.Token | None = None
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if token.start_mark.index >= index:
                break
            last = token
    except yaml.YAMLError:
        pass
    if (
        isinstance(last, yaml.ScalarToken)
        and last.style in ('"', "'")
        and last.start_mark.line != last.end_mark.line
    ):
        start: yaml.Mark = last.start_mark
        return start
    return None
