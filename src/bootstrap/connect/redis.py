"""Redis clients from the spec's settings, sync (CLI) and async (workers, scheduler), and connecting
with retry: PING must answer PONG. Producers fail fast (socket timeout); a worker's blocking-read
connection has none, since a blocking read may wait for a long time.

One factory for every `redis.mode`: `standalone` (the URL's server), `cluster` (the URL names one
node; the client discovers the rest and routes each command by its keys' slot) and `sentinel` (the
master named `sentinel_master`, found through the sentinels `sentinel_hosts`; the URL gives the
password and database). Cluster clients are typed as `redis.Redis` here: they answer the same
commands, and every multi-key command the tool sends stays within one slot (see layout.keys)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar, cast

import redis
import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster
import redis.asyncio.sentinel as aiosentinel
import redis.cluster
import redis.sentinel
from redis.backoff import NoBackoff
from redis.connection import parse_url
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from bootstrap.connect import retry
from bootstrap.connect.retry import Target
from bootstrap.errors import RedisUnavailable
from bootstrap.redact import mask
from bootstrap.spec.model import ConnectRetry

log = logging.getLogger("bootstrap.redis")

UNKNOWN_POLICY = "unknown"
MAX_CONNECTIONS = 100  # per async client (redis-py's default), waited for when all are in use
STANDALONE, CLUSTER, SENTINEL = "standalone", "cluster", "sentinel"

# redis-py leaves these untyped: typed as Any once here, not at every call.
_parse_url: Any = parse_url
_Sentinel: Any = redis.sentinel.Sentinel
_AsyncSentinel: Any = aiosentinel.Sentinel


class RedisTarget(Protocol):
    """What a Redis client is made from: the spec's RedisSettings, or a worker's resolved runtime."""

    @property
    def url(self) -> str: ...
    @property
    def connect_timeout(self) -> float: ...
    @property
    def socket_timeout(self) -> float: ...
    @property
    def connect_retry(self) -> ConnectRetry: ...
    @property
    def mode(self) -> str: ...
    @property
    def sentinel_master(self) -> str: ...
    @property
    def sentinel_hosts(self) -> str: ...


def _options(settings: RedisTarget, *, blocking: bool, resend: bool = True, once: bool = False) -> dict[str, Any]:
    """`resend`: a command whose reply timed out is sent again (the CLI's reads); not for the
    clients that send jobs, where the first one may have run (a job would go in twice). `once`:
    each command is tried once (redis-py otherwise tries 3 more times on a timeout or a lost
    connection: `health` against a hung Redis took 4x its --timeout)."""
    options: dict[str, Any] = {
        "socket_connect_timeout": settings.connect_timeout,
        # Workers block on XREADGROUP: no socket timeout, or a long wait would look like a failure.
        "socket_timeout": None if blocking else settings.socket_timeout,
        "health_check_interval": 30,
        "socket_keepalive": True,
    }
    if settings.mode != CLUSTER:  # the async cluster client rejects it (it retries on its own)
        options["retry_on_timeout"] = resend and not blocking and not once
    if once:  # a cluster client's own retries (and re-initialisations) too
        options["retry"] = Retry(NoBackoff(), 0)
    return options


def sentinel_addresses(hosts: str) -> list[tuple[str, int]]:
    """`host:port,host:port` (spaces allowed; port 26379 where none is given) as (host, port) pairs."""
    pairs = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":") if ":" in item else (item.strip(), ":", "26379")
        if host:
            pairs.append((host.strip("[]"), int(port)))
    return pairs


def _sentinel_kwargs(
    settings: RedisTarget, *, blocking: bool, resend: bool = True, once: bool = False
) -> dict[str, Any]:
    """What the master's connections need: the URL's credentials and database, and our options."""
    url: dict[str, Any] = _parse_url(settings.url)
    kwargs: dict[str, Any] = {key: url[key] for key in ("username", "password", "db") if key in url}
    if url.get("connection_class") is not None and "SSL" in url["connection_class"].__name__:
        kwargs["ssl"] = True
    return {**kwargs, **_options(settings, blocking=blocking, resend=resend, once=once)}


def _sentinel_options(settings: RedisTarget) -> dict[str, Any]:
    """How the sentinels themselves are reached: the same timeouts, and the URL's credentials
    (sentinels commonly share the data nodes' password)."""
    url: dict[str, Any] = _parse_url(settings.url)
    return {
        "socket_connect_timeout": settings.connect_timeout,
        "socket_timeout": settings.socket_timeout,
        **{key: url[key] for key in ("username", "password") if url.get(key)},
    }


def sync_client(settings: RedisTarget, *, once: bool = False) -> redis.Redis:
    """A client (no I/O yet) for the CLI: fails fast; `once`: see `_options`."""
    options = _options(settings, blocking=False, once=once)
    if settings.mode == CLUSTER:
        return cast(redis.Redis, redis.cluster.RedisCluster.from_url(settings.url, **options))
    if settings.mode == SENTINEL:
        sentinel = _Sentinel(
            sentinel_addresses(settings.sentinel_hosts), sentinel_kwargs=_sentinel_options(settings)
        )
        master = sentinel.master_for(settings.sentinel_master, **_sentinel_kwargs(settings, blocking=False, once=once))
        return cast(redis.Redis, master)
    return redis.Redis.from_url(settings.url, **options)


class _WaitingSentinelPool(aiosentinel.SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """The master's connections, found through the sentinels, and waited for when all are in use."""


_T = TypeVar("_T")
_HOLDING = contextvars.ContextVar("bootstrap_cluster_slot", default=False)  # this task holds a slot


class _WaitingCluster(aiocluster.RedisCluster):
    """A cluster client whose commands and pipelines wait for one of `max_connections` slots: redis-py's
    async cluster client has no blocking pool, and refuses the 101st concurrent command on a node
    (MaxConnectionsError). A slot is counted for the whole client, so no node is ever asked for more
    connections than that. A pipeline that retries a redirected command through `execute_command`
    already holds its slot (`_HOLDING`), so it does not wait for a second one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slots = asyncio.Semaphore(kwargs.get("max_connections", MAX_CONNECTIONS))

    async def in_slot(self, call: Callable[[], Awaitable[_T]]) -> _T:
        if _HOLDING.get():
            return await call()
        async with self._slots:
            token = _HOLDING.set(True)
            try:
                return await call()
            finally:
                _HOLDING.reset(token)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        return await self.in_slot(lambda: super(_WaitingCluster, self).execute_command(*args, **kwargs))

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> aiocluster.ClusterPipeline:
        if shard_hint:
            return super().pipeline(transaction, shard_hint)  # redis-py's error
        return _WaitingClusterPipeline(self, transaction)  # type: ignore[abstract]  # as redis-py makes its own


class _WaitingClusterPipeline(aiocluster.ClusterPipeline):
    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> list[Any]:
        client = cast(_WaitingCluster, self.cluster_client)
        run = super().execute
        return await client.in_slot(lambda: run(raise_on_error, allow_redirections))


def _waiting(settings: RedisTarget) -> dict[str, Any]:
    """A pool that makes a command wait for a free connection rather than fail at once: redis-py's
    default refuses the 101st concurrent command (MaxConnectionsError), so a burst of sends or result
    waits in one process (a web app) lost jobs. Waits up to a connect and a command's time."""
    return {"max_connections": MAX_CONNECTIONS, "timeout": settings.connect_timeout + settings.socket_timeout}


def async_client(settings: RedisTarget, *, blocking: bool = False, resend: bool = True) -> aioredis.Redis:
    """An async client (no I/O yet); `blocking` for a worker's read connection; `resend=False` for
    the one that sends jobs (see `_options`)."""
    options = _options(settings, blocking=blocking, resend=resend)
    if settings.mode == CLUSTER:
        return cast(aioredis.Redis, _WaitingCluster.from_url(settings.url, **options))
    if settings.mode == SENTINEL:
        sentinel = _AsyncSentinel(
            sentinel_addresses(settings.sentinel_hosts), sentinel_kwargs=_sentinel_options(settings)
        )
        master = sentinel.master_for(
            settings.sentinel_master,
            connection_pool_class=_WaitingSentinelPool,
            **_sentinel_kwargs(settings, blocking=blocking, resend=resend),
            **_waiting(settings),
        )
        return cast(aioredis.Redis, master)
    pool = aioredis.BlockingConnectionPool.from_url(settings.url, **options, **_waiting(settings))
    return aioredis.Redis.from_pool(pool)


def is_cluster(client: Any) -> bool:
    """A Redis Cluster client (sync or async)."""
    return isinstance(client, redis.cluster.RedisCluster | aiocluster.RedisCluster)


def refused(exc: BaseException) -> bool:
    """Redis answered and refused the credentials."""
    return isinstance(exc, redis.AuthenticationError | redis.exceptions.AuthorizationError)


def transient(exc: BaseException) -> bool:
    """Worth another attempt: unreachable or timed out, not refused (bad password stays bad)."""
    if refused(exc):
        return False
    return isinstance(exc, redis.ConnectionError | redis.TimeoutError | OSError)


def reason(exc: BaseException) -> str:
    return mask(str(exc))


def shown(settings: RedisTarget) -> str:
    """Which Redis, as said to the user: the URL, masked; in sentinel mode the master the sentinels
    are asked for (the URL's host is not used there) and the URL's database."""
    if settings.mode != "sentinel" or not settings.sentinel_master:
        return mask(settings.url)
    try:
        database = parse_url(settings.url).get("db", 0)  # type: ignore[no-untyped-call]
    except ValueError:  # reported by validate
        database = 0
    return f"master {settings.sentinel_master} of sentinels {settings.sentinel_hosts} (database {database})"


def target(settings: RedisTarget) -> Target:
    return Target("Redis", shown(settings), settings.connect_retry, transient, reason, log)


def _checked(settings: RedisTarget, pong: Any) -> None:
    if pong is not True:
        raise RedisUnavailable(f"Redis {shown(settings)} answered PING with {pong!r} instead of PONG")


def connect(settings: RedisTarget, *, once: bool = False) -> redis.Redis:
    """A client whose server answered PING with PONG, after retrying per `settings.connect_retry`;
    `once`: each of its commands is tried once (see `_options`)."""
    client: redis.Redis | None = None
    try:
        # A cluster client connects in its constructor: a startup node that does not answer raises
        # RedisClusterException (no RedisError) from here.
        client = sync_client(settings, once=once)
        pong = retry.call(target(settings), client.ping)
        _checked(settings, pong)
    except (redis.RedisError, RedisClusterException, RedisUnavailable) as exc:
        if client is not None:
            client.close()
        if isinstance(exc, RedisUnavailable):
            raise
        raise RedisUnavailable(retry.gave_up(target(settings), exc), refused=refused(exc)) from None
    info = client.info("server")
    log.info("connected to Redis %s at %s (PING -> PONG)", info.get("redis_version", "?"), shown(settings))
    return client


async def connect_async(settings: RedisTarget, client: aioredis.Redis | None = None) -> aioredis.Redis:
    """The same for an async client (made here, or the one given); the caller logs success."""
    client = client if client is not None else async_client(settings)
    try:
        pong = await retry.call_async(target(settings), client.ping)
        _checked(settings, pong)
    except (redis.RedisError, RedisUnavailable) as exc:
        await client.aclose()
        if isinstance(exc, RedisUnavailable):
            raise
        raise RedisUnavailable(retry.gave_up(target(settings), exc), refused=refused(exc)) from None
    return client


def _policy_text(config: Any) -> str:
    value = config.get("maxmemory-policy", config.get(b"maxmemory-policy", UNKNOWN_POLICY))
    return str(value.decode() if isinstance(value, bytes) else value)


def eviction_policy(client: redis.Redis, node: Any = None) -> str:
    """The server's maxmemory-policy (of one node of a cluster), or "unknown" where CONFIG is not
    allowed (managed Redis services and restricted ACL users disable it)."""
    try:
        if node is not None:
            return _policy_text(client.config_get("maxmemory-policy", target_nodes=node))
        return _policy_text(client.config_get("maxmemory-policy"))
    except redis.ResponseError:
        return UNKNOWN_POLICY


def primaries(client: redis.Redis) -> dict[str, Any]:
    """The primaries of a cluster, by "host:port" (their order is stable: sorted)."""
    cluster: Any = client
    nodes = cluster.get_primaries()
    return {node.name: node for node in sorted(nodes, key=lambda n: n.name)}


def eviction_policies(client: redis.Redis) -> dict[str, str]:
    """maxmemory-policy where it is set: {"server": ...}, or each primary of a cluster by "host:port"
    (a setting of each node: one wrong node evicts that node's queues)."""
    if not is_cluster(client):
        return {"server": eviction_policy(client)}
    return {name: eviction_policy(client, node) for name, node in primaries(client).items()}


async def eviction_policy_async(client: aioredis.Redis) -> str:
    """The same for an async client; on a cluster, the first policy that is not noeviction found on a
    primary (else noeviction, or unknown)."""
    try:
        if not is_cluster(client):
            return _policy_text(await client.config_get("maxmemory-policy"))
        cluster = cast(aiocluster.RedisCluster, client)
        found = {_policy_text(await cluster.config_get("maxmemory-policy", target_nodes=node))
                 for node in cluster.get_primaries()}  # fmt: skip
    except redis.ResponseError:
        return UNKNOWN_POLICY
    wrong = sorted(found - {"noeviction"})
    return wrong[0] if wrong else "noeviction"


def memory_full(client: redis.Redis) -> str | None:
    """Why Redis refuses writes for memory (used memory at `maxmemory`, with nothing it may evict),
    of the server or of any primary of a cluster; None when it does not, or cannot tell (an ACL
    without INFO)."""
    try:
        if is_cluster(client):
            nodes = client.info("memory", target_nodes=redis.cluster.RedisCluster.PRIMARIES)
            infos = list(nodes.values()) if isinstance(nodes, dict) else []
        else:
            infos = [client.info("memory")]
    except (redis.RedisError, OSError):
        return None
    for info in infos:
        if not isinstance(info, dict):
            continue
        limit, used = int(info.get("maxmemory", 0) or 0), int(info.get("used_memory", 0) or 0)
        counted = used - int(info.get("mem_not_counted_for_evict", 0) or 0)
        if limit and counted >= limit and str(info.get("maxmemory_policy", "noeviction")) == "noeviction":
            return (f"used memory {info.get('used_memory_human', used)} of maxmemory "
                    f"{info.get('maxmemory_human', limit)} (noeviction)")
    return None
