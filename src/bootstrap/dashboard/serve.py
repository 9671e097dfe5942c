"""Serving the dashboard: in the foreground (`bootstrap dashboard`) or in a thread of its own
(`bootstrap up`, whose main loop supervises the workers). Opens its own MongoDB and Redis clients
(long-lived, the same settings as every other command) and closes them when it stops."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bootstrap.connect.mongo import connect as connect_mongo
from bootstrap.connect.redis import connect as connect_redis
from bootstrap.dashboard.app import Sources, make_app
from bootstrap.dashboard.auth import Guard, needs_token, new_token
from bootstrap.errors import BootstrapError
from bootstrap.spec.model import Spec


@dataclass(frozen=True)
class Address:
    host: str
    port: int
    token: str | None

    def url(self, *, with_token: bool) -> str:
        """The URL to open; with the token only where it is printed the one time."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = f"/?token={self.token}" if with_token and self.token else "/"
        return f"http://{host}:{self.port}{query}"


def guard_for(host: str) -> Guard:
    """No token on the loopback address; a generated one (or BOOTSTRAP_DASHBOARD_TOKEN) elsewhere."""
    return Guard(new_token() if needs_token(host) else None)


def open_sources(spec: Callable[[], Spec]) -> tuple[Sources, Callable[[], None]]:
    """Clients for the pages, and how to close them."""
    current = spec()
    client = connect_mongo(current.mongodb)
    try:
        redis_client = connect_redis(current.redis)
    except BaseException:
        client.close()
        raise
    sources = Sources(spec, client[current.mongodb.database], redis_client)

    def close() -> None:
        redis_client.close()
        client.close()

    return sources, close


async def start(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Listen on host:port (0: a free port); returns the runner and the port bound."""
    runner = web.AppRunner(app, access_log=None)  # the access log would show `?token=`: actions are logged instead
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:  # the port is taken, the address is not this machine's
        await runner.cleanup()
        raise BootstrapError(f"the dashboard cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    server: Any = site._server  # aiohttp keeps the listening sockets there; port 0 needs the real one
    bound = int(server.sockets[0].getsockname()[1]) if server and server.sockets else port
    return runner, bound


class Background:
    """The dashboard in a daemon thread with its own event loop (for `bootstrap up`)."""

    def __init__(self, spec: Callable[[], Spec], host: str = "127.0.0.1", port: int = 0) -> None:
        self.spec = spec
        self.host = host
        self.port = port
        self.guard = guard_for(host)
        self.address: Address | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._close: Callable[[], None] | None = None
        self._thread = threading.Thread(target=self._run, name="dashboard", daemon=True)

    def start(self, timeout: float = 60.0) -> Address:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the dashboard did not start in time")
        if self._error is not None:
            raise self._error
        assert self.address is not None
        return self.address

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            sources, self._close = open_sources(self.spec)
            self._runner, port = loop.run_until_complete(start(make_app(sources, self.guard), self.host, self.port))
            self.address = Address(self.host, port, self.guard.token)
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup())
        loop.close()
        if self._close is not None:
            self._close()

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
