"""`bootstrap up`: the whole stack on one machine. Local MongoDB and Redis when no URI is configured
(data under .bootstrap/, kept across runs), then validate, apply, generate if stale, and run a worker
per queue and the scheduler as child processes (`local.processes`: restarted when they die, gone
with `up` even if it is killed) until Ctrl-C or SIGTERM; then stop the children
gracefully (running jobs finish, queued ones stay in Redis), then the servers.

`.bootstrap/` is private: the folder 0700, what `up` and its children write in it 0600 (`up` runs
with umask 077, which its children inherit; the generated package is still written with the umask
`up` was started with). The local servers require a password (`local.servers.Credentials`, kept in
`.bootstrap/credentials.json`), and the URIs `up` hands its children carry it; every URI printed or
logged is masked."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from bootstrap import console
from bootstrap.codegen import write as codegen
from bootstrap.connect.mongo import connect as connect_mongo
from bootstrap.connect.redis import connect as connect_redis
from bootstrap.engine.apply import apply as apply_all
from bootstrap.engine.ops import Options
from bootstrap.engine.render import applied_summary
from bootstrap.errors import AlreadyRunning
from bootstrap.files import write_atomic
from bootstrap.jobs import admin
from bootstrap.jobs.contract import Runtime
from bootstrap.jobs.launcher import child_env, scheduler_command, worker_command
from bootstrap.local.processes import (
    Child,
    Exit,
    Outcome,
    RestartPolicy,
    StopSignals,
    Supervisor,
    is_running,
    stop_groups,
)
from bootstrap.local.servers import Credentials, LocalServer, MongoServer, RedisServer, free_port
from bootstrap.redact import mask
from bootstrap.spec.load import display_path, load_spec
from bootstrap.spec.model import Spec

log = logging.getLogger("bootstrap.local.up")

PRIVATE_UMASK = 0o077  # files 0600, folders 0700: for `up` and every process it starts
SUMMARY_EVERY = 10.0  # seconds between job summaries (printed only when something changed)
RESTARTS = RestartPolicy(max_restarts=5, window=60.0)  # a worker or the scheduler that keeps dying


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
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            except FileExistsError:
                try:
                    holder = json.loads(self.path.read_text())
                except (OSError, ValueError):
                    holder = {}
                pid = int(holder.get("pid", 0))
                if is_running(pid, "bootstrap"):
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


def make_private(folder: Path) -> None:
    """`folder` (created if missing) and everything in it readable by its owner only: folders 0700,
    files without group or other bits. Left by an earlier version, they may have been readable by all."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    for parent, dirs, files in os.walk(folder):
        for name in dirs:
            path = Path(parent, name)
            if not path.is_symlink():
                path.chmod(0o700)
        for name in files:
            path = Path(parent, name)
            with contextlib.suppress(FileNotFoundError):  # a server may remove a file meanwhile
                mode = path.lstat().st_mode
                if not path.is_symlink() and mode & 0o077:
                    path.chmod(mode & 0o700)


@contextlib.contextmanager
def umask(mask: int) -> Iterator[int]:
    """Run with `mask` as the process umask (children started meanwhile inherit it); yields the one
    it replaces."""
    previous = os.umask(mask)
    try:
        yield previous
    finally:
        os.umask(previous)


class Stack:
    def __init__(self, config_dir: Path, embedded: bool) -> None:
        self.config_dir = config_dir
        self.root = config_dir.resolve().parent
        self.state = self.root / ".bootstrap"
        self.logs = self.state / "logs"
        self.embedded = embedded
        self.servers: list[LocalServer] = []
        self.supervisor = Supervisor()
        self.user_umask = 0o022  # the umask `up` was started with (set by run), for the generated package

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
        write_atomic(ports_file, json.dumps(ports))
        return port

    def start_servers(self) -> None:
        """Local servers for what is not configured (or for everything with --embedded)."""
        make_private(self.state)
        start_mongo = self.embedded or not os.environ.get("MONGODB_URI")
        start_redis = self.embedded or not (os.environ.get("REDIS_URL") or os.environ.get("REDIS_HOST"))
        credentials = Credentials.load_or_create(self.state) if start_mongo or start_redis else None
        if start_mongo:
            assert credentials is not None
            # The database the config names by default (its URI's path, or the declared one).
            without_uri = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
            database = load_spec(self.config_dir, env=without_uri).mongodb.database
            mongo = MongoServer(self.state / "mongo", self._port("mongodb"), credentials=credentials)
            console.out(
                f"starting a local MongoDB (SecantusDB) on port {mongo.port}, user {credentials.mongodb_user} "
                f"(password in {display_path(self.state / 'credentials.json')}), data in {display_path(mongo.data_dir)}"
            )
            mongo.start()
            self.servers.append(mongo)
            os.environ["MONGODB_URI"] = mongo.database_uri(database)
        if start_redis:
            assert credentials is not None
            redis_server = RedisServer(self.state / "redis", self._port("redis"), password=credentials.redis_password)
            console.out(
                f"starting a local Redis on port {redis_server.port} (password-protected, append-only file on, "
                f"noeviction), data in {display_path(redis_server.data_dir)}"
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
            {"name": server.name, "pid": server.pid, "marker": server.name}
            for server in self.servers
            if server.pid is not None
        ]
        entries += [
            {"name": child.name, "pid": child.pid, "marker": "taskiq"}
            for child in self.supervisor.children
            if child.pid is not None
        ]
        write_atomic(self._processes_file, json.dumps(entries))  # read by tests and the next up

    def forget_processes(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._processes_file.unlink()

    def stop_leftovers(self) -> None:
        """Children die with `up` (see local.processes); this catches any that did not, e.g. one
        still finishing a job when the next `up` starts."""
        try:
            entries = json.loads(self._processes_file.read_text())
        except (OSError, ValueError):
            return
        markers = {int(e.get("pid", 0)): str(e.get("marker", "")) for e in entries}
        alive = [pid for pid, marker in markers.items() if is_running(pid, marker)]
        for entry in entries:
            if int(entry.get("pid", 0)) in alive:
                log.warning(
                    "stopping %s (pid %s), left running by an earlier `bootstrap up` that was killed",
                    entry.get("name"),
                    entry["pid"],
                )
        stop_groups(alive, 15, lambda pid: is_running(pid, markers[pid]))
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
            console.out(applied_summary(done) if done else "MongoDB and Redis match the spec")
        finally:
            mongo.close()
            redis.close()
        if not codegen.check(spec).clean:
            with umask(self.user_umask):  # the project's own files: as `bootstrap generate` writes them
                written = codegen.write(spec)
            console.out(f"generated {display_path(codegen.package_dir(spec))}: {', '.join(written)}")
        return spec

    # --- children ---------------------------------------------------------------------------------

    def start_children(self, spec: Spec) -> None:
        """A worker per queue and the scheduler, each in its own session (Ctrl-C reaches `up` only,
        which then stops them in order), restarted when they die (at most 5 times a minute)."""
        runtime, package = Runtime.from_spec(spec), spec.codegen.package
        env = child_env(codegen.package_dir(spec))
        for queue in spec.queues:
            command = worker_command(runtime, package, queue.name)
            log_path = self.logs / f"worker-{queue.name}.log"
            self.supervisor.add(Child(f"worker {queue.name}", command, env=env, log_path=log_path, restart=RESTARTS))
        scheduler = Child("scheduler", scheduler_command(package), env=env, log_path=self.logs / "scheduler.log",
                          restart=RESTARTS)  # fmt: skip
        self.supervisor.add(scheduler)
        self.supervisor.start_all()
        self.record_processes()

    def note_exits(self, exits: list[Exit]) -> None:
        """After a look by the supervisor (which restarts a child that died on its own, at most 5
        times a minute, then logs an error naming its log): note the new process ids."""
        if any(exit.outcome is Outcome.RESTARTED for exit in exits):
            self.record_processes()

    def stop_children(self, timeout: float) -> None:
        self.supervisor.stop_all(timeout)
        console.out("workers and scheduler stopped")


def _port_free(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


class Summary:
    """The job counts, printed every SUMMARY_EVERY seconds when they changed."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.last = ""
        self.next = 0.0

    def maybe_print(self) -> None:
        if time.monotonic() < self.next:
            return
        self.next = time.monotonic() + SUMMARY_EVERY
        with contextlib.suppress(Exception):  # Redis briefly away: the next summary will tell
            line = summary(self.spec)
            if line != self.last:
                console.out(line)
                self.last = line


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
    with umask(PRIVATE_UMASK) as user_umask:
        stack = Stack(config_dir, embedded)
        stack.user_umask = user_umask
        return _run(stack)


def _run(stack: Stack) -> int:
    make_private(stack.state)
    pidfile = PidFile(stack.state / "up.pid")
    pidfile.acquire()
    # SIGHUP too: a closed terminal must not leave workers, scheduler and servers running unseen.
    # While starting (connect retries can take minutes) a stop request abandons the start-up at once.
    stops = StopSignals((signal.SIGINT, signal.SIGTERM, signal.SIGHUP), raising=Interrupted)
    with stops:
        try:
            stack.stop_leftovers()
            stack.start_servers()
            spec = stack.converge()
            stack.start_children(spec)
            stops.raising = None
            console.out("")
            console.out(f"bootstrap up: {spec.project} is running (Ctrl-C to stop)")
            console.out(f"  MongoDB  {mask(spec.mongodb.uri)}")
            console.out(f"  Redis    {mask(spec.redis.url)}")
            console.out(f"  data     {display_path(stack.state)}")
            logs = ", ".join(c.log_path.name for c in stack.supervisor.children if c.log_path is not None)
            console.out(f"  logs     {display_path(stack.logs)}/ ({logs})")
            console.out(f"  wiring   {display_path(codegen.package_dir(spec))}")
            reporter = Summary(spec)

            def tick(exits: list[Exit]) -> None:
                stack.note_exits(exits)
                reporter.maybe_print()

            stack.supervisor.run(lambda: stops.requested, tick=tick)
            console.out("stopping: workers finish their running jobs, queued jobs stay in Redis")
            stack.stop_children(max((q.shutdown_timeout for q in spec.queues), default=30.0) + 10)
            return 0
        except Interrupted:
            stops.raising = None
            console.err("interrupted while starting; cleaning up")
            return 130
        finally:
            stops.raising = None  # a second Ctrl-C must not cut the clean-up short
            if stack.supervisor.running:
                stack.stop_children(10)
            if stack.servers:
                stack.stop_servers()
                console.out("local servers stopped")
            stack.forget_processes()
            pidfile.release()
