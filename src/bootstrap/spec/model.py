"""The validated spec: immutable, typed, with every default filled in. Nothing downstream reads YAML.

Each object keeps an `origin` (file and path in it) so later steps can point back at the declaration;
origins never take part in comparisons.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

from bootstrap.spec.yamlload import PathKey


class FieldType(StrEnum):
    STRING = "string"
    NUMBER = "number"
    INT = "int"
    LONG = "long"
    DOUBLE = "double"
    DECIMAL = "decimal"
    BOOL = "bool"
    DATE = "date"
    OBJECT_ID = "objectId"
    OBJECT = "object"
    ARRAY = "array"
    MAP = "map"
    ANY = "any"

    @property
    def numeric(self) -> bool:
        return self in (FieldType.NUMBER, FieldType.INT, FieldType.LONG, FieldType.DOUBLE, FieldType.DECIMAL)


@dataclass(frozen=True)
class Origin:
    """Where a declaration is: the file (as shown to users) and the path inside it."""

    file: str
    path: PathKey


NO_ORIGIN = Origin("", ())


def freeze(value: Any) -> Any:
    """Deep read-only copy of JSON-like data (dicts become mapping proxies, lists tuples)."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Plain dicts and lists again, for drivers and JSON."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    backoff: str = "exponential"  # or "fixed"
    delay: float = 1.0
    max_delay: float = 300.0
    jitter: bool = False

    def delay_before(self, retry: int) -> float:
        """Seconds before retry number `retry` (1 = first retry), without jitter."""
        factor = 2 ** (retry - 1) if self.backoff == "exponential" else 1
        return float(min(self.delay * factor, self.max_delay))


@dataclass(frozen=True)
class ConnectRetry:
    """How connecting at start-up is retried: after the first attempt fails, up to `retries` more.
    The defaults are the seed's: 10 retries, 1 s doubling to at most 30 s, with jitter."""

    retries: int = 10
    backoff: str = "exponential"  # or "fixed"
    delay: float = 1.0
    max_delay: float = 30.0
    jitter: bool = True

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConnectRetry:
        """The inverse of to_json, strict about types."""
        return cls(
            retries=int(data["retries"]),
            backoff=str(data["backoff"]),
            delay=float(data["delay"]),
            max_delay=float(data["max_delay"]),
            jitter=bool(data["jitter"]),
        )

    @property
    def attempts(self) -> int:
        """Tries in all, the first included."""
        return self.retries + 1

    def wait(self, retry: int, draw: Callable[[float, float], float] = random.uniform) -> float:
        """Seconds before retry number `retry` (1 = first): delay, 2 x delay, 4 x delay ... (or delay
        each time), capped at max_delay; with jitter, drawn between half that and that, so a wait is
        never longer than max_delay."""
        factor = 2.0 ** min(retry - 1, 64) if self.backoff == "exponential" else 1.0
        nominal = min(self.delay * factor, self.max_delay)
        return draw(nominal / 2, nominal) if self.jitter else nominal


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    required: bool = False
    nullable: bool = True
    has_default: bool = False
    default: Any = None
    enum: tuple[Any, ...] | None = None
    ref: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    fields: tuple[Field, ...] = ()
    additional_fields: bool = True
    items: Field | None = None
    min_items: int | None = None
    max_items: int | None = None
    unique_items: bool = False
    values: Field | None = None
    description: str | None = None
    origin: Origin = field(default=NO_ORIGIN, compare=False, repr=False)


@dataclass(frozen=True)
class Index:
    keys: tuple[tuple[str, int | str], ...]
    name: str
    unique: bool = False
    sparse: bool = False
    ttl: int | None = None  # expireAfterSeconds
    partial: Mapping[str, Any] | None = None
    hidden: bool = False
    collation: Mapping[str, Any] | None = None
    origin: Origin = field(default=NO_ORIGIN, compare=False, repr=False)


@dataclass(frozen=True)
class ShardKey:
    """How a collection is sharded on a sharded cluster (shardCollection): its key, whether the key
    is unique, and how an empty collection is split up front."""

    keys: tuple[tuple[str, int | str], ...]  # each 1 (ranged) or "hashed"
    unique: bool = False
    chunks: int | None = None  # numInitialChunks: hashed keys
    split_at: tuple[Mapping[str, Any], ...] = ()  # split points (`split` with `middle`): ranged keys
    origin: Origin = field(default=NO_ORIGIN, compare=False, repr=False)

    @property
    def hashed(self) -> bool:
        return any(direction == "hashed" for _, direction in self.keys)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.keys)


@dataclass(frozen=True)
class Collection:
    name: str
    model: str | None
    fields: tuple[Field, ...]
    indexes: tuple[Index, ...] = ()
    timestamps: bool = False
    validation_level: str = "strict"
    validation_action: str = "error"
    additional_fields: bool = True
    description: str | None = None
    shard: ShardKey | None = None  # None: not sharded
    origin: Origin = field(default=NO_ORIGIN, compare=False, repr=False)


@dataclass(frozen=True)
class RetentionRule:
    max_age: float  # seconds
    max_count: int


@dataclass(frozen=True)
class Task:
    name: str
    queue: str
    handler: str | None = None  # "module:function"; None: the logging handler
    timeout: float | None = None
    retry: RetryPolicy | None = None
    description: str | None = None
    origin: Origin = field(default=NO_ORIGIN, compare=False, repr=False)
    priority: str = "normal"  # high, normal or low: its jobs' level unless an enqueue says otherwise


@dataclass(frozen=True)
class RateLimit:
    """At most `max` jobs taken per `per` seconds, by all workers of a queue together."""

    max: int
    per: float


@dataclass(frozen=True)
class MiddlewareRef:
    """A user's taskiq middleware: `path` ("module:attribute", a class or an instance) and keyword
    arguments for the class; `where` names its place in the YAML for error messages."""

    path: str
    kwargs: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    where: str = ""
    origin: Origin = field(default=NO_ORIGIN, compare=False, repr=False)


@dataclass(frozen=True)
class Queue:
    name: str
    tasks: tuple[Task, ...]
    completed: RetentionRule = RetentionRule(3600.0, 1000)
    failed: RetentionRule = RetentionRule(7 * 86400.0, 10000)
    visibility_timeout: float = 300.0
    concurrency: int = 10
    shutdown_timeout: float = 30.0
    max_deliveries: int = 3  # deliveries without finishing before a job goes to the failed store
    rate_limit: RateLimit | None = None  # None: no limit
    middlewares: tuple[MiddlewareRef, ...] = ()  # the user's taskiq middlewares, in order
    description: str | None = None
    origin: Origin = field(default=NO_ORIGIN, compare=False, repr=False)
    result_max_bytes: int = 65536  # `results.max_bytes`: a larger return value (as JSON) is not kept


@dataclass(frozen=True)
class Schedule:
    id: str
    queue: str
    task: str
    cron: str | None = None
    every: float | None = None
    kwargs: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    retry: RetryPolicy = RetryPolicy()
    misfire: str = "skip"  # or "run_once"
    timezone: str = "UTC"
    enabled: bool = True
    align: bool = False  # `every` slots on multiples of the interval since the epoch; else from the first fire
    description: str | None = None
    origin: Origin = field(default=NO_ORIGIN, compare=False, repr=False)
    priority: str | None = None  # high, normal or low: the level of the jobs it fires; None: the task's


@dataclass(frozen=True)
class MongoSettings:
    uri: str  # may hold credentials: never print it unmasked
    database: str
    uri_template: str = ""  # as written, before ${...} interpolation (for generated code)
    database_declared: str | None = None  # None: the database named in the URI at run time
    app_name: str = "bootstrap"
    pool_max: int = 100
    pool_min: int = 0
    server_selection_timeout: float = 30.0
    socket_timeout: float | None = None
    connect_timeout: float = 20.0
    ipv4_only: bool = False
    connect_retry: ConnectRetry = ConnectRetry()
    # When a replica set commits an index build (createIndexes' commitQuorum): MongoDB's own default,
    # every data-bearing voting member; or "majority", or a number of members.
    commit_quorum: str | int = "votingMembers"


@dataclass(frozen=True)
class RedisSettings:
    url: str  # may hold credentials: never print it unmasked
    key_prefix: str
    url_template: str = ""  # as written, before ${...} interpolation (for generated code)
    maxmemory_policy: str = "noeviction"
    connect_timeout: float = 5.0
    socket_timeout: float = 5.0
    connect_retry: ConnectRetry = ConnectRetry()
    mode: str = "standalone"  # standalone | cluster | sentinel (connect/redis.py)
    sentinel_master: str = ""  # sentinel mode: the master's name the sentinels monitor
    sentinel_hosts: str = ""  # sentinel mode: "host:port,host:port" (after interpolation)
    sentinel_hosts_template: str = ""  # as written (for generated code)
    wait_replicas: int = 0  # enqueues wait until this many replicas have them (WAIT); 0: no wait
    wait_timeout: float = 0.0  # seconds an enqueue waits for them at most


@dataclass(frozen=True)
class Codegen:
    package: str
    output: Path  # absolute, symlinks resolved (unless they loop: validation reports that)
    allow_outside_project: bool = False  # output may lie outside the folder holding config/


@dataclass(frozen=True)
class Metrics:
    """Where workers and the scheduler serve Prometheus metrics (see `bootstrap.jobs.metrics`)."""

    port: int = 0  # the scheduler's; the worker of the n-th queue: port + 1 + n; 0: no metrics


@dataclass(frozen=True)
class Spec:
    project: str
    root: Path = field(compare=False)  # the folder holding config/
    mongodb: MongoSettings
    redis: RedisSettings
    codegen: Codegen
    collections: tuple[Collection, ...] = ()
    queues: tuple[Queue, ...] = ()
    schedules: tuple[Schedule, ...] = ()
    metrics: Metrics = Metrics()

    def collection(self, name: str) -> Collection:
        return next(c for c in self.collections if c.name == name)

    def queue(self, name: str) -> Queue:
        return next(q for q in self.queues if q.name == name)

    def declared(self) -> dict[str, Any]:
        """What the spec declares, as plain JSON data, the same in every environment: connection
        URLs as written (`${MONGODB_URI:-...}`), never their value here; no file positions."""
        mongo = {f.name: getattr(self.mongodb, f.name) for f in fields(self.mongodb)
                 if f.name not in ("uri", "database")}
        redis = {f.name: getattr(self.redis, f.name) for f in fields(self.redis)
                 if f.name not in ("url", "sentinel_hosts")}  # fmt: skip
        declared: dict[str, Any] = _jsonable(
            {
                "project": self.project,
                "mongodb": mongo,
                "redis": redis,
                "codegen": {"package": self.codegen.package},
                "collections": self.collections,
                "queues": self.queues,
                "schedules": self.schedules,
            }
        )
        return declared

    def hash(self) -> str:
        """Stable hash of what is declared: names generated code and apply records."""
        return self._hash

    @cached_property
    def _hash(self) -> str:  # the spec is immutable: compute once (it walks every declaration)
        canonical = json.dumps(self.declared(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value) if f.name != "origin"}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
