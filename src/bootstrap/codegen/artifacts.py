"""The files of the generated package, one entry each: its template and the data it renders.

An artifact's `inputs` are everything its template can see (rendering gets nothing else), as plain
JSON-like data. Its staleness hash is taken over those inputs and the template text, so a file goes
stale only when what it is made from changes: adding a collection touches no job wiring, changing a
queue's concurrency touches `spec.py` only. Adding a file (say `models.py`, one class per
collection) is adding an entry here and a template.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bootstrap.codegen.hashing import files_hash
from bootstrap.codegen.models import models_inputs
from bootstrap.jobs.contract import Runtime
from bootstrap.spec import envvalues
from bootstrap.spec.model import Spec

Inputs = dict[str, Any]  # JSON-like: dicts, lists, str, numbers, bool, None


@dataclass(frozen=True)
class Artifact:
    name: str  # the file in the generated package
    template: str  # under templates/
    inputs: Callable[[Spec], Inputs]
    wiring: bool = True  # part of the job wiring, whose hash workers and status compare
    # Run by workers: their heartbeat's hash covers these files only, so a change that only the
    # scheduler runs (a schedule's cron) does not make every worker stale.
    workers: bool = True


def package(spec: Spec) -> Inputs:
    return {"package": spec.codegen.package}


def contract_literal(spec: Spec) -> dict[str, Any]:
    """The runtime contract as plain data, values from `${...}` as markers: generated code holds the
    same bytes in every environment and resolves them in its own (spec.envvalues)."""
    literal: dict[str, Any] = envvalues.markers(Runtime.from_spec(spec).to_literal())
    return literal


def contract(spec: Spec) -> Inputs:
    literal = contract_literal(spec)
    del literal["schedules"]  # in schedules.py: only the scheduler runs them
    return {"contract": literal, "project_dir": project_dir(spec)}


def declared_schedules(spec: Spec) -> Inputs:
    return {"schedules": contract_literal(spec)["schedules"]}


def project_dir(spec: Spec) -> str | None:
    """The project folder (the one holding config/) relative to the generated package, in POSIX
    form: handler and middleware import paths are relative to it (`bootstrap validate` imports them
    from there), so a worker imports them from there too, however it was started. None for a
    package generated outside the project (`allow_outside_project`): the way back would name the
    project folder, and the same config checked out elsewhere would render another package."""
    root, package = spec.root.resolve(), (spec.codegen.output / spec.codegen.package).resolve()
    if not package.is_relative_to(root):
        return None
    return Path(os.path.relpath(root, package)).as_posix()


def queue_names(spec: Spec) -> Inputs:
    return {"queues": [queue.name for queue in spec.queues]}


def queue_tasks(spec: Spec) -> Inputs:
    return {"tasks": [{"queue": queue.name, "task": task.name} for queue in spec.queues for task in queue.tasks]}


def nothing(spec: Spec) -> Inputs:
    return {}


ARTIFACTS: tuple[Artifact, ...] = (
    Artifact("__init__.py", "__init__.py.j2", package),
    Artifact("spec.py", "spec.py.j2", contract),
    Artifact("brokers.py", "brokers.py.j2", queue_names),
    Artifact("tasks.py", "tasks.py.j2", queue_tasks),
    Artifact("schedules.py", "schedules.py.j2", declared_schedules, workers=False),
    Artifact("scheduler.py", "scheduler.py.j2", nothing, workers=False),
    Artifact("worker.py", "worker.py.j2", package),
    Artifact("models.py", "models.py.j2", models_inputs, wiring=False),  # the application's models
    Artifact("py.typed", "py.typed.j2", nothing, wiring=False),  # PEP 561: mypy checks code that imports it
)

WIRING_FILES = tuple(artifact.name for artifact in ARTIFACTS if artifact.wiring)
WORKER_FILES = tuple(artifact.name for artifact in ARTIFACTS if artifact.wiring and artifact.workers)


def package_wiring_hash(package_dir: Path, *, workers: bool = False) -> str | None:
    """The wiring hash of the generated package on disk (`codegen.render.wiring_hash(spec)` of the
    spec it was generated from; `workers`: of the files workers run), without Jinja2; None when a
    file is missing or unreadable."""
    names = WORKER_FILES if workers else WIRING_FILES
    try:
        return files_hash({name: (package_dir / name).read_text(encoding="utf-8") for name in names})
    except (OSError, UnicodeDecodeError):
        return None
