"""Load a config folder into a Spec: read every file, check it, build it, check it again; report
all problems at once as a ConfigError."""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bootstrap.errors import ERROR, ConfigError, Finding
from bootstrap.spec import build, envvalues, schema_check
from bootstrap.spec.checks import Reporter, check_handlers, check_spec
from bootstrap.spec.interpolate import KeepUnset
from bootstrap.spec.model import Spec
from bootstrap.spec.yamlload import Document, load_document

SETTINGS = "bootstrap.yaml"
QUEUES = "queues.yaml"
SCHEDULES = "schedules.yaml"
COLLECTIONS = "collections"
YAML_SUFFIXES = (".yaml", ".yml")


def display_path(path: Path) -> str:
    """Paths in messages: relative to the working directory when below it."""
    return _Shown()(path)


class _Shown:
    """`display_path` for many files: the working directory is resolved once, and a file that is not
    a symbolic link is shown through its folder's resolved path instead of resolving it again (a
    `realpath` per file was a fifth of loading a large config)."""

    def __init__(self) -> None:
        self.cwd = Path.cwd().resolve()

    def __call__(self, path: Path, resolved: Path | None = None) -> str:
        try:
            return str((resolved or path.resolve()).relative_to(self.cwd))
        except ValueError:
            return str(path)
        except (OSError, RuntimeError):  # a symbolic link loop: shown as written, below the cwd if it is
            try:
                return str(Path(os.path.abspath(path)).relative_to(self.cwd))
            except ValueError:
                return str(path)


@dataclass(frozen=True)
class ConfigFile:
    path: Path
    kind: str  # "bootstrap", "queues", "schedules" or "collection"
    shown: str  # as in messages


def skipped(name: str) -> bool:
    """Hidden files and what editors leave beside the file being edited: vim's `.x.yaml.swp`, emacs'
    `.#x.yaml` lock (a link to nothing), `#x.yaml#` autosave and `x.yaml~` backup. Refusing them
    would refuse the whole config (and `up`'s reload) while a file is open in an editor."""
    return name.startswith(".") or name.endswith("~") or (name.startswith("#") and name.endswith("#"))


def config_files(config_dir: Path, shown: _Shown | None = None) -> tuple[list[ConfigFile], list[Finding]]:
    """The files to load, each with its kind, and findings for anything unexpected in the folder."""
    shown = shown or _Shown()
    findings: list[Finding] = []
    files: list[ConfigFile] = []
    if not config_dir.is_dir():
        why = _unreadable(config_dir) or (
            f"config folder not found (looked for {config_dir.absolute()}: run from the project's "
            "folder, or pass --config DIR or set BOOTSTRAP_CONFIG)"
        )
        raise ConfigError([Finding(shown(config_dir), 0, 0, "", why)])
    try:
        entries = _entries(config_dir)
    except OSError as exc:
        raise ConfigError(
            [Finding(shown(config_dir), 0, 0, "", f"cannot read the config folder: {_reason(exc)}")]
        ) from None
    here = config_dir.resolve()
    for entry in entries:
        path = Path(entry.path)
        at = here / entry.name  # shown as the entry itself, not where a symbolic link leads
        if skipped(entry.name) or entry.name.lower() in ("readme.md", "readme"):
            continue
        if entry.name == COLLECTIONS and _is_dir(entry):
            try:
                folder, collection_entries = path.resolve(), _entries(path)
            except (OSError, RuntimeError) as exc:
                findings.append(Finding(shown(path, at), 0, 0, "", f"cannot read {COLLECTIONS}/: {_reason(exc)}"))
                continue
            for coll in collection_entries:
                coll_path = Path(coll.path)
                if skipped(coll.name):
                    continue
                if coll_path.suffix in YAML_SUFFIXES and _is_file(coll):
                    resolved = None if coll.is_symlink() else folder / coll.name
                    files.append(ConfigFile(coll_path, "collection", shown(coll_path, resolved)))
                elif coll_path.suffix in YAML_SUFFIXES and (problem := _unreadable(coll_path)):
                    findings.append(Finding(shown(coll_path, folder / coll.name), 0, 0, "", problem))
                else:
                    findings.append(
                        Finding(
                            shown(coll_path, folder / coll.name),
                            0,
                            0,
                            "",
                            "unexpected file in collections/ (expected *.yaml)",
                        )
                    )
        elif entry.name in (SETTINGS, QUEUES, SCHEDULES):
            files.append(ConfigFile(path, entry.name.removesuffix(".yaml"), shown(path)))
        elif entry.name == COLLECTIONS and (problem := _unreadable(path)):
            findings.append(Finding(shown(path, at), 0, 0, "", problem))
        else:
            findings.append(
                Finding(
                    shown(path, at),
                    0,
                    0,
                    "",
                    (
                        f"unexpected {'folder' if _is_dir(entry) else 'file'} "
                        f"(expected {SETTINGS}, {QUEUES}, {SCHEDULES} and {COLLECTIONS}/*.yaml)"
                    ),
                )
            )
    if not any(file.kind == "bootstrap" for file in files):
        findings.append(
            Finding(
                shown(config_dir / SETTINGS),
                0,
                0,
                "",
                "missing: every config folder needs bootstrap.yaml (project, mongodb, redis)",
            )
        )
    return files, findings


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a symbolic link loop, say: not a folder we can read
        return False


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _unreadable(path: Path) -> str | None:
    """Why `path` cannot be read (a symbolic link loop or to nowhere, no permission), if it cannot."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return "cannot read: it is a symbolic link to nothing" if path.is_symlink() else None
    except OSError as exc:
        return f"cannot read: {_reason(exc)}"
    return None


def _reason(exc: BaseException) -> str:
    """An OSError as words (`Permission denied`), a symbolic link loop named as one."""
    if isinstance(exc, RuntimeError) or getattr(exc, "errno", None) == errno.ELOOP:
        return "a symbolic link loop (a link that points back to itself)"
    return getattr(exc, "strerror", None) or str(exc)


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    """The folder's entries by name; `os.scandir` knows each one's type without another system call."""
    with os.scandir(folder) as entries:
        return sorted(entries, key=lambda entry: entry.name)


def read_document(
    path: Path, env: Mapping[str, str], shown: str | None = None
) -> tuple[Document | None, list[Finding]]:
    shown = display_path(path) if shown is None else shown
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, [Finding(shown, 0, 0, "", f"cannot read: {_reason(exc)}")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [_not_utf8(shown, data, exc)]
    text = text.removeprefix("\ufeff")  # a byte-order mark is harmless; editors on Windows add one
    return load_document(text, shown, env)


# The line breaks YAML counts (PyYAML and libyaml alike): CR LF, LF, a lone CR, NEL, LS and PS.
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


def _not_utf8(shown: str, data: bytes, exc: UnicodeDecodeError) -> Finding:
    """The first byte that is not UTF-8, at its line and column (in characters, as YAML counts them:
    everything before it decoded)."""
    before = data[: exc.start].decode("utf-8").removeprefix("\ufeff")
    lines = _LINE_BREAK.split(before)
    return Finding(
        shown,
        len(lines),
        len(lines[-1]) + 1,
        "",
        f"not UTF-8 text: byte 0x{data[exc.start]:02x} here does not start a valid UTF-8 character "
        f"({exc.reason}); save the file as UTF-8",
    )


def load_spec(
    config_dir: Path,
    env: Mapping[str, str] | None = None,
    warnings: list[Finding] | None = None,
    *,
    import_handlers: bool = False,
    offline: bool = False,
) -> Spec:
    """The validated Spec of `config_dir`, or ConfigError with every error found. Warnings do not
    make it invalid: they are appended to `warnings` when a list is given. With `import_handlers`
    (`bootstrap validate`) the declared job handlers are imported too, in a process of their own,
    and each one workers could not use is a finding. `offline` (commands that connect to nothing:
    validate, generate, docs): a required variable that is not set is kept as written and warned
    about (see interpolate.KeepUnset), so a CI job without the secrets checks the config."""
    env = os.environ if env is None else env
    if offline:
        env = KeepUnset(env)
    files, findings = config_files(config_dir)
    docs: dict[str, Document] = {}
    kinds: dict[str, str] = {}
    for file in files:
        doc, problems = read_document(file.path, env, file.shown)
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
        problems = schema_check.check(doc, file.kind)
        findings += problems
        if not problems:
            findings += envvalues.untagged(doc, file.kind)
            docs[doc.file] = doc
            kinds[doc.file] = file.kind
    # Semantic checks run on every file that is structurally sound; checks that would need a
    # file that failed (a reference into it) are skipped rather than reported as follow-on noise.
    failed_kinds = {file.kind for file in files if file.shown not in docs}
    spec = _build(config_dir, docs, kinds)
    settings_file = next((f for f, k in kinds.items() if k == "bootstrap"), SETTINGS)
    findings += check_spec(spec, docs, settings_file, failed_kinds)
    if import_handlers and "queues" not in failed_kinds:
        report = Reporter(docs)
        check_handlers(spec, report)
        findings += report.findings
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
        # The job layer's values from ${...} keep their template (see envvalues), for generated code.
        by_kind.setdefault(kinds[file], []).append(envvalues.tagged(doc, kinds[file]))
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
        redis=build.redis_settings(
            settings["redis"], project, templates.get(("redis", "url")), templates.get(("redis", "sentinel", "hosts"))
        ),
        codegen=build.codegen(settings.get("codegen", {}), project, root),
        collections=tuple(build.collection(doc) for doc in by_kind.get("collection", [])),
        queues=build.queues(queues_doc) if queues_doc else (),
        schedules=build.schedules(schedules_doc) if schedules_doc else (),
        metrics=build.metrics(settings.get("metrics", {})),
    )
