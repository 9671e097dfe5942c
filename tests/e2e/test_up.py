"""`bootstrap up` as a user runs it: a real process, local servers, workers and scheduler, Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from bootstrap.local.processes import group_alive
from bootstrap.local.servers import MongoServer, RedisServer
from tests.conftest import REPO, copy_config

DONE = re.compile(r"delta-sync ([1-9]\d*) done")


def env_without_servers() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MONGODB_URI", "REDIS_URL", "REDIS_HOST", "REDIS_PORT")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def fast_schedule(config: Path) -> None:
    """The shipped delta-sync schedule every 2 s instead of every 15 min, so a job fires soon."""
    path = config / "schedules.yaml"
    text = path.read_text()
    assert "every: 15m" in text
    path.write_text(text.replace("every: 15m", "every: 2s", 1))


class Output:
    """A process in a session of its own (like a terminal's foreground job) and everything it prints,
    collected by a thread so tests can wait for a line. As a context manager it kills what is left."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process, self.text = process, ""
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    @classmethod
    def start(cls, command: list[str], cwd: Path, env: dict[str, str]) -> Output:
        return cls(
            subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        )

    def __enter__(self) -> Output:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.text += line

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pattern.search(self.text):
                return self.text
            if self.process.poll() is not None and not self._thread.is_alive():
                break
            time.sleep(0.2)
        raise AssertionError(f"no match for {pattern.pattern!r} within {timeout}s; output so far:\n{self.text}")

    def finish(self, timeout: float = 90) -> str:
        self.process.wait(timeout)
        self._thread.join(10)
        return self.text


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def interrupt(output: Output, timeout: float = 90) -> str:
    """Ctrl-C, as a terminal sends it: SIGINT to the foreground process group."""
    os.killpg(output.process.pid, signal.SIGINT)
    return output.finish(timeout)


def up_command(project: Path) -> list[str]:
    return [sys.executable, "-m", "bootstrap", "up", "--config", str(project / "config")]


def start_up(project: Path, env: dict[str, str]) -> Output:
    return Output.start(up_command(project), project, env)


def test_up_runs_the_stack_on_local_servers_and_stops_cleanly(tmp_path: Path) -> None:
    project = tmp_path / "project"
    fast_schedule(copy_config(project / "config", "msedb"))
    with start_up(project, env_without_servers()) as up:
        seen = up.wait_for(DONE, 120)
        assert "starting a local MongoDB" in seen and "starting a local Redis" in seen
        assert "bootstrap up: msedb is running" in seen and ".bootstrap" in seen
        second = subprocess.run(
            [sys.executable, "-m", "bootstrap", "up", "--config", str(project / "config")],
            cwd=project,
            env=env_without_servers(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1 and "already running" in second.stderr
        out = interrupt(up)
        assert up.process.returncode == 0, out
        assert "workers and scheduler stopped" in out and "local servers stopped" in out
    ports = json.loads((project / ".bootstrap" / "ports.json").read_text())
    assert not listening(ports["mongodb"]) and not listening(ports["redis"])
    assert not (project / ".bootstrap" / "up.pid").exists()
    # The data survives: a second run finds everything applied.
    with start_up(project, env_without_servers()) as again:
        seen = again.wait_for(re.compile(r"jobs: .*"), 120)
        assert "MongoDB and Redis match the spec" in seen
        interrupt(again)
        assert again.process.returncode == 0


def test_up_uses_configured_servers_and_starts_none(
    tmp_path: Path, mongo_server: MongoServer, redis_server: RedisServer
) -> None:
    project = tmp_path / "project"
    copy_config(project / "config", "upext")
    env = {**env_without_servers(), "MONGODB_URI": f"{mongo_server.uri}upext", "REDIS_URL": redis_server.uri}
    with start_up(project, env) as up:
        seen = up.wait_for(re.compile(r"is running"), 120)
        assert "starting a local" not in seen
        interrupt(up)
        assert up.process.returncode == 0


def test_up_restarts_a_child_that_dies_at_most_5_times_a_minute_then_names_its_log(
    tmp_path: Path, mongo_server: MongoServer, redis_server: RedisServer
) -> None:
    project = tmp_path / "project"
    copy_config(project / "config", "uprestart")
    env = {**env_without_servers(), "MONGODB_URI": f"{mongo_server.uri}uprestart", "REDIS_URL": redis_server.uri}
    processes = project / ".bootstrap" / "processes.json"

    def scheduler_pid() -> int:
        return int(next(e["pid"] for e in json.loads(processes.read_text()) if e["name"] == "scheduler"))

    with start_up(project, env) as up:
        up.wait_for(re.compile(r"is running"), 120)
        for restart in range(1, 7):
            pid = scheduler_pid()
            os.killpg(pid, signal.SIGKILL)
            if restart <= 5:
                deadline = time.monotonic() + 20
                while scheduler_pid() == pid and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert scheduler_pid() != pid, f"restart {restart}: no new scheduler"
        seen = up.wait_for(re.compile(r"scheduler keeps exiting .*"), 20)
        assert seen.count("scheduler exited with code -9; restarting it (log: .bootstrap/logs/scheduler.log)") == 5
        assert "not restarting it. See .bootstrap/logs/scheduler.log" in seen
        assert up.process.poll() is None  # the workers go on
        out = interrupt(up)
        assert up.process.returncode == 0, out


def quick_start_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = text.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.strip().splitlines() if line.strip()]


def test_readme_quick_start_is_two_commands_and_the_second_is_what_ci_runs() -> None:
    commands = quick_start_commands()
    assert len(commands) == 2
    assert commands[0].endswith("bootstrap up")
    assert commands[1] in (REPO / ".ci" / "run").read_text()


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="needs the git repository to clone")
def test_readme_quick_start_first_command_on_a_fresh_clone(tmp_path: Path) -> None:
    """The first quick-start command, verbatim, in a fresh clone: it installs, starts everything,
    processes a scheduled job, and stops on Ctrl-C."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    fast_schedule(clone / "config")
    env = {k: v for k, v in env_without_servers().items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    with Output.start(["bash", "-c", quick_start_commands()[0]], clone, env) as up:
        up.wait_for(DONE, 600)
        out = interrupt(up)
        assert up.process.returncode == 0, out


def test_a_killed_up_takes_its_servers_and_workers_with_it_and_the_next_up_cleans_leftovers(tmp_path: Path) -> None:
    project = tmp_path / "project"
    fast_schedule(copy_config(project / "config", "msedb"))
    state = project / ".bootstrap"
    with start_up(project, env_without_servers()) as first:
        first.wait_for(re.compile(r"is running"), 120)
        started = json.loads((state / "processes.json").read_text())
        assert {e["name"] for e in started} >= {"secantusd", "redis-server", "worker delta-sync", "scheduler"}
        first.process.kill()  # SIGKILL: `up` cleans up nothing; its children go by themselves
        first.process.wait(10)
        deadline = time.monotonic() + 30
        while any(group_alive(e["pid"]) for e in started) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [e["name"] for e in started if group_alive(e["pid"])] == []
    ports = json.loads((state / "ports.json").read_text())
    assert not listening(ports["mongodb"]) and not listening(ports["redis"])
    # A child that did not go (say, it ignored SIGTERM) is stopped by the next `up`.
    stray = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(300)", "taskiq"],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        (state / "processes.json").write_text(
            json.dumps([*started, {"name": "worker delta-sync", "pid": stray.pid, "marker": "taskiq"}])
        )
        with start_up(project, env_without_servers()) as second:
            seen = second.wait_for(DONE, 120)
            assert f"stopping worker delta-sync (pid {stray.pid}), left running by an earlier" in seen
            assert seen.count("left running by an earlier") == 1  # the dead ones are not touched
            assert stray.wait(20) == -signal.SIGTERM
            interrupt(second)
            assert second.process.returncode == 0
    finally:
        if stray.poll() is None:
            stray.kill()
            stray.wait(10)
    assert not listening(ports["mongodb"]) and not listening(ports["redis"])


def test_up_keeps_its_folder_private_and_its_servers_behind_a_password_reused_across_runs(tmp_path: Path) -> None:
    project = tmp_path / "project"
    fast_schedule(copy_config(project / "config", "msedb"))
    state = project / ".bootstrap"
    with start_up(project, env_without_servers()) as up:
        seen = up.wait_for(DONE, 120)
        credentials = json.loads((state / "credentials.json").read_text())
        secrets = [credentials["mongodb"]["password"], credentials["redis"]["password"]]
        assert all(len(secret) >= 30 for secret in secrets)
        ports = json.loads((state / "ports.json").read_text())

        # Private: the folder 0700, nothing in it readable by group or others (data, logs, state).
        assert stat.S_IMODE(state.stat().st_mode) == 0o700
        entries = [p for p in state.rglob("*") if not p.is_symlink()]
        names = {p.name for p in entries}
        assert {"credentials.json", "ports.json", "processes.json", "up.pid", "scheduler.log", "redis.conf"} <= names
        assert any(p.suffix == ".aof" or "appendonly" in p.name for p in entries)  # Redis data
        assert any(p.parent.name == "db" for p in entries)  # MongoDB data
        loose = {str(p.relative_to(state)): oct(stat.S_IMODE(p.lstat().st_mode)) for p in entries
                 if stat.S_IMODE(p.lstat().st_mode) & 0o077}  # fmt: skip
        assert loose == {}

        # Password-protected: refused without it, served with it (from credentials.json).
        anonymous = redis.Redis(port=ports["redis"], socket_timeout=5)
        with pytest.raises(redis.AuthenticationError):
            anonymous.ping()
        anonymous.close()
        assert redis.Redis(port=ports["redis"], password=secrets[1], socket_timeout=5).ping()
        nobody: MongoClient[dict[str, Any]] = MongoClient(port=ports["mongodb"], serverSelectionTimeoutMS=5000)
        with pytest.raises(OperationFailure, match="requires authentication"):
            nobody["msedb"].list_collection_names()
        nobody.close()
        user = MongoClient(
            port=ports["mongodb"], username="bootstrap", password=secrets[0], authSource="admin",
            serverSelectionTimeoutMS=5000,
        )  # fmt: skip
        assert "users" in user["msedb"].list_collection_names()
        user.close()

        # Never shown: not printed, not in a log, not on a command line (which every user can read).
        logs = "".join(p.read_text(errors="replace") for p in state.rglob("*.log"))
        started = json.loads((state / "processes.json").read_text())
        command_lines = "".join(Path(f"/proc/{e['pid']}/cmdline").read_text(errors="replace") for e in started)
        for secret in secrets:
            assert secret not in seen and secret not in logs and secret not in command_lines
        out = interrupt(up)
        assert up.process.returncode == 0, out
    # The project's own files keep the permissions the user's umask gives them.
    assert stat.S_IMODE((project / "generated" / "msedb_jobs" / "spec.py").stat().st_mode) & 0o044 == 0o044

    # The next run reuses the passwords: everything is found as it was left.
    with start_up(project, env_without_servers()) as again:
        seen = again.wait_for(DONE, 120)
        assert "MongoDB and Redis match the spec" in seen
        assert json.loads((state / "credentials.json").read_text()) == credentials
        interrupt(again)
        assert again.process.returncode == 0


HANDLED_QUEUE = """
  handled:
    tasks:
      mistyped: {handler: "app_handlers:run"}
"""

MISTYPED_HANDLERS = "async def run(**kwargs):\n    return None\n\nretrun = undefined_name  # a typo\n"


def bootstrap(project: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """A command in a second shell of the project: no server configured."""
    return subprocess.run(
        [sys.executable, "-m", "bootstrap", args[0], "--config", str(project / "config"), *args[1:]],
        cwd=project, env=env_without_servers(), capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def test_a_second_shell_finds_up_a_bad_handler_stops_its_queue_only_and_a_saved_config_restarts_workers(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    config = copy_config(project / "config", "msedb")
    fast_schedule(config)
    queues = config / "queues.yaml"
    queues.write_text(queues.read_text().rstrip("\n") + "\n" + HANDLED_QUEUE)
    (project / "app_handlers.py").write_text(MISTYPED_HANDLERS)
    state = project / ".bootstrap" / "up.json"
    with start_up(project, env_without_servers()) as up:
        up.wait_for(re.compile(r"is running"), 120)
        recorded = json.loads(state.read_text())
        assert recorded["pid"] == up.process.pid and (state.stat().st_mode & 0o777) == 0o600

        # The other commands find up's servers (no 127.0.0.1:27017 retries) and say so in one line.
        enqueued = bootstrap(project, "enqueue", "delta-sync", "run-delta-sync", "--id", "from-shell-2", timeout=60)
        assert enqueued.returncode == 0, enqueued.stderr
        using = [line for line in enqueued.stderr.splitlines() if "using the servers of `bootstrap up`" in line]
        # The embedded servers require a password: it is in the URIs, masked.
        assert len(using) == 1 and f"(pid {up.process.pid}): MongoDB mongodb://bootstrap:****@127.0.0.1:" in using[0]
        assert "Redis redis://:****@127.0.0.1:" in using[0], using

        # The mistyped handler stops its own queue only, and up says so, with the reason.
        seen = up.wait_for(re.compile(r"worker handled keeps crashing.*\n(.*\n)*.*NameError"), 180)
        assert "queue handled is not being worked" in seen
        up.wait_for(DONE, 60)  # delta-sync goes on
        shown = bootstrap(project, "status")
        assert shown.returncode == 0, shown.stderr
        assert "worker handled kept crashing: `bootstrap up`" in shown.stdout, shown.stdout
        assert "everything matches the spec" not in shown.stdout

        # A saved config is applied, the wiring regenerated and the workers restarted on it.
        queues.write_text(queues.read_text().replace('{handler: "app_handlers:run"}', "{timeout: 1m}"))
        up.wait_for(re.compile(r"the generated wiring changed .*: restarting the workers and the scheduler"), 90)
        up.wait_for(re.compile(r"workers and scheduler running on wiring"), 120)

        def settled() -> str:
            out = bootstrap(project, "status").stdout
            return out if "everything matches the spec" in out else ""

        deadline = time.monotonic() + 90
        while not settled() and time.monotonic() < deadline:
            time.sleep(1)
        final = bootstrap(project, "status").stdout
        assert "everything matches the spec" in final, final

        # A schedule-only change restarts the scheduler alone: the workers run none of its files.
        def pids() -> dict[str, int]:
            return {e["name"]: e["pid"] for e in json.loads((project / ".bootstrap" / "processes.json").read_text())}

        before, printed = pids(), len(up.text)
        schedules = config / "schedules.yaml"
        schedules.write_text(schedules.read_text().replace('cron: "0 2 * * *"', 'cron: "0 3 * * *"', 1))
        up.wait_for(re.compile(r"restarting the scheduler \(the workers' wiring is unchanged\)"), 90)
        up.wait_for(re.compile(r"\nscheduler running on wiring"), 60)
        assert "restarting the workers" not in up.text[printed:], up.text[printed:]
        after = pids()
        assert after["scheduler"] != before["scheduler"]
        assert {n: p for n, p in after.items() if n.startswith("worker ")} == {
            n: p for n, p in before.items() if n.startswith("worker ")
        }
        deadline = time.monotonic() + 90
        while not settled() and time.monotonic() < deadline:
            time.sleep(1)
        final = bootstrap(project, "status").stdout
        assert "everything matches the spec" in final, final  # the scheduler runs the new wiring
        out = interrupt(up)
        assert up.process.returncode == 0, out
    assert not state.exists()
    # With no up running, the state left behind (if any) is ignored and nothing is found.
    state.write_text(json.dumps({**recorded, "pid": 999_999_999}))
    assert bootstrap(project, "validate").returncode == 0


def test_up_resolves_a_blocked_plan_with_the_apply_flags(
    tmp_path: Path, mongo_server: MongoServer, redis_server: RedisServer
) -> None:
    project = tmp_path / "project"
    config = copy_config(project / "config", "upblocked")
    env = {**env_without_servers(), "MONGODB_URI": f"{mongo_server.uri}upblocked", "REDIS_URL": redis_server.uri}
    applied = subprocess.run(
        [sys.executable, "-m", "bootstrap", "apply", "--config", str(config)], env=env, capture_output=True, text=True
    )
    assert applied.returncode == 0, applied.stderr
    users = config / "collections" / "users.yaml"
    text = users.read_text()
    assert "unique: true" in text
    users.write_text(text.replace("unique: true", "unique: false", 1))  # a rebuild: blocked without the flag
    blocked = start_up(project, env)
    blocked.finish(120)
    assert blocked.process.returncode == 1
    assert "blocked" in blocked.text and "--allow-rebuild" in blocked.text, blocked.text
    with Output.start([*up_command(project), "--allow-rebuild"], project, env) as up:
        seen = up.wait_for(re.compile(r"is running"), 120)
        assert "-/+" in seen or "rebuil" in seen, seen
        interrupt(up)
        assert up.process.returncode == 0
