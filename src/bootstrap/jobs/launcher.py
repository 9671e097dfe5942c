"""Start a worker per queue (taskiq's worker loop in one process: `bootstrap.jobs.taskiq_worker`) and
`taskiq scheduler` on a generated package, and stop them together: SIGTERM/SIGINT are passed on,
and each child gets its queue's shutdown timeout to finish the jobs it is running. The children are
supervised by `bootstrap.local.processes`: each in its own process group, restarted when it dies
(at most 5 times a minute), and gone when the launcher dies, even by SIGKILL."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from bootstrap.jobs.contract import Runtime
from bootstrap.local.processes import Child, Exit, Outcome, RestartPolicy, StopSignals, Supervisor
from bootstrap.spec.names import python_identifier

log = logging.getLogger("bootstrap.jobs.launcher")


def worker_command(runtime: Runtime, package: str, queue: str, *, restart_inside: bool = False) -> list[str]:
    """The worker of `queue`: one process running taskiq's worker loop with `taskiq worker`'s
    arguments (see `taskiq_worker`; without taskiq's process manager, which would add 46 MiB). It
    never restarts itself: its supervisor restarts it (`run_workers`, `bootstrap up`).
    `restart_inside` is accepted for callers of the former two-process worker and changes nothing."""
    del restart_inside
    declared = runtime.queue(queue)
    concurrency = str(declared.concurrency)
    wait = f"{declared.shutdown_timeout:g}"
    return [
        sys.executable, "-m", "bootstrap.jobs.taskiq_worker", f"{package}.brokers:{python_identifier(queue)}",
        f"{package}.tasks",
        "--workers", "1",
        "--max-async-tasks", concurrency,
        "--max-prefetch", concurrency,
        "--ack-type", "when_saved",
        "--receiver", "bootstrap.jobs.receiver:FastReceiver",
        "--wait-tasks-timeout", wait,
        "--shutdown-timeout", wait,
        "--no-configure-logging",
    ]  # fmt: skip


def scheduler_command(package: str, update_interval: float = 10.0) -> list[str]:
    return [
        sys.executable, "-m", "taskiq", "scheduler", f"{package}.scheduler:scheduler", f"{package}.tasks",
        "--update-interval", f"{update_interval:g}", "--no-configure-logging",
    ]  # fmt: skip


def child_env(package_dir: Path, project_root: Path | None = None) -> dict[str, str]:
    """The environment of a child: the generated package importable and, given the project folder
    (the folder holding config/), the handler modules in it, wherever the child is started from
    (`bootstrap validate` imports handlers the same way); logs configured by bootstrap."""
    env = dict(os.environ)
    paths = [str(package_dir.parent), *([str(project_root)] if project_root is not None else [])]
    env["PYTHONPATH"] = os.pathsep.join(p for p in (*dict.fromkeys(paths), env.get("PYTHONPATH", "")) if p)
    return env


def run_workers(runtime: Runtime, package: str, queues: list[str]) -> int:
    """Run a worker per queue until SIGTERM/SIGINT, then stop them all; exit 0 on a clean stop. A
    worker that dies is restarted, at most 5 times a minute; one that keeps dying stops them all."""
    declared = runtime.queue_names
    unknown = [q for q in queues if q not in declared]
    if unknown:
        print(f"unknown queue(s): {', '.join(unknown)} (declared: {', '.join(declared)})", file=sys.stderr)
        return 2
    package_dir = Path(sys.modules[package].__file__ or ".").parent
    env = child_env(package_dir)
    children = [
        Child(f"worker {q}", worker_command(runtime, package, q), env=env, restart=RestartPolicy())
        for q in queues or list(declared)
    ]
    return supervise(Supervisor(children), max(q.shutdown_timeout for q in runtime.queues) + 10)


def supervise(supervisor: Supervisor, stop_timeout: float) -> int:
    """Start the children and wait; on SIGTERM/SIGINT pass SIGTERM on and wait up to `stop_timeout`.
    Exit 0 only for a requested stop that every child finished cleanly; a child that exits on its
    own and is not restarted (no restart policy, or it kept dying) stops the others and makes it 1
    (the orchestrator restarts the whole set)."""
    ended: list[Exit] = []

    def note(exits: list[Exit]) -> None:
        ended.extend(e for e in exits if e.outcome is Outcome.GAVE_UP)

    with StopSignals() as stops:
        supervisor.start_all()
        exited = supervisor.run(lambda: stops.requested or bool(ended), tick=note)
        last = exited or (ended[0] if ended else None)
        if last is not None:
            log.error("%s exited on its own (code %s); stopping the others", last.child.name, last.code)
        supervisor.stop_all(stop_timeout)
    return 0 if last is None and supervisor.clean else 1
