"""Child processes, supervised one way for the whole tool (`bootstrap up`, the local servers, the
generated worker launcher).

A `Child` is one command in a session of its own: a signal reaches its whole process group (a
`taskiq worker` and the worker process it forks), and Ctrl-C at a terminal reaches only the
supervisor, which then stops its children in order. Its output is appended to a log file or
inherited; its stdin is closed. It dies with its parent: on Linux the kernel sends it SIGTERM when
the parent dies (prctl PR_SET_PDEATHSIG), elsewhere a small watcher (`parentwatch.py`) runs the
command and stops its group when the parent is gone. So a SIGKILLed supervisor leaves no worker
taking jobs. A child given `kill_after` (the local servers) always runs under the watcher, which
follows the SIGTERM with SIGKILL if the child is still there that many seconds later: the kernel
sends one signal, and a server that hangs in its shutdown would outlive its parent for good.

Stopping is graceful first: SIGTERM to the group, up to a timeout for it to exit, then SIGKILL.

A `Supervisor` runs a set of children: start all, watch (restart a child that exited, at most N
times a minute per its `RestartPolicy`, then give up and say so), stop all within one timeout, and
tell whether every child exited cleanly.
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType

log = logging.getLogger("bootstrap.local.processes")

PARENT_WATCH = Path(__file__).with_name("parentwatch.py")
KILL_WAIT = 10.0  # seconds to wait for a SIGKILLed process to be reaped before giving up on it
WATCH_GRACE = 30.0  # the watcher's seconds from SIGTERM to SIGKILL once the parent is gone (no kill_after)

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    """libc's prctl on Linux, resolved once here: the child calls it between fork and exec, where
    nothing should be looked up or imported."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


_prctl = _load_prctl()  # None: use the parent-watch fallback


def _die_with_parent(parent: int) -> Callable[[], None]:
    """A preexec function: SIGTERM this child when its parent dies. The kernel ties this to the
    thread that forks, so children must be started from a thread that lives as long as the parent
    (the main thread, here)."""
    prctl = _prctl
    assert prctl is not None
    # Built before the fork: the child only calls into libc.
    args = (ctypes.c_int(_PR_SET_PDEATHSIG), ctypes.c_ulong(signal.SIGTERM),
            ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))  # fmt: skip

    def preexec() -> None:
        prctl(*args)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def is_running(pid: int, marker: str = "") -> bool:
    """Whether `pid` is alive (a zombie is not) and, where /proc tells, its command line mentions
    `marker`, so a pid reused by an unrelated process does not count."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        if _stat(Path(f"/proc/{pid}"))[0] in ("Z", "X"):
            return False
        return marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, IndexError):
        return True


def _stat(pid_dir: Path) -> list[str]:
    """/proc/PID/stat after the command name: state, ppid, process group, session, ..."""
    return (pid_dir / "stat").read_text().rsplit(")", 1)[1].split()


def group_alive(pgid: int) -> bool:
    """Whether any live process (zombies do not count) is left in process group `pgid`."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                fields = _stat(entry)
            except (OSError, IndexError):
                continue  # gone meanwhile
            if fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
                return True
    return False


def signal_group(pid: int, signum: int) -> None:
    """`signum` to the process group led by `pid`, if any of it is left."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def stop_groups(pids: Sequence[int], timeout: float, alive: Callable[[int], bool]) -> None:
    """Stop process groups this process did not start (so cannot wait for): SIGTERM each, wait up to
    `timeout` until `alive` says they are gone, then SIGKILL what is left."""
    for pid in pids:
        signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for pid in pids:
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive(pid):
            signal_group(pid, signal.SIGKILL)


def _wait_while(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def shown(path: Path) -> str:
    """A path in a message: relative to the working directory when below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class RestartPolicy:
    """Restart a child that exits on its own, at most `max_restarts` times within `window` seconds."""

    max_restarts: int = 5
    window: float = 60.0


class Child:
    """One managed process: a command, its environment (None: ours), its working folder, its log
    (None: inherit stdout/stderr), its restart policy (None: an exit is reported, not restarted).
    With `die_with_parent` (the default) it is stopped when this process dies: by prctl where it is
    started from the main thread, by the watcher from any other (Linux ties PR_SET_PDEATHSIG to the
    thread that forked, so a child started from a short-lived thread would die with that thread).
    With `kill_after` too, the watcher runs it wherever it is started (see the module's docstring)."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        log_path: Path | None = None,
        restart: RestartPolicy | None = None,
        die_with_parent: bool = True,
        kill_after: float | None = None,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.log_path = log_path
        self.restart = restart
        self.die_with_parent = die_with_parent
        self.kill_after = kill_after
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts: list[float] = []  # when it was restarted (monotonic clock)
        self.gave_up = False
        self.reported = False  # its exit was reported by Supervisor.watch

    def __repr__(self) -> str:
        return f"Child({self.name!r}, pid={self.pid}, returncode={self.returncode})"

    @property
    def pid(self) -> int | None:
        """Its process id, which is also its process group id."""
        return self.process.pid if self.process is not None else None

    @property
    def returncode(self) -> int | None:
        """Its exit code once it exited (negative: killed by that signal), else None."""
        return self.process.returncode if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        command, preexec = self.command, None
        main = threading.current_thread() is threading.main_thread()
        if self.die_with_parent and self.kill_after is None and _prctl is not None and main:
            preexec = _die_with_parent(os.getpid())
        elif self.die_with_parent:
            grace = self.kill_after if self.kill_after is not None else WATCH_GRACE
            command = [sys.executable, "-I", str(PARENT_WATCH), str(os.getpid()), f"{grace:g}", "--", *command]
        out: int | None = None
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            out = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            self.process = subprocess.Popen(
                command,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT if out is not None else None,
                start_new_session=True,
                preexec_fn=preexec,
            )
        finally:
            if out is not None:
                os.close(out)
        self.reported = False

    def poll(self) -> int | None:
        return self.process.poll() if self.process is not None else None

    def signal(self, signum: int) -> None:
        """`signum` to its whole process group, if it still runs."""
        if self.running:
            assert self.process is not None
            signal_group(self.process.pid, signum)

    def wait(self, timeout: float | None = None) -> int | None:
        """Its exit code, or None if it is still running after `timeout` seconds."""
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM to its group, up to `timeout` seconds to exit, then SIGKILL; its exit code."""
        self.signal(signal.SIGTERM)
        return self._finish(time.monotonic() + timeout)

    def _finish(self, deadline: float) -> int | None:
        """Wait until `deadline` for an exit already asked for (of the child and of what it started
        in its group), then SIGKILL the group."""
        if self.process is None:
            return None
        code = self.wait(max(0.0, deadline - time.monotonic()))
        if code is None:
            log.warning("%s (pid %s) did not stop in time; killing it", self.name, self.pid)
            return self.kill()
        pid = self.process.pid
        _wait_while(lambda: group_alive(pid), deadline - time.monotonic())
        if group_alive(pid):
            log.warning("%s (pid %s) left processes running; killing them", self.name, self.pid)
            signal_group(pid, signal.SIGKILL)
            _wait_while(lambda: group_alive(pid), KILL_WAIT)
        return code

    def kill(self) -> int | None:
        """SIGKILL to its whole group (a crash, or a stop that took too long); its exit code."""
        if self.process is None:
            return None
        pid = self.process.pid
        signal_group(pid, signal.SIGKILL)
        code = self.wait(KILL_WAIT)
        _wait_while(lambda: group_alive(pid), KILL_WAIT)  # what it started in its group, too
        if code is None:
            log.error("%s (pid %s) is still there %gs after SIGKILL", self.name, self.pid, KILL_WAIT)
        return code

    def log_tail(self, lines: int = 15) -> str:
        if self.log_path is None:
            return ""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def where(self) -> str:
        """Where to look for what it said: its log, or the supervisor's own output."""
        return shown(self.log_path) if self.log_path is not None else "the output above"


class Outcome(enum.Enum):
    RESTARTED = "restarted"  # exited on its own and was started again
    GAVE_UP = "gave up"  # exited on its own too often: left stopped
    EXITED = "exited"  # exited on its own; it has no restart policy


@dataclass(frozen=True)
class Exit:
    """A child seen exited by `Supervisor.watch`, and what was done about it."""

    child: Child
    code: int
    outcome: Outcome


class Supervisor:
    """A set of children: started together, watched, stopped together."""

    def __init__(self, children: Iterable[Child] = (), clock: Callable[[], float] = time.monotonic) -> None:
        self.children: list[Child] = list(children)
        self.clock = clock

    def add(self, child: Child) -> Child:
        self.children.append(child)
        return child

    @property
    def running(self) -> bool:
        return any(child.running for child in self.children)

    @property
    def clean(self) -> bool:
        """Every child started and exited with code 0."""
        return all(child.poll() == 0 for child in self.children)

    def start_all(self) -> None:
        for child in self.children:
            child.start()

    def watch(self) -> list[Exit]:
        """One look at the children: each that exited since the last look is restarted if its policy
        allows, else left stopped (and reported once)."""
        exits = []
        now = self.clock()
        for child in self.children:
            code = child.poll()
            if code is None or child.reported:
                continue
            policy = child.restart
            if policy is None:
                child.reported = True
                exits.append(Exit(child, code, Outcome.EXITED))
                continue
            child.restarts = [t for t in child.restarts if now - t < policy.window]
            if len(child.restarts) >= policy.max_restarts:
                log.error(
                    "%s keeps exiting (code %s, %d restarts in %gs); not restarting it. See %s",
                    child.name, code, len(child.restarts), policy.window, child.where(),
                )  # fmt: skip
                child.gave_up = child.reported = True
                exits.append(Exit(child, code, Outcome.GAVE_UP))
                continue
            log.warning("%s exited with code %s; restarting it (log: %s)", child.name, code, child.where())
            child.restarts.append(now)
            try:
                child.start()
            except OSError as error:  # its program is gone, say: no use trying again
                log.error("%s could not be restarted: %s", child.name, error)
                child.gave_up = child.reported = True
                exits.append(Exit(child, code, Outcome.GAVE_UP))
                continue
            exits.append(Exit(child, code, Outcome.RESTARTED))
        return exits

    def run(
        self, until: Callable[[], bool], *, every: float = 0.2, tick: Callable[[list[Exit]], None] | None = None
    ) -> Exit | None:
        """Watch every `every` seconds until `until()` is true (then None) or a child without a
        restart policy exits on its own (then that exit). `tick` sees each look's exits."""
        while not until():
            exits = self.watch()
            if tick is not None:
                tick(exits)
            for exit in exits:
                if exit.outcome is Outcome.EXITED:
                    return exit
            time.sleep(every)
        return None

    def stop_all(self, timeout: float) -> list[int | None]:
        """SIGTERM to every child (in order), then up to `timeout` seconds in all for them to exit,
        then SIGKILL for those still running; the exit codes, in order."""
        for child in self.children:
            child.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        return [child._finish(deadline) for child in self.children]


class StopSignals:
    """While installed (a context manager), SIGINT and SIGTERM (and any others given) ask for a stop
    instead of ending the process: `requested` turns true, and `raising`, if set, is raised, to
    abandon work that cannot wait (a start-up). The previous handlers come back on exit."""

    def __init__(
        self, signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM), raising: type[BaseException] | None = None
    ) -> None:
        self.signals = tuple(signals)
        self.raising = raising
        self.requested = False
        self._previous: dict[int, Callable[[int, FrameType | None], object] | int | None] = {}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.requested = True
        if self.raising is not None:
            raise self.raising

    def __enter__(self) -> StopSignals:
        self._previous = {sig: signal.signal(sig, self._handle) for sig in self.signals}
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
