"""Start `taskiq worker` (one process per queue) and `taskiq scheduler` on a generated package, and
stop them together: SIGTERM/SIGINT are passed on, and each child gets its queue's shutdown timeout
to finish the jobs it is running."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bootstrap.jobs.contract import Runtime
from bootstrap.spec.names import python_identifier

log = logging.getLogger("bootstrap.jobs.launcher")


def worker_command(runtime: Runtime, package: str, queue: str) -> list[str]:
    declared = runtime.queue(queue)
    concurrency = str(declared.concurrency)
    wait = f"{declared.shutdown_timeout:g}"
    return [
        sys.executable, "-m", "taskiq", "worker", f"{package}.brokers:{python_identifier(queue)}", f"{package}.tasks",
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


def child_env(package_dir: Path) -> dict[str, str]:
    """The environment of a child: the generated package importable, logs configured by bootstrap."""
    env = dict(os.environ)
    parent = str(package_dir.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (parent, env.get("PYTHONPATH", "")) if p)
    return env


def run_workers(runtime: Runtime, package: str, queues: list[str]) -> int:
    """Run a worker per queue until SIGTERM/SIGINT, then stop them all; exit 0 on a clean stop."""
    declared = runtime.queue_names
    unknown = [q for q in queues if q not in declared]
    if unknown:
        print(f"unknown queue(s): {', '.join(unknown)} (declared: {', '.join(declared)})", file=sys.stderr)
        return 2
    package_dir = Path(sys.modules[package].__file__ or ".").parent
    children = [
        subprocess.Popen(worker_command(runtime, package, q), env=child_env(package_dir))
        for q in queues or list(declared)
    ]
    return supervise(children, max(q.shutdown_timeout for q in runtime.queues) + 10)


def supervise(children: list[subprocess.Popen[bytes]], stop_timeout: float) -> int:
    """Wait for the children; on SIGTERM/SIGINT pass SIGTERM on and wait up to `stop_timeout`.
    Exit 0 only for a requested stop that every child finished cleanly; a child that exits on its
    own stops the others and makes it 1 (the orchestrator restarts the whole set)."""
    requested = False

    def on_signal(signum: int, _frame: Any) -> None:
        nonlocal requested
        requested = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not requested and all(child.poll() is None for child in children):
        time.sleep(0.2)
    if not requested:
        log.error("a worker exited on its own (codes %s); stopping the others", [c.poll() for c in children])
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + stop_timeout
    codes = []
    for child in children:
        try:
            codes.append(child.wait(max(0.1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            child.kill()
            codes.append(child.wait())
    return 0 if requested and all(code == 0 for code in codes) else 1
