"""`.bootstrap/up.json`: what a running `bootstrap up` tells the other commands of its project.

`up` writes it (atomically, mode 0600: the URIs may carry the local servers' passwords) once its
servers run, and again when its workers change (started, restarted, given up, wiring changed); it
removes it when it stops. Other commands read it: `plan`, `apply`, `status`, `enqueue` and `jobs`
use the servers it started when MONGODB_URI / REDIS_URL are not set, and `status` shows the state of
its workers. A file whose `up` is gone (killed) is stale and ignored.

Light on purpose (no driver, no taskiq, no jinja2): `plan` and `apply` read it.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from bootstrap.files import write_atomic
from bootstrap.local.processes import is_running

STATE_DIR = ".bootstrap"
STATE_FILE = "up.json"

# What a child of `up` is doing, as status shows it.
RUNNING, RESTARTING, GAVE_UP = "running", "restarting", "gave up"


@dataclass(frozen=True)
class ChildState:
    name: str  # "worker delta-sync", "scheduler"
    pid: int | None
    state: str  # RUNNING, RESTARTING (restarted within the last minute) or GAVE_UP (left stopped)
    restarts: int  # restarts within the supervisor's window
    log: str | None  # its log file, as shown to the user
    last_exit: int | None = None  # its last exit code, if it exited


@dataclass(frozen=True)
class UpState:
    pid: int
    started: str
    mongodb_uri: str | None = None  # the local server's URI, when `up` started one
    redis_url: str | None = None
    children: tuple[ChildState, ...] = ()
    wiring: str | None = None  # the hash of the generated wiring its workers were started with
    restart_window: float = 60.0
    max_restarts: int = 5

    @property
    def crashing(self) -> list[ChildState]:
        """Children that keep exiting: given up on, or restarted within the window."""
        return [child for child in self.children if child.state != RUNNING]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> UpState:
        data = json.loads(text)
        children = tuple(ChildState(**child) for child in data.pop("children", []))
        return cls(children=children, **data)


def state_path(root: Path) -> Path:
    """Where `up` for the project folder `root` (the folder holding config/) writes its state."""
    return root / STATE_DIR / STATE_FILE


def write_state(path: Path, state: UpState) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, state.to_json(), mode=0o600)


def remove_state(path: Path, pid: int) -> None:
    """Remove the file if `pid` wrote it (a second `up` that found the first running must not)."""
    with contextlib.suppress(OSError, ValueError, TypeError):
        if UpState.from_json(path.read_text()).pid == pid:
            path.unlink()


def running_up(root: Path) -> UpState | None:
    """The state of the `bootstrap up` running for project folder `root`, if one is (a file left by
    an `up` that was killed is ignored)."""
    try:
        state = UpState.from_json(state_path(root).read_text())
    except (OSError, ValueError, TypeError):
        return None
    if state.pid == os.getpid() or not is_running(state.pid, "bootstrap"):
        return None
    return state
