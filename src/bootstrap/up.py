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
from bootstrap.apply import apply as apply_all
from bootstrap.codegen import write as codegen
from bootstrap.codegen.render import runtime_spec
from bootstrap.embedded import LocalServer, MongoServer, RedisServer, free_port
from bootstrap.errors import BootstrapError
from bootstrap.jobs import admin
from bootstrap.jobs.launcher import child_env, scheduler_command, worker_command
from bootstrap.jobs.redis_connect import connect as connect_redis
from bootstrap.mongo.connect import connect as connect_mongo
from bootstrap.mongo.converge import Options
from bootstrap.redact import mask
from bootstrap.spec.load import display_path, load_spec
from bootstrap.spec.model import Spec

log = logging.getLogger("bootstrap.up")

SUMMARY_EVERY = 10.0  # seconds between job summaries (printed only when something changed)


class AlreadyRunning(BootstrapError):
    pass


@dataclass
class Child:
    name: str
    command: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)


class PidFile:
    """`.bootstrap/up.pid`: a second `up` on the same project says so instead of starting twice."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            holder = json.loads(self.path.read_text())
        except (OSError, ValueError):
            holder = None
        if holder and _alive(int(holder.get("pid", 0))):
            raise AlreadyRunning(
                f"bootstrap up is already running for this project (pid {holder['pid']}, "
                f"started {holder.get('started', '?')}); stop it with Ctrl-C or `kill {holder['pid']}`"
            )
        self.path.write_text(json.dumps({"pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}))

    def release(self) -> None:
        with contextlib.suppress(OSError):
            if json.loads(self.path.read_text()).get("pid") == os.getpid():
                self.path.unlink()


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
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
        runtime, package = runtime_spec(spec), spec.codegen.package
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
            if child.process is None or child.process.poll() is None:
                continue
            child.restarts = [t for t in child.restarts if now - t < 60]
            code = child.process.returncode
            if len(child.restarts) >= 5:
                if child.process.returncode is not None and child.restarts[-1] != -1:
                    log.error(
                        "%s keeps exiting (code %s); not restarting it. See %s",
                        child.name,
                        code,
                        display_path(child.log_path),
                    )
                    child.restarts.append(-1)
                continue
            log.warning(
                "%s exited with code %s; restarting it (log: %s)", child.name, code, display_path(child.log_path)
            )
            child.restarts.append(now)
            self._spawn(child)

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
    from bootstrap.jobs.redis_connect import sync_client

    client = sync_client(spec.redis)
    try:
        stats = admin.queue_stats(client, spec)
    finally:
        client.close()
    parts = [f"{q.queue} {q.completed} done/{q.failed} failed/{q.waiting + q.delayed} waiting" for q in stats]
    return "jobs: " + ", ".join(parts)


def run(config_dir: Path, embedded: bool) -> int:
    stack = Stack(config_dir, embedded)
    pidfile = PidFile(stack.state / "up.pid")
    pidfile.acquire()
    stop_requested = False

    def request_stop(signum: int, _frame: Any) -> None:
        nonlocal stop_requested
        stop_requested = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
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
    finally:
        stack.stop_children(5) if stack.children and any(
            c.process and c.process.poll() is None for c in stack.children
        ) else None
        if stack.servers:
            stack.stop_servers()
            console.out("local servers stopped")
        pidfile.release()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
