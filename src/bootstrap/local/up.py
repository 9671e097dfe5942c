"""`bootstrap up`: the whole stack on one machine. Local MongoDB and Redis when no URI is configured
(data under .bootstrap/, kept across runs), then validate, apply, generate if stale, and run a worker
per queue and the scheduler as child processes until Ctrl-C or SIGTERM; then stop the children
gracefully (running jobs finish, queued ones stay in Redis), then the servers."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bootstrap import console
from bootstrap.codegen import write as codegen
from bootstrap.connect.mongo import connect as connect_mongo
from bootstrap.connect.redis import connect as connect_redis
from bootstrap.engine.apply import apply as apply_all
from bootstrap.engine.ops import Options
from bootstrap.errors import AlreadyRunning
from bootstrap.jobs import admin
from bootstrap.jobs.contract import Runtime
from bootstrap.jobs.launcher import child_env, scheduler_command, worker_command
from bootstrap.local.servers import LocalServer, MongoServer, RedisServer, free_port
from bootstrap.redact import mask
from bootstrap.spec.load import display_path, load_spec
from bootstrap.spec.model import Spec

log = logging.getLogger("bootstrap.local.up")

SUMMARY_EVERY = 10.0  # seconds between job summaries (printed only when something changed)


@dataclass
class Child:
    name: str
    command: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)
    gave_up: bool = False


class PidFile:
    """`.bootstrap/up.pid`, created atomically: a second `up` on the same project says so instead of
    starting twice; a file left by an `up` that was killed is taken over."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = json.dumps({"pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S")})
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    holder = json.loads(self.path.read_text())
                except (OSError, ValueError):
                    holder = {}
                pid = int(holder.get("pid", 0))
                if _is_running(pid, "bootstrap"):
                    raise AlreadyRunning(
                        f"bootstrap up is already running for this project (pid {pid}, started "
                        f"{holder.get('started', '?')}); stop it with Ctrl-C or `kill {pid}`"
                    ) from None
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()  # left by an up that was killed
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(record)
            return
        raise AlreadyRunning(f"could not take {self.path}; is another bootstrap up starting?")

    def release(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(self.path.read_text()).get("pid") == os.getpid():
                self.path.unlink()


def _is_running(pid: int, marker: str) -> bool:
    """Whether `pid` is alive and (where /proc tells) its command line mentions `marker`, so a pid
    reused by an unrelated process does not count."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True


class Stack:
    def __init__(self, config_dir: Path, embedded: bool) -> None:
        self.config_dir = config_dir
        self.root = config_dir.resolve().parent
        self.state = self.root / ".bootstrap"
        self.logs = self.state / "logs"
        self.embedded = embedded
        self.servers: list[LocalServer] = []
        self.children: list[Child] = []
        self.stopping = False

    # --- servers --------------------------------------------------------------------------------

    def _port(self, name: str) -> int:
        """The port this server had last time (stable URIs across runs), if it is still free."""
        ports_file = self.state / "ports.json"
        try:
            ports = json.loads(ports_file.read_text())
        except (OSError, ValueError):
            ports = {}
        port = int(ports.get(name, 0))
        if not port or not _port_free(port):
            port = free_port()
        ports[name] = port
        ports_file.write_text(json.dumps(ports))
        return port

    def start_servers(self) -> None:
        """Local servers for what is not configured (or for everything with --embedded)."""
        self.state.mkdir(parents=True, exist_ok=True)
        start_mongo = self.embedded or not os.environ.get("MONGODB_URI")
        start_redis = self.embedded or not (os.environ.get("REDIS_URL") or os.environ.get("REDIS_HOST"))
        if start_mongo:
            # The database the config names by default (its URI's path, or the declared one).
            without_uri = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
            database = load_spec(self.config_dir, env=without_uri).mongodb.database
            mongo = MongoServer(self.state / "mongo", self._port("mongodb"))
            console.out(
                f"starting a local MongoDB (SecantusDB) on port {mongo.port}, data in {display_path(mongo.data_dir)}"
            )
            mongo.start()
            self.servers.append(mongo)
            os.environ["MONGODB_URI"] = f"{mongo.uri}{database}"
        if start_redis:
            redis_server = RedisServer(self.state / "redis", self._port("redis"))
            console.out(
                f"starting a local Redis on port {redis_server.port} (append-only file on, noeviction), "
                f"data in {display_path(redis_server.data_dir)}"
            )
            redis_server.start()
            self.servers.append(redis_server)
            os.environ["REDIS_URL"] = redis_server.uri
            os.environ.pop("REDIS_HOST", None)
        self.record_processes()

    # --- processes left by an up that was killed ----------------------------------------------------

    @property
    def _processes_file(self) -> Path:
        return self.state / "processes.json"

    def record_processes(self) -> None:
        """Note every process started, so that an `up` killed without clean-up is cleaned up next time."""
        entries = [
            {"name": server.name, "pid": server.process.pid, "marker": server.name}
            for server in self.servers
            if server.process is not None
        ]
        entries += [
            {"name": child.name, "pid": child.process.pid, "marker": "taskiq"}
            for child in self.children
            if child.process is not None
        ]
        self._processes_file.write_text(json.dumps(entries))

    def forget_processes(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._processes_file.unlink()

    def stop_leftovers(self) -> None:
        try:
            entries = json.loads(self._processes_file.read_text())
        except (OSError, ValueError):
            return
        alive = [e for e in entries if _is_running(int(e.get("pid", 0)), str(e.get("marker", "")))]
        for entry in alive:
            log.warning(
                "stopping %s (pid %s), left running by an earlier `bootstrap up` that was killed",
                entry["name"],
                entry["pid"],
            )
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(entry["pid"]), signal.SIGTERM)
        deadline = time.monotonic() + 15
        for entry in alive:
            while _is_running(int(entry["pid"]), str(entry["marker"])) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _is_running(int(entry["pid"]), str(entry["marker"])):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(int(entry["pid"]), signal.SIGKILL)
        self.forget_processes()

    def stop_servers(self) -> None:
        for server in reversed(self.servers):
            server.stop()
        self.servers.clear()

    # --- the spec ---------------------------------------------------------------------------------

    def converge(self) -> Spec:
        spec = load_spec(self.config_dir)
        mongo = connect_mongo(spec.mongodb)
        redis = connect_redis(spec.redis)
        try:
            done = apply_all(spec, mongo[spec.mongodb.database], redis, Options(), console.out)
            console.out(f"applied {len(done)} operation(s)" if done else "MongoDB and Redis match the spec")
        finally:
            mongo.close()
            redis.close()
        if not codegen.check(spec).clean:
            written = codegen.write(spec)
            console.out(f"generated {display_path(codegen.package_dir(spec))}: {', '.join(written)}")
        return spec

    # --- children ---------------------------------------------------------------------------------

    def start_children(self, spec: Spec) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        runtime, package = Runtime.from_spec(spec), spec.codegen.package
        for queue in spec.queues:
            self.children.append(
                Child(
                    f"worker {queue.name}",
                    worker_command(runtime, package, queue.name),
                    self.logs / f"worker-{queue.name}.log",
                )
            )
        self.children.append(Child("scheduler", scheduler_command(package), self.logs / "scheduler.log"))
        self.env = child_env(codegen.package_dir(spec))
        for child in self.children:
            self._spawn(child)
        self.record_processes()

    def _spawn(self, child: Child) -> None:
        with child.log_path.open("ab") as out:
            # Their own session: Ctrl-C reaches `up` only, which then stops them in order.
            child.process = subprocess.Popen(
                child.command,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def watch_children(self) -> None:
        """Restart a child that died on its own (at most 5 times a minute), and say so."""
        now = time.monotonic()
        for child in self.children:
            if child.gave_up or child.process is None or child.process.poll() is None:
                continue
            child.restarts = [t for t in child.restarts if now - t < 60]
            code = child.process.returncode
            if len(child.restarts) >= 5:
                log.error(
                    "%s keeps exiting (code %s); not restarting it. See %s",
                    child.name,
                    code,
                    display_path(child.log_path),
                )
                child.gave_up = True
                continue
            log.warning(
                "%s exited with code %s; restarting it (log: %s)", child.name, code, display_path(child.log_path)
            )
            child.restarts.append(now)
            self._spawn(child)
            self.record_processes()

    def stop_children(self, timeout: float) -> None:
        for child in self.children:
            if child.process is not None and child.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0fs; killing it", child.name, timeout)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
        console.out("workers and scheduler stopped")


def _port_free(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def summary(spec: Spec) -> str:
    from bootstrap.connect.redis import sync_client

    client = sync_client(spec.redis)
    try:
        stats = admin.queue_stats(client, spec)
    finally:
        client.close()
    parts = [f"{q.queue} {q.completed} done/{q.failed} failed/{q.waiting + q.delayed} waiting" for q in stats]
    return "jobs: " + ", ".join(parts)


class Interrupted(Exception):
    """Ctrl-C or SIGTERM before the stack was up: abandon the start-up (and clean up)."""


def run(config_dir: Path, embedded: bool) -> int:
    stack = Stack(config_dir, embedded)
    pidfile = PidFile(stack.state / "up.pid")
    pidfile.acquire()
    supervising = stop_requested = False

    def request_stop(signum: int, _frame: Any) -> None:
        nonlocal stop_requested
        stop_requested = True
        if not supervising:  # still starting (connect retries can take minutes): stop now
            raise Interrupted

    # SIGHUP too: a closed terminal must not leave workers, scheduler and servers running unseen.
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        stack.stop_leftovers()
        stack.start_servers()
        spec = stack.converge()
        stack.start_children(spec)
        console.out("")
        console.out(f"bootstrap up: {spec.project} is running (Ctrl-C to stop)")
        console.out(f"  MongoDB  {mask(spec.mongodb.uri)}")
        console.out(f"  Redis    {mask(spec.redis.url)}")
        console.out(f"  data     {display_path(stack.state)}")
        console.out(f"  logs     {display_path(stack.logs)}/ ({', '.join(c.log_path.name for c in stack.children)})")
        console.out(f"  wiring   {display_path(codegen.package_dir(spec))}")
        supervising = True
        last, next_summary = "", 0.0
        while not stop_requested:
            stack.watch_children()
            if time.monotonic() >= next_summary:
                next_summary = time.monotonic() + SUMMARY_EVERY
                with contextlib.suppress(Exception):
                    line = summary(spec)
                    if line != last:
                        console.out(line)
                        last = line
            time.sleep(0.2)
        console.out("stopping: workers finish their running jobs, queued jobs stay in Redis")
        stack.stop_children(max((q.shutdown_timeout for q in spec.queues), default=30.0) + 10)
        return 0
    except Interrupted:
        console.err("interrupted while starting; cleaning up")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        if any(c.process is not None and c.process.poll() is None for c in stack.children):
            stack.stop_children(10)
        if stack.servers:
            stack.stop_servers()
            console.out("local servers stopped")
        stack.forget_processes()
        pidfile.release()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
