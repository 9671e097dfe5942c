"""`bootstrap up`: the whole stack on one machine. Local MongoDB and Redis when no URI is configured
(data under .bootstrap/, kept across runs), then validate, apply (with apply's flags), generate if
stale, and run a worker per queue and the scheduler as child processes (`local.processes`: restarted
when they die, at most 5 times a minute, then reported and left stopped; gone with `up` even if it
is killed) until Ctrl-C or SIGTERM; then stop the children gracefully (running jobs finish, queued
ones stay in Redis), then the servers.

While it runs it tells the project's other commands its servers and its children's state
(`.bootstrap/up.json`, `local.upstate`), and follows the project (`Watch`): a saved config is
applied, and workers are restarted when the generated wiring on disk changes (the scheduler alone when
only the schedules did: the workers do not run those files).

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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from bootstrap import console
from bootstrap.codegen import write as codegen
from bootstrap.codegen.artifacts import package_wiring_hash
from bootstrap.connect.mongo import connect as connect_mongo
from bootstrap.connect.redis import connect as connect_redis
from bootstrap.engine.apply import apply as apply_all
from bootstrap.engine.ops import Options
from bootstrap.engine.render import applied_summary
from bootstrap.errors import AlreadyRunning, BootstrapError, ConfigError, ServerError
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
from bootstrap.local.upstate import (
    GAVE_UP,
    RESTARTING,
    RUNNING,
    ChildState,
    UpState,
    remove_state,
    state_path,
    write_state,
)
from bootstrap.redact import mask
from bootstrap.spec.checks import handler_problems
from bootstrap.spec.load import display_path, load_spec, skipped
from bootstrap.spec.model import Spec

if TYPE_CHECKING:
    from bootstrap.dashboard.serve import Background

log = logging.getLogger("bootstrap.local.up")

PRIVATE_UMASK = 0o077  # files 0600, folders 0700: for `up` and every process it starts
SUMMARY_EVERY = 10.0  # seconds between job summaries (printed only when something changed)
SERVER_RESTARTS, SERVER_WINDOW = 3, 60.0  # a local server that dies more often than this is given up on
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
    def __init__(self, config_dir: Path, embedded: bool, options: Options | None = None) -> None:
        self.config_dir = config_dir
        self.root = config_dir.resolve().parent
        self.state = self.root / ".bootstrap"
        self.logs = self.state / "logs"
        self.embedded = embedded
        self.options = options or Options()
        self.servers: list[LocalServer] = []
        self.supervisor = Supervisor()
        self.user_umask = 0o022  # the umask `up` was started with (set by run), for the generated package
        self.started = time.strftime("%Y-%m-%d %H:%M:%S")
        self.exported: dict[str, str] = {}  # URIs of the servers started here, as children get them
        self.wiring: str | None = None  # the wiring hash the running children were started with
        self.workers_wiring: str | None = None  # the same, of the files workers run (not the schedules)
        self.server_deaths: dict[str, list[float]] = {}  # server name -> when it exited lately

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
            self.exported["mongodb_uri"] = os.environ["MONGODB_URI"]
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
            self.exported["redis_url"] = os.environ["REDIS_URL"]
        self.record_processes()
        self.write_state()

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

    # --- what other commands of this project read (.bootstrap/up.json) ---------------------------

    @property
    def state_file(self) -> Path:
        return state_path(self.root)

    def write_state(self) -> None:
        """Tell the other commands of this project the servers' URIs and how the workers are doing."""
        write_state(
            self.state_file,
            UpState(
                pid=os.getpid(),
                started=self.started,
                mongodb_uri=self.exported.get("mongodb_uri"),
                redis_url=self.exported.get("redis_url"),
                children=tuple(self.child_state(child) for child in self.supervisor.children),
                wiring=self.wiring,
                restart_window=RESTARTS.window,
                max_restarts=RESTARTS.max_restarts,
            ),
        )

    def child_state(self, child: Child) -> ChildState:
        now = self.supervisor.clock()
        restarts = len([t for t in child.restarts if now - t < RESTARTS.window])
        state = GAVE_UP if child.gave_up else RESTARTING if restarts else RUNNING
        log_path = display_path(child.log_path) if child.log_path is not None else None
        return ChildState(child.name, child.pid, state, restarts, log_path, child.returncode)

    def forget_state(self) -> None:
        remove_state(self.state_file, os.getpid())

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

    def watch_servers(self) -> None:
        """A local server that exited under us (the OOM killer, a stray kill) is said and started
        again on its port and data (Redis replays its append-only file): workers and scheduler
        reconnect on their own. One that cannot start again, or dies more than SERVER_RESTARTS
        times in SERVER_WINDOW seconds, is given up on with its log's last lines, and `up` stops
        (nothing can run without it)."""
        for server in self.servers:
            child = server.child
            code = child.poll() if child is not None else None
            if code is None:
                continue
            now = time.monotonic()
            deaths = self.server_deaths.setdefault(server.name, [])
            deaths[:] = [t for t in deaths if now - t < SERVER_WINDOW] + [now]
            where = display_path(server.log_path)
            console.err(f"the local {server.name} (port {server.port}) exited with code {code}; see {where}")
            if len(deaths) > SERVER_RESTARTS:
                raise BootstrapError(
                    f"the local {server.name} exited {len(deaths)} times in {SERVER_WINDOW:g}s: given up. "
                    f"The end of its log:\n{child.log_tail(4) if child is not None else ''}"
                )
            server.child = None
            try:
                server.start()
            except ServerError as exc:
                raise BootstrapError(f"the local {server.name} could not start again: {exc}") from None
            console.err(f"the local {server.name} is running again on port {server.port}")
            self.record_processes()
            self.write_state()

    # --- the spec ---------------------------------------------------------------------------------

    def converge(self) -> Spec:
        spec = load_spec(self.config_dir)
        # What `validate` would say about the handlers, as a warning: the other queues still run.
        for queue, task, problem in handler_problems(spec):
            console.err(
                f"warning: queue {queue.name}, task {task.name}: handler {task.handler}: {problem} "
                "(this queue's worker cannot start)"
            )
        mongo = connect_mongo(spec.mongodb)
        redis = connect_redis(spec.redis)
        try:
            done = apply_all(spec, mongo[spec.mongodb.database], redis, self.options, console.out)
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
        env = child_env(codegen.package_dir(spec), spec.root)
        self.wiring, self.workers_wiring = running_wiring(spec)
        for queue in spec.queues:
            # Restarted by our supervisor, not inside taskiq: a worker that keeps dying (a handler
            # that does not import, say) is then seen, reported and, past 5 a minute, given up on.
            command = worker_command(runtime, package, queue.name, restart_inside=False)
            log_path = self.logs / f"worker-{queue.name}.log"
            self.supervisor.add(Child(f"worker {queue.name}", command, env=env, log_path=log_path, restart=RESTARTS))
        scheduler = Child("scheduler", scheduler_command(package), env=env, log_path=self.logs / "scheduler.log",
                          restart=RESTARTS)  # fmt: skip
        self.supervisor.add(scheduler)
        self.supervisor.start_all()
        self.record_processes()
        self.write_state()

    def note_exits(self, exits: list[Exit]) -> None:
        """After a look by the supervisor (which restarts a child that died on its own, at most 5
        times a minute, then logs an error naming its log): note the new process ids, and say
        plainly which worker was given up on, with the end of its log (the reason, usually)."""
        if any(exit.outcome is Outcome.RESTARTED for exit in exits):
            self.record_processes()
        for exit in exits:
            if exit.outcome is Outcome.GAVE_UP:
                console.err(
                    f"{exit.child.name} keeps crashing: stopped after {RESTARTS.max_restarts} restarts in "
                    f"{RESTARTS.window:g}s; {_what_stops(exit.child.name)}. The end of {exit.child.where()}:"
                )
                for line in exit.child.log_tail(4).splitlines():
                    console.err(f"    {line}")
        if exits or self._restarts_expired():
            self.write_state()

    def _restarts_expired(self) -> bool:
        """Whether a child shown as restarting has had no restart for a whole window (once)."""
        now = self.supervisor.clock()
        expired = False
        for child in self.supervisor.children:
            if child.restarts and not child.gave_up and all(now - t >= RESTARTS.window for t in child.restarts):
                child.restarts.clear()
                expired = True
        return expired

    def restart_children(self, spec: Spec, reason: str) -> None:
        """Stop every worker and the scheduler (running jobs finish), start them on `spec`'s wiring."""
        console.out(f"{reason}: restarting the workers and the scheduler")
        self.supervisor.stop_all(_stop_timeout(spec))
        self.supervisor = Supervisor()
        self.start_children(spec)
        console.out(f"workers and scheduler running on wiring {self.wiring}")

    def restart_scheduler(self, spec: Spec, reason: str) -> None:
        """Only the schedules changed (the workers run none of their files): stop the scheduler (a
        fire in progress finishes) and start it on the new wiring; the workers go on."""
        console.out(f"{reason}: restarting the scheduler (the workers' wiring is unchanged)")
        for child in self.supervisor.children:
            if child.name == "scheduler":
                child.stop(_stop_timeout(spec))
                child.gave_up, child.restarts = False, []  # a fresh start, as restart_children's
                child.start()
        self.wiring, self.workers_wiring = running_wiring(spec)
        self.record_processes()
        self.write_state()
        console.out(f"scheduler running on wiring {self.wiring}")

    def stop_children(self, timeout: float) -> None:
        self.supervisor.stop_all(timeout)
        console.out("workers and scheduler stopped")


def running_wiring(spec: Spec) -> tuple[str | None, str | None]:
    """The wiring hashes of the generated package on disk: all of it, and the files workers run."""
    package = codegen.package_dir(spec)
    return package_wiring_hash(package), package_wiring_hash(package, workers=True)


def _what_stops(name: str) -> str:
    if name.startswith("worker "):
        return f"queue {name.removeprefix('worker ')} is not being worked (its jobs wait in Redis)"
    return "no schedule fires until it runs again"


def _stop_timeout(spec: Spec) -> float:
    return max((q.shutdown_timeout for q in spec.queues), default=30.0) + 10


def config_fingerprint(config_dir: Path) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and modification times of the files in the config folder (and collections/):
    cheap enough to take every second, and it changes when an editor saves a file."""
    seen: list[tuple[str, int, int]] = []
    folders = [config_dir]
    while folders:
        folder = folders.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            seen.append((str(folder), -1, -1))
            continue
        for entry in entries:
            if skipped(entry.name):  # what the loader skips (editors' leftovers) is no change
                continue
            try:
                info = entry.stat()
                if entry.is_dir():
                    if folder == config_dir:
                        folders.append(Path(entry.path))
                    continue
            except OSError:
                seen.append((entry.path, -1, -1))
                continue
            seen.append((entry.path, info.st_size, info.st_mtime_ns))
    return tuple(sorted(seen))


class Watch:
    """`up` follows the project while it runs: a saved config file is validated and applied (and the
    wiring regenerated), and when the generated wiring on disk is not what the workers run (after
    that, or after a `bootstrap generate` in another shell) they are restarted on it."""

    EVERY = 1.0  # seconds between looks

    def __init__(self, stack: Stack, spec: Spec) -> None:
        self.stack = stack
        self.spec = spec
        self.seen = config_fingerprint(stack.config_dir)
        self.changed: tuple[tuple[str, int, int], ...] | None = None
        self.next = time.monotonic() + self.EVERY

    def look(self) -> Spec:
        """One look (at most every EVERY seconds); the spec the stack runs on afterwards."""
        if time.monotonic() < self.next:
            return self.spec
        self.next = time.monotonic() + self.EVERY
        fingerprint = config_fingerprint(self.stack.config_dir)
        if fingerprint != self.seen:
            if fingerprint != self.changed:
                # Act once the files stopped changing for a whole look (editors save in several
                # steps); until then the wiring on disk may be half-way too.
                self.changed = fingerprint
                return self.spec
            self.seen, self.changed = fingerprint, None
            self.reload()
        wiring, workers = running_wiring(self.spec)
        if wiring is not None and wiring != self.stack.wiring:
            reason = f"the generated wiring changed ({self.stack.wiring} -> {wiring})"
            if workers is not None and workers == self.stack.workers_wiring:
                self.stack.restart_scheduler(self.spec, reason)
            else:
                self.stack.restart_children(self.spec, reason)
            self.next = time.monotonic() + self.EVERY
        return self.spec

    def reload(self) -> None:
        console.out("config changed: validating and applying it")
        try:
            spec = self.stack.converge()
        except ConfigError as exc:
            for finding in exc.findings:
                console.err(str(finding))
            console.err(f"{len(exc.findings)} problem(s): the workers keep running as they were; fix and save again")
            return
        except Exception as exc:  # a refused or failed apply, a server away: up goes on as it was
            console.err(f"error: {exc}")
            console.err("the workers keep running as they were")
            return
        self.spec = spec


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


def start_dashboard(stack: Stack, spec: Callable[[], Spec]) -> Background | None:
    """The dashboard (`bootstrap.dashboard`) in a thread of `up`, on 127.0.0.1 at the port it had
    last time; its URL printed. A dashboard that cannot start is reported, and `up` runs on."""
    from bootstrap.dashboard.serve import Background  # aiohttp: only once the stack is up

    background = Background(spec, "127.0.0.1", stack._port("dashboard"))
    try:
        address = background.start()
    except Exception as exc:
        log.warning("the dashboard did not start: %s", exc)
        return None
    console.out(f"  dashboard {address.url(with_token=False)}")
    return background


class Interrupted(Exception):
    """Ctrl-C or SIGTERM before the stack was up: abandon the start-up (and clean up)."""


def run(config_dir: Path, embedded: bool, options: Options | None = None) -> int:
    with umask(PRIVATE_UMASK) as user_umask:
        stack = Stack(config_dir, embedded, options)
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
            console.out(f"  wiring   {display_path(codegen.package_dir(spec))} ({stack.wiring})")
            console.out(f"  watching {display_path(stack.config_dir)}/: saved changes are applied, workers restarted")
            reporter = Summary(spec)
            watch = Watch(stack, spec)
            dashboard = start_dashboard(stack, lambda: reporter.spec)
            while not stops.requested:
                # One look at a time: the supervisor is replaced when the workers restart on new wiring.
                stack.note_exits(stack.supervisor.watch())
                stack.watch_servers()
                spec = reporter.spec = watch.look()
                reporter.maybe_print()
                time.sleep(0.2)
            if dashboard is not None:
                dashboard.stop()
            console.out("stopping: workers finish their running jobs, queued jobs stay in Redis")
            stack.stop_children(_stop_timeout(spec))
            return 0
        except Interrupted:
            stops.raising = None
            console.err("interrupted while starting; cleaning up")
            return 130
        finally:
            stops.raising = None  # a second Ctrl-C must not cut the clean-up short
            stack.forget_state()  # first: no other command should pick servers that are stopping
            if stack.supervisor.running:
                stack.stop_children(10)
            if stack.servers:
                stack.stop_servers()
                console.out("local servers stopped")
            stack.forget_processes()
            pidfile.release()
