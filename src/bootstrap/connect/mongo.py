"""A pymongo client from the spec's settings, connected with retry, its driver events logged."""

from __future__ import annotations

import logging
from typing import Any

from pymongo import AsyncMongoClient, MongoClient, ReadPreference, WriteConcern, monitoring
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import ConfigurationError, OperationFailure, PyMongoError
from pymongo.read_concern import ReadConcern

from bootstrap.connect import retry
from bootstrap.connect.retry import Target
from bootstrap.errors import BootstrapError, MongoUnavailable
from bootstrap.redact import mask
from bootstrap.spec.model import MongoSettings

log = logging.getLogger("bootstrap.mongo")

# How long a majority write may wait for the members to acknowledge it before failing (wtimeout):
# long enough for a healthy set under load, short enough that a set without a majority is reported.
MAJORITY_WAIT = 10.0


class DriverEvents(monitoring.ServerHeartbeatListener, monitoring.ConnectionPoolListener):
    """Logs what an operator needs to know about the connection, at warning level, without noise:
    a failing server is reported once, not at every heartbeat, and its recovery once.

    Not a ServerListener: with one registered, pymongo queues server events for a thread of its own,
    which `MongoClient.close()` joins; that thread sleeps in 0.5 s steps, so every close waited up
    to half a second (the bulk of a no-op `bootstrap apply`)."""

    def __init__(self) -> None:
        self.failing: set[str] = set()

    def started(self, event: Any) -> None:
        pass

    def succeeded(self, event: monitoring.ServerHeartbeatSucceededEvent) -> None:
        address = f"{event.connection_id[0]}:{event.connection_id[1]}"
        if address in self.failing:
            self.failing.discard(address)
            log.info("MongoDB server %s is reachable again", address)

    def failed(self, event: monitoring.ServerHeartbeatFailedEvent) -> None:
        if type(event.reply).__name__ == "_OperationCancelled":
            return  # the client is closing, not the server failing
        address = f"{event.connection_id[0]}:{event.connection_id[1]}"
        if address not in self.failing:
            self.failing.add(address)
            log.warning(
                "MongoDB server %s is unreachable: %s (the driver keeps retrying)",
                address,
                mask(str(event.reply)),
            )

    def pool_cleared(self, event: monitoring.PoolClearedEvent) -> None:
        log.warning("MongoDB connection pool for %s:%s cleared", *event.address)

    # The remaining pool events are not worth a line.
    def pool_created(self, event: Any) -> None:
        pass

    def pool_ready(self, event: Any) -> None:
        pass

    def pool_closed(self, event: Any) -> None:
        pass

    def connection_created(self, event: Any) -> None:
        pass

    def connection_ready(self, event: Any) -> None:
        pass

    def connection_closed(self, event: Any) -> None:
        pass

    def connection_check_out_started(self, event: Any) -> None:
        pass

    def connection_check_out_failed(self, event: Any) -> None:
        pass

    def connection_checked_out(self, event: Any) -> None:
        pass

    def connection_checked_in(self, event: Any) -> None:
        pass


def client_options(
    settings: MongoSettings, listeners: list[Any] | None = None, *, short_lived: bool = False
) -> dict[str, Any]:
    """pymongo client options from `settings`, for the sync and the async client alike.

    `short_lived`: for a command that connects, does its work and exits (plan, apply, status). It
    must not leave connections for pymongo's background threads to close after `close()` returns:
    those threads sleep in 0.5 s steps, so the process would wait for them or end with the sockets
    still open. So minPoolSize 0 (no thread is opening spare connections while we close; the pool
    grows on demand), and polling server monitoring: its connection is idle between checks, so
    `close()` itself closes it, where the default streaming monitor blocks on its socket until it
    notices the cancellation, up to 0.5 s later, and needs a second thread and connection to measure
    round trips.
    """
    options: dict[str, Any] = {
        "maxPoolSize": settings.pool_max,
        "minPoolSize": 0 if short_lived else settings.pool_min,
        "serverSelectionTimeoutMS": int(settings.server_selection_timeout * 1000),
        "connectTimeoutMS": int(settings.connect_timeout * 1000),
        "appname": settings.app_name,
        "event_listeners": [DriverEvents(), *(listeners or [])],
        "tz_aware": True,
    }
    if short_lived:
        options["serverMonitoringMode"] = "poll"
    if settings.socket_timeout is not None:
        options["socketTimeoutMS"] = int(settings.socket_timeout * 1000)
    # pymongo has no address-family option. For "localhost" we pin 127.0.0.1 so that an IPv6 (::1)
    # resolution cannot stall connections; other hosts resolve as the OS says.
    uri = settings.uri.replace("://localhost", "://127.0.0.1") if settings.ipv4_only else settings.uri
    options["host"] = uri
    return options


def on_primary(db: Database[Any]) -> Database[Any]:
    """`db` reading from the primary whatever the URI's readPreference says: a plan must compare
    the spec with the state the next write will meet, not a lagging secondary's."""
    return db.client.get_database(db.name, codec_options=db.codec_options, read_preference=ReadPreference.PRIMARY)


def majority(db: Database[Any], name: str) -> Collection[Any]:
    """A collection of the tool's own records (lock, apply history), written with w: "majority"
    and read with majority read concern on the primary: after a failover the new primary holds
    every lease and record that was acknowledged, and no read sees a write that may be rolled back."""
    return db.get_collection(
        name,
        read_preference=ReadPreference.PRIMARY,
        write_concern=WriteConcern("majority", wtimeout=int(MAJORITY_WAIT * 1000)),
        read_concern=ReadConcern("majority"),
    )


def make_client(
    settings: MongoSettings,
    listeners: list[Any] | None = None,
    *,
    short_lived: bool = False,
    retry_reads: bool | None = None,
) -> MongoClient[dict[str, Any]]:
    """A client configured from `settings` (no I/O yet: pymongo connects lazily); `retry_reads`
    False: a read that lost its connection fails at once instead of being sent again (None: as the
    URI says; a keyword would override it)."""
    options = client_options(settings, listeners, short_lived=short_lived)
    if retry_reads is not None:
        options["retryReads"] = retry_reads
    try:
        return MongoClient(**options)
    except ConfigurationError as exc:
        raise BootstrapError(f"invalid MongoDB settings: {mask(str(exc))}") from None


def make_async_client(settings: MongoSettings) -> AsyncMongoClient[dict[str, Any]]:
    """The async client job handlers use (one per worker process); no I/O yet."""
    try:
        return AsyncMongoClient(**client_options(settings))
    except ConfigurationError as exc:
        raise BootstrapError(f"invalid MongoDB settings: {mask(str(exc))}") from None


def refused(exc: BaseException) -> bool:
    """MongoDB answered and refused the credentials."""
    return isinstance(exc, OperationFailure) and exc.code in (18, 13, 8000)  # auth failed, unauthorized, Atlas auth


def transient(exc: BaseException) -> bool:
    """Worth another attempt: the server is unreachable, not refusing us (bad auth stays bad)."""
    if isinstance(exc, OperationFailure):
        return not refused(exc)
    return isinstance(exc, PyMongoError)


def reason(exc: BaseException) -> str:
    """An error as one short masked line (pymongo appends a long topology dump)."""
    text = str(exc).split(", Timeout:")[0]
    return mask(text.split(", full error")[0])


def target(settings: MongoSettings) -> Target:
    return Target("MongoDB", settings.uri, settings.connect_retry, transient, reason, log)


def _connected(settings: MongoSettings, info: dict[str, Any], topology: str) -> None:
    log.info(
        "connected to MongoDB %s at %s (%s, database %s)",
        info.get("version", "?"),
        mask(settings.uri),
        topology,
        settings.database,
    )


def connect(
    settings: MongoSettings, listeners: list[Any] | None = None, *, short_lived: bool = False
) -> MongoClient[dict[str, Any]]:
    """A client whose server answered `ping`, after retrying per `settings.connect_retry`; one log
    line per failed attempt, one on success (server version and topology)."""
    client = make_client(settings, listeners, short_lived=short_lived)
    try:
        retry.call(target(settings), lambda: client.admin.command("ping"))
    except PyMongoError as exc:
        client.close()
        raise MongoUnavailable(retry.gave_up(target(settings), exc), refused=refused(exc)) from None
    _connected(settings, client.admin.command("buildInfo"), client.topology_description.topology_type_name)
    return client


async def connect_async(settings: MongoSettings) -> AsyncMongoClient[dict[str, Any]]:
    """The same with the async client."""
    client = make_async_client(settings)
    try:
        await retry.call_async(target(settings), lambda: client.admin.command("ping"))
    except PyMongoError as exc:
        await client.close()
        raise MongoUnavailable(retry.gave_up(target(settings), exc), refused=refused(exc)) from None
    info = await client.admin.command("buildInfo")
    _connected(settings, info, client.topology_description.topology_type_name)
    return client
