"""The process supervisor (bootstrap.local.processes) with tiny `python -c` children: graceful stop
then kill, the whole process group, exit codes, the restart cap, dying with the parent."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bootstrap.local import processes
from bootstrap.local.processes import (
    Child,
    Outcome,
    RestartPolicy,
    StopSignals,
    Supervisor,
    group_alive,
    is_running,
)


def ready_then_sleep(setup: str = "") -> str:
    """A child program: `setup` (signal handlers), then a file saying it is ready, then a long sleep."""
    return (
        f"import pathlib, signal, sys, time\n{setup}\npathlib.Path(sys.argv[1]).write_text('ready')\ntime.sleep(60)\n"
    )


def python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def started(child: Child, ready: Path) -> Child:
    """`child` started, once it said it is ready (its signal handlers are in place)."""
    child.start()
    wait_until(ready.exists, 10, f"{child.name} to be ready")
    return child


def test_stop_asks_with_sigterm_and_returns_the_exit_code(tmp_path: Path) -> None:
    code = ready_then_sleep(
        "def bye(*_): print('clean shutdown', flush=True); raise SystemExit(0)\nsignal.signal(signal.SIGTERM, bye)"
    )
    log = tmp_path / "child.log"
    child = started(Child("graceful", python(code, str(tmp_path / "ready")), log_path=log), tmp_path / "ready")
    assert child.running and child.pid is not None
    assert child.stop(timeout=10) == 0
    assert not child.running and child.returncode == 0
    assert "clean shutdown" in log.read_text()


def test_stop_kills_a_child_that_ignores_sigterm(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    code = ready_then_sleep("signal.signal(signal.SIGTERM, signal.SIG_IGN)")
    child = started(Child("stubborn", python(code, str(tmp_path / "ready"))), tmp_path / "ready")
    with caplog.at_level(logging.WARNING, "bootstrap.local.processes"):
        assert child.stop(timeout=0.5) == -signal.SIGKILL
    assert "stubborn" in caplog.text and "killing it" in caplog.text


def test_stop_reaches_what_the_child_started_in_its_group(tmp_path: Path) -> None:
    """The grandchild ignores SIGTERM and outlives its parent: the group is killed at the deadline."""
    grandchild = (
        "import os, pathlib, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "pathlib.Path(sys.argv[1]).write_text(str(os.getpid())); time.sleep(60)"
    )
    code = f"import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', {grandchild!r}, *sys.argv[1:]])\n"
    code += "time.sleep(60)"
    ready = tmp_path / "ready"
    child = started(Child("parent", python(code, str(ready))), ready)
    wait_until(lambda: ready.read_text().isdigit(), 10, "the grandchild's pid")
    grandchild_pid = int(ready.read_text())
    assert is_running(grandchild_pid)
    assert child.stop(timeout=1) == -signal.SIGTERM
    assert not is_running(grandchild_pid) and not group_alive(child.pid or 0)


def test_kill_is_sigkill_to_the_group(tmp_path: Path) -> None:
    child = started(Child("victim", python(ready_then_sleep(), str(tmp_path / "r"))), tmp_path / "r")
    assert child.kill() == -signal.SIGKILL
    assert child.stop() == -signal.SIGKILL  # already gone: stop just tells how it ended


def test_log_file_collects_stdout_and_stderr_and_appends(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "child.log"
    code = "import sys; print('to stdout'); print('to stderr', file=sys.stderr)"
    for _ in range(2):
        child = Child("talker", python(code), log_path=log)
        child.start()
        assert child.wait(10) == 0
    assert log.read_text().count("to stdout") == 2 and log.read_text().count("to stderr") == 2
    assert child.log_tail(1) == "to stderr"


def test_env_and_cwd_are_the_given_ones(tmp_path: Path) -> None:
    code = "import os; print(os.environ['ONLY_THIS'], os.environ.get('HOME'), os.getcwd())"
    log = tmp_path / "child.log"
    child = Child("env", python(code), env={"ONLY_THIS": "x"}, cwd=tmp_path, log_path=log)
    child.start()
    assert child.wait(10) == 0
    assert log.read_text().split() == ["x", "None", str(tmp_path)]


def test_starting_a_running_child_is_an_error(tmp_path: Path) -> None:
    child = Child("twice", python("import time; time.sleep(60)"))
    child.start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            child.start()
    finally:
        child.kill()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def exits_of(supervisor: Supervisor, child: Child) -> list[Outcome]:
    """Watch until `child` has exited once more, and return what the supervisor did."""
    wait_until(lambda: child.poll() is not None, 10, f"{child.name} to exit")
    return [exit.outcome for exit in supervisor.watch()]


def test_restarts_are_capped_per_window_then_it_gives_up_naming_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    starts = tmp_path / "starts"
    code = "import sys; open(sys.argv[1], 'a').write('start\\n'); sys.exit(3)"
    log = tmp_path / "crasher.log"
    clock = Clock()
    child = Child("crasher", python(code, str(starts)), log_path=log, restart=RestartPolicy(2, 60))
    supervisor = Supervisor([child], clock=clock)
    supervisor.start_all()
    with caplog.at_level(logging.WARNING, "bootstrap.local.processes"):
        assert exits_of(supervisor, child) == [Outcome.RESTARTED]
        clock.now += 10
        assert exits_of(supervisor, child) == [Outcome.RESTARTED]
        clock.now += 10
        assert exits_of(supervisor, child) == [Outcome.GAVE_UP]
    assert child.gave_up and supervisor.watch() == []  # reported once, not restarted
    assert starts.read_text().count("start") == 3  # the first start and two restarts
    assert "crasher exited with code 3; restarting it" in caplog.text
    assert "crasher keeps exiting (code 3, 2 restarts in 60s); not restarting it. See" in caplog.text
    assert str(log.name) in caplog.records[-1].getMessage() and caplog.records[-1].levelname == "ERROR"


def test_restarts_older_than_the_window_do_not_count(tmp_path: Path) -> None:
    clock = Clock()
    child = Child("crasher", python("raise SystemExit(1)"), restart=RestartPolicy(1, 60))
    supervisor = Supervisor([child], clock=clock)
    supervisor.start_all()
    assert exits_of(supervisor, child) == [Outcome.RESTARTED]
    clock.now += 61
    assert exits_of(supervisor, child) == [Outcome.RESTARTED]
    clock.now += 1
    assert exits_of(supervisor, child) == [Outcome.GAVE_UP]


def test_a_child_that_cannot_be_started_again_is_given_up(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    program = tmp_path / "program"
    program.write_text("#!/bin/sh\nexit 2\n")
    program.chmod(0o755)
    child = Child("vanishing", [str(program)], restart=RestartPolicy(5, 60))
    supervisor = Supervisor([child])
    supervisor.start_all()
    wait_until(lambda: child.poll() is not None, 10, "the first exit")
    program.unlink()
    with caplog.at_level(logging.ERROR, "bootstrap.local.processes"):
        assert [exit.outcome for exit in supervisor.watch()] == [Outcome.GAVE_UP]
    assert child.gave_up and "vanishing could not be restarted" in caplog.text


def test_run_returns_when_a_child_without_restarts_exits_and_stop_all_stops_the_rest(tmp_path: Path) -> None:
    quitter = Child("quitter", python("import time; time.sleep(0.3); raise SystemExit(4)"))
    stayer = Child("stayer", python("import time; time.sleep(60)"))
    supervisor = Supervisor([quitter, stayer])
    supervisor.start_all()
    ended = supervisor.run(lambda: False, every=0.05)
    assert ended is not None and ended.child is quitter and ended.code == 4 and ended.outcome is Outcome.EXITED
    assert stayer.running
    assert supervisor.stop_all(10) == [4, -signal.SIGTERM]
    assert not supervisor.running and not supervisor.clean


def test_run_returns_none_when_asked_to_stop_and_clean_means_every_exit_was_0(tmp_path: Path) -> None:
    code = ready_then_sleep("signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))")
    children = [Child(f"c{i}", python(code, str(tmp_path / f"ready{i}"))) for i in range(3)]
    supervisor = Supervisor(children)
    supervisor.start_all()
    wait_until(lambda: all((tmp_path / f"ready{i}").exists() for i in range(3)), 10, "the children")
    looks: list[int] = []
    assert supervisor.run(lambda: len(looks) >= 3, every=0.01, tick=lambda exits: looks.append(len(exits))) is None
    assert looks == [0, 0, 0]
    assert supervisor.stop_all(10) == [0, 0, 0]
    assert supervisor.clean


def test_stop_all_shares_one_timeout_and_kills_what_is_left(tmp_path: Path) -> None:
    stubborn = ready_then_sleep("signal.signal(signal.SIGTERM, signal.SIG_IGN)")
    children = [Child(f"s{i}", python(stubborn, str(tmp_path / f"r{i}"))) for i in range(3)]
    supervisor = Supervisor(children)
    supervisor.start_all()
    wait_until(lambda: all((tmp_path / f"r{i}").exists() for i in range(3)), 10, "the children")
    began = time.monotonic()
    assert supervisor.stop_all(1) == [-signal.SIGKILL] * 3
    assert time.monotonic() - began < 1 + 3 * 0.5  # one timeout for all, not one each


def test_stop_signals_turn_sigterm_into_a_request_and_restore_the_handler() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with StopSignals() as stops:
        assert not stops.requested
        os.kill(os.getpid(), signal.SIGTERM)
        wait_until(lambda: stops.requested, 5, "the request")
        stops.raising = KeyboardInterrupt
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
    assert signal.getsignal(signal.SIGTERM) is before


def test_stop_groups_stops_processes_it_did_not_start() -> None:
    """As `up` stops what an earlier, killed `up` left: by process group, SIGTERM then SIGKILL."""
    polite = subprocess.Popen(python("import time; time.sleep(60)"), start_new_session=True)
    deaf = subprocess.Popen(
        python(
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(60)"
        ),
        start_new_session=True,
        stdout=subprocess.PIPE,
    )
    assert deaf.stdout is not None and deaf.stdout.readline()  # its handler is in place
    processes.stop_groups([polite.pid, deaf.pid], 1, is_running)
    assert polite.wait(5) == -signal.SIGTERM and deaf.wait(5) == -signal.SIGKILL
    deaf.stdout.close()


PARENT = """
import sys, threading, time
from bootstrap.local import processes
mode = sys.argv[1]
if mode == "watch":
    processes._prctl = None  # the fallback, as where the kernel cannot do it
child = processes.Child("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"],
                        die_with_parent=mode != "off")
if mode == "thread":  # started from a thread that ends at once: the child must outlive the thread
    starter = threading.Thread(target=child.start)
    starter.start()
    starter.join()
else:
    child.start()
print(child.pid, flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("mode", ["prctl", "watch", "thread", "off"])
def test_children_die_with_their_parent(mode: str) -> None:
    if mode == "prctl" and processes._prctl is None:
        pytest.skip("no prctl on this platform")
    parent = subprocess.Popen(python(PARENT, mode), stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert parent.stdout is not None
    group = int(parent.stdout.readline())
    try:
        time.sleep(1)  # the watcher's command started too; the starting thread (mode "thread") ended
        assert group_alive(group)
        parent.kill()  # SIGKILL: the parent cleans up nothing
        parent.wait(10)
        if mode == "off":
            time.sleep(2)
            assert group_alive(group)  # the control: without it, the child outlives its parent
        else:
            wait_until(lambda: not group_alive(group), 5, "the child to follow its parent")
    finally:
        processes.signal_group(group, signal.SIGKILL)
        parent.stdout.close()


STUBBORN_PARENT = """
import signal, sys, time
from bootstrap.local import processes
kill_after = float(sys.argv[1]) if sys.argv[1] != "none" else None
# A child that catches SIGTERM and goes on, as a server hanging in its shutdown does.
child = processes.Child("stubborn", [sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, lambda *a: None); print('ready', flush=True); time.sleep(60)"],
    log_path=__import__("pathlib").Path(sys.argv[2]), kill_after=kill_after)
child.start()
print(child.pid, flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("kill_after", ["none", "1"])
def test_a_child_that_ignores_sigterm_is_killed_after_kill_after_once_its_parent_died(
    kill_after: str, tmp_path: Path
) -> None:
    log = tmp_path / "stubborn.log"
    parent = subprocess.Popen(python(STUBBORN_PARENT, kill_after, str(log)), stdout=subprocess.PIPE, text=True,
                              start_new_session=True)  # fmt: skip
    assert parent.stdout is not None
    group = int(parent.stdout.readline())
    try:
        wait_until(lambda: log.exists() and "ready" in log.read_text(), 10, "the child's SIGTERM handler")
        parent.kill()  # SIGKILL: the parent cleans up nothing
        parent.wait(10)
        if kill_after == "none":
            time.sleep(2.5)
            assert group_alive(group)  # the control: SIGTERM alone leaves it running
        else:
            wait_until(lambda: not group_alive(group), 5, "the watcher to SIGKILL the stubborn child")
    finally:
        processes.signal_group(group, signal.SIGKILL)
        parent.stdout.close()


def test_the_parent_watch_fallback_passes_exit_codes_and_signals_through(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(processes, "_prctl", None)
    log = tmp_path / "watched.log"
    exits = Child("exits", python("print('said'); raise SystemExit(7)"), log_path=log)
    exits.start()
    assert exits.wait(10) == 7 and "said" in log.read_text()
    assert "parentwatch" in " ".join(exits.process.args)  # type: ignore[union-attr, arg-type]
    stopped = started(Child("stopped", python(ready_then_sleep(), str(tmp_path / "r"))), tmp_path / "r")
    assert stopped.stop(10) == -signal.SIGTERM
    assert not group_alive(stopped.pid or 0)
