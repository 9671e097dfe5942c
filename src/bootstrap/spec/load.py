"""Load a config folder into a Spec: read every file, check it, build it, check it again; report
all problems at once as a ConfigError."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bootstrap.errors import ERROR, ConfigError, Finding
from bootstrap.spec import build, schema_check
from bootstrap.spec.checks import check_spec
from bootstrap.spec.model import Spec
from bootstrap.spec.yamlload import Document, load_document

SETTINGS = "bootstrap.yaml"
QUEUES = "queues.yaml"
SCHEDULES = "schedules.yaml"
COLLECTIONS = "collections"
YAML_SUFFIXES = (".yaml", ".yml")


def display_path(path: Path) -> str:
    """Paths in messages: relative to the working directory when below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def config_files(config_dir: Path) -> tuple[dict[Path, str], list[Finding]]:
    """The files to load, each with its kind, and findings for anything unexpected in the folder."""
    findings: list[Finding] = []
    files: dict[Path, str] = {}
    if not config_dir.is_dir():
        raise ConfigError([Finding(display_path(config_dir), 0, 0, "", "config folder not found")])
    for entry in sorted(config_dir.iterdir()):
        if entry.name.startswith(".") or entry.name.lower() in ("readme.md", "readme"):
            continue
        if entry.is_dir() and entry.name == COLLECTIONS:
            for coll_file in sorted(entry.iterdir()):
                if coll_file.suffix in YAML_SUFFIXES and coll_file.is_file():
                    files[coll_file] = "collection"
                elif not coll_file.name.startswith("."):
                    findings.append(
                        Finding(
                            display_path(coll_file),
                            0,
                            0,
                            "",
                            "unexpected file in collections/ (expected *.yaml)",
                        )
                    )
        elif entry.name in (SETTINGS, QUEUES, SCHEDULES):
            files[entry] = entry.name.removesuffix(".yaml")
        else:
            findings.append(
                Finding(
                    display_path(entry),
                    0,
                    0,
                    "",
                    (
                        f"unexpected {'folder' if entry.is_dir() else 'file'} "
                        f"(expected {SETTINGS}, {QUEUES}, {SCHEDULES} and {COLLECTIONS}/*.yaml)"
                    ),
                )
            )
    if config_dir / SETTINGS not in files:
        findings.append(
            Finding(
                display_path(config_dir / SETTINGS),
                0,
                0,
                "",
                "missing: every config folder needs bootstrap.yaml (project, mongodb, redis)",
            )
        )
    return files, findings


def read_document(path: Path, env: Mapping[str, str]) -> tuple[Document | None, list[Finding]]:
    shown = display_path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [Finding(shown, 0, 0, "", f"not UTF-8 text (byte {exc.start}); save it as UTF-8")]
    except OSError as exc:
        return None, [Finding(shown, 0, 0, "", f"cannot read: {exc.strerror}")]
    text = text.removeprefix("\ufeff")  # a byte-order mark is harmless; editors on Windows add one
    return load_document(text, shown, env)


def load_spec(
    config_dir: Path, env: Mapping[str, str] | None = None, warnings: list[Finding] | None = None
) -> Spec:
    """The validated Spec of `config_dir`, or ConfigError with every error found. Warnings do not
    make it invalid: they are appended to `warnings` when a list is given."""
    env = os.environ if env is None else env
    files, findings = config_files(config_dir)
    docs: dict[str, Document] = {}
    kinds: dict[str, str] = {}
    for path, kind in files.items():
        doc, problems = read_document(path, env)
        findings += problems
        if doc is None:
            continue
        if not isinstance(doc.data, dict):
            findings.append(
                doc.finding(
                    (),
                    f"expected a mapping of settings at the top level, "
                    f"got a {'list' if isinstance(doc.data, list) else 'scalar'}",
                )
            )
            continue
        problems = schema_check.check(doc, kind)
        findings += problems
        if not problems:
            docs[doc.file] = doc
            kinds[doc.file] = kind
    # Semantic checks run on every file that is structurally sound; checks that would need a
    # file that failed (a reference into it) are skipped rather than reported as follow-on noise.
    failed_kinds = {kind for path, kind in files.items() if display_path(path) not in docs}
    spec = _build(config_dir, docs, kinds)
    settings_file = next((f for f, k in kinds.items() if k == "bootstrap"), SETTINGS)
    findings += check_spec(spec, docs, settings_file, failed_kinds)
    errors = [f for f in findings if f.severity == ERROR]
    if errors:
        raise ConfigError(errors)
    if warnings is not None:
        warnings += sorted(f for f in findings if f.severity != ERROR)
    return spec


_PLACEHOLDER: dict[str, Any] = {
    "project": "invalid",
    "mongodb": {"uri": "mongodb://invalid"},
    "redis": {"url": "redis://invalid"},
}


def _build(config_dir: Path, docs: dict[str, Document], kinds: dict[str, str]) -> Spec:
    by_kind: dict[str, list[Document]] = {}
    for file, doc in docs.items():
        by_kind.setdefault(kinds[file], []).append(doc)
    # Placeholder settings keep the other files checkable when bootstrap.yaml itself is broken.
    settings: dict[str, Any] = by_kind["bootstrap"][0].data if "bootstrap" in by_kind else _PLACEHOLDER
    templates = by_kind["bootstrap"][0].templates if "bootstrap" in by_kind else {}
    project: str = settings["project"]
    root = config_dir.resolve().parent
    queues_doc = by_kind.get("queues", [None])[0]
    schedules_doc = by_kind.get("schedules", [None])[0]
    return Spec(
        project=project,
        root=root,
        mongodb=build.mongo_settings(settings["mongodb"], project, templates.get(("mongodb", "uri"))),
        redis=build.redis_settings(settings["redis"], project, templates.get(("redis", "url"))),
        codegen=build.codegen(settings.get("codegen", {}), project, root),
        collections=tuple(build.collection(doc) for doc in by_kind.get("collection", [])),
        queues=build.queues(queues_doc) if queues_doc else (),
        schedules=build.schedules(schedules_doc) if schedules_doc else (),
    )
