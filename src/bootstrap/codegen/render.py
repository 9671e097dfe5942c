"""Spec -> the files of the generated package (name -> text), one artifact at a time.

Deterministic: the same inputs always give the same bytes, so `generate --check` compares content.
Each file's header names the hash of that artifact's own inputs (its data and template text), not of
the whole spec and not the tool version, so unrelated spec edits and upgrades leave it unchanged.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any

import jinja2
import jinja2.meta

from bootstrap import resources
from bootstrap.codegen.artifacts import ARTIFACTS, Artifact
from bootstrap.codegen.hashing import files_hash
from bootstrap.codegen.pyliteral import literal
from bootstrap.spec.model import Spec
from bootstrap.spec.names import python_identifier


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_source),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # Python source, not HTML: values go through the `py` filter instead
    )
    env.filters["py"] = literal
    env.filters["ident"] = _identifier
    return env


def _source(name: str) -> str:
    return (resources.templates_dir() / name).read_text(encoding="utf-8")


def _identifier(name: str) -> str:
    """A declared name as a Python identifier; validation already guaranteed it is one."""
    ident = python_identifier(name)
    if not ident.isidentifier():
        raise ValueError(f"{name!r} is not usable as a Python identifier")
    return ident


@cache
def template_sources(template: str) -> tuple[tuple[str, str], ...]:
    """(name, text) of `template` and of every template it includes, recursively, by name."""
    env, todo = _environment(), [template]
    found: dict[str, str] = {}
    while todo:
        name = todo.pop()
        if name not in found:
            found[name] = _source(name)
            referenced = jinja2.meta.find_referenced_templates(env.parse(found[name]))
            todo.extend(ref for ref in referenced if ref is not None)
    return tuple(sorted(found.items()))


def inputs_hash(artifact: Artifact, inputs: dict[str, Any]) -> str:
    """The hash of what `artifact` is rendered from. Key order is kept: it is rendering order."""
    canonical = json.dumps(
        {"templates": template_sources(artifact.template), "inputs": inputs}, separators=(",", ":"), allow_nan=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def render_artifact(artifact: Artifact, spec: Spec) -> str:
    inputs = artifact.inputs(spec)
    # The template sees its inputs and their hash, nothing else (StrictUndefined catches the rest).
    return _environment().get_template(artifact.template).render(inputs, inputs_hash=inputs_hash(artifact, inputs))


def render(spec: Spec) -> dict[str, str]:
    return {artifact.name: render_artifact(artifact, spec) for artifact in ARTIFACTS}


def wiring_hash(spec: Spec, *, workers: bool = False) -> str:
    """The hash of the generated job wiring for `spec`: equal to `files_hash` of the wiring files
    on disk exactly when `generate --check` finds them up to date. `workers`: of the files workers
    run (see Artifact.workers), which their heartbeats carry."""
    wanted = [a for a in ARTIFACTS if a.wiring and (a.workers or not workers)]  # models not rendered
    return files_hash({a.name: render_artifact(a, spec) for a in wanted})
