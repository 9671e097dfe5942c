"""Turn schema-valid documents into the typed Spec, filling in every default.

Input here has passed JSON Schema, so shapes and types are known; semantic problems (references,
ranges, duplicates) are the business of `checks`, which runs on the result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bootstrap.spec import envvalues
from bootstrap.spec.durations import parse_duration
from bootstrap.spec.model import (
    Codegen,
    Collection,
    ConnectRetry,
    Field,
    FieldType,
    Index,
    Metrics,
    MiddlewareRef,
    MongoSettings,
    Origin,
    Queue,
    RateLimit,
    RedisSettings,
    RetentionRule,
    RetryPolicy,
    Schedule,
    ShardKey,
    Task,
    freeze,
)
from bootstrap.spec.yamlload import Document, PathKey, dotted

DEFAULT_RETRY = RetryPolicy()


def retry_policy(raw: dict[str, Any] | None, base: RetryPolicy) -> RetryPolicy:
    """`base` with the keys present in `raw` replaced."""
    if not raw:
        return base
    return RetryPolicy(
        attempts=raw.get("attempts", base.attempts),
        backoff=raw.get("backoff", base.backoff),
        delay=_duration(raw["delay"]) if "delay" in raw else base.delay,
        max_delay=_duration(raw["max_delay"]) if "max_delay" in raw else base.max_delay,
        jitter=raw.get("jitter", base.jitter),
    )


def connect_retry(raw: dict[str, Any] | None) -> ConnectRetry:
    """The declared connect-retry policy, the seed's defaults for keys not written."""
    base = ConnectRetry()
    raw = raw or {}
    return ConnectRetry(
        retries=raw.get("retries", base.retries),
        backoff=raw.get("backoff", base.backoff),
        delay=_duration(raw["delay"]) if "delay" in raw else base.delay,
        max_delay=_duration(raw["max_delay"]) if "max_delay" in raw else base.max_delay,
        jitter=raw.get("jitter", base.jitter),
    )


def _duration(raw: int | float | str) -> float:
    """The seconds of a (schema-valid) duration; one written as `${VAR}` keeps its tag (envvalues)."""
    return envvalues.seconds(raw, parse_duration(raw))


def _seconds(raw: dict[str, Any], key: str, default: float) -> float:
    return _duration(raw[key]) if key in raw else default


# --- bootstrap.yaml ---------------------------------------------------------------------------


def database_from_uri(uri: str) -> str:
    """The database named in a MongoDB URI's path, or '' (also for a URI that does not parse: the
    checks report it)."""
    try:
        return urlsplit(uri).path.lstrip("/").split("?")[0]
    except ValueError:  # an unclosed [IPv6 address
        return ""


def mongo_settings(raw: dict[str, Any], project: str, template: str | None = None) -> MongoSettings:
    pool, timeouts = raw.get("pool", {}), raw.get("timeouts", {})
    return MongoSettings(
        uri=raw["uri"],
        uri_template=template or raw["uri"],
        database_declared=raw.get("database"),
        database=raw.get("database") or database_from_uri(raw["uri"]) or project.replace("-", "_"),
        app_name=raw.get("app_name", "bootstrap"),
        pool_max=pool.get("max_size", 100),
        pool_min=pool.get("min_size", 0),
        server_selection_timeout=_seconds(timeouts, "server_selection", 30.0),
        socket_timeout=_duration(timeouts["socket"]) if "socket" in timeouts else None,
        connect_timeout=_seconds(timeouts, "connect", 20.0),
        ipv4_only=raw.get("ipv4_only", False),
        connect_retry=connect_retry(raw.get("connect_retry")),
        commit_quorum=raw.get("commit_quorum", "votingMembers"),
    )


def redis_settings(
    raw: dict[str, Any], project: str, template: str | None = None, hosts_template: str | None = None
) -> RedisSettings:
    timeouts = raw.get("timeouts", {})
    sentinel = raw.get("sentinel", {})
    wait = raw.get("wait", {})
    return RedisSettings(
        url=raw["url"],
        url_template=template or raw["url"],
        key_prefix=raw.get("key_prefix", project),
        maxmemory_policy=raw.get("maxmemory_policy", "noeviction"),
        connect_timeout=_seconds(timeouts, "connect", 5.0),
        socket_timeout=_seconds(timeouts, "socket", 5.0),
        connect_retry=connect_retry(raw.get("connect_retry")),
        mode=raw.get("mode", "standalone"),
        sentinel_master=sentinel.get("master", ""),
        sentinel_hosts=sentinel.get("hosts", ""),
        sentinel_hosts_template=hosts_template or sentinel.get("hosts", ""),
        wait_replicas=wait.get("replicas", 0),
        wait_timeout=_seconds(wait, "timeout", 1.0) if wait else 0.0,
    )


def codegen(raw: dict[str, Any], project: str, root: Path) -> Codegen:
    package = raw.get("package", f"{project.replace('-', '_')}_jobs")
    output = root / raw.get("output", "generated")
    try:
        output = output.resolve()
    except (RuntimeError, OSError):  # a symlink loop: reported by validation, not a crash here
        output = output.absolute()
    return Codegen(package=package, output=output, allow_outside_project=raw.get("allow_outside_project", False))


def metrics(raw: dict[str, Any]) -> Metrics:
    return Metrics(port=raw.get("port", 0))


# --- collections --------------------------------------------------------------------------------


def collection(doc: Document) -> Collection:
    raw = doc.data
    validation = raw.get("validation", {})
    return Collection(
        name=raw["name"],
        model=raw.get("model"),
        fields=_fields(raw["fields"], doc.file, ("fields",)),
        indexes=tuple(_index(ix, doc.file, ("indexes", i)) for i, ix in enumerate(raw.get("indexes", []))),
        timestamps=raw.get("timestamps", False),
        validation_level=validation.get("level", "strict"),
        validation_action=validation.get("action", "error"),
        additional_fields=raw.get("additional_fields", True),
        description=raw.get("description"),
        shard=_shard(raw["shard"], doc.file) if "shard" in raw else None,
        origin=Origin(doc.file, ()),
    )


def _shard(raw: dict[str, Any], file: str) -> ShardKey:
    presplit = raw.get("presplit", {})
    return ShardKey(
        keys=tuple(raw["key"].items()),
        unique=raw.get("unique", False),
        chunks=presplit.get("chunks"),
        split_at=tuple(freeze(point) for point in presplit.get("at", [])),
        origin=Origin(file, ("shard",)),
    )


_FIELD_TYPES = {kind.value: kind for kind in FieldType}  # the schema allows only these names


def _fields(raw: dict[str, Any], file: str, path: PathKey) -> tuple[Field, ...]:
    return tuple(_field(name, spec, file, (*path, name)) for name, spec in raw.items())


def _field(name: str, raw: str | dict[str, Any], file: str, path: PathKey, element: bool = False) -> Field:
    """A field; `element` for array items and map values, which are not null unless declared so."""
    if isinstance(raw, str):
        raw = {"type": raw}
    required = raw.get("required", False)
    return Field(
        name=name,
        type=_FIELD_TYPES[raw["type"]],
        required=required,
        nullable=raw.get("nullable", not (required or element)),
        has_default="default" in raw,
        default=freeze(raw["default"]) if "default" in raw else None,
        enum=tuple(raw["enum"]) if "enum" in raw else None,
        ref=raw.get("ref"),
        minimum=raw.get("min"),
        maximum=raw.get("max"),
        min_length=raw.get("min_length"),
        max_length=raw.get("max_length"),
        pattern=raw.get("pattern"),
        fields=_fields(raw.get("fields", {}), file, (*path, "fields")),
        additional_fields=raw.get("additional_fields", True),
        items=_field("[]", raw["items"], file, (*path, "items"), True) if "items" in raw else None,
        min_items=raw.get("min_items"),
        max_items=raw.get("max_items"),
        unique_items=raw.get("unique_items", False),
        values=_field("{}", raw["values"], file, (*path, "values"), True) if "values" in raw else None,
        description=raw.get("description"),
        origin=Origin(file, path),
    )


def default_index_name(keys: tuple[tuple[str, int | str], ...]) -> str:
    """MongoDB's own naming convention, so indexes made by other tools are recognised."""
    return "_".join(f"{name}_{direction}" for name, direction in keys)


def _index(raw: dict[str, Any], file: str, path: PathKey) -> Index:
    keys = tuple(raw["keys"].items())
    ttl = raw.get("ttl")
    return Index(
        keys=keys,
        name=raw.get("name") or default_index_name(keys),
        unique=raw.get("unique", False),
        sparse=raw.get("sparse", False),
        ttl=None if ttl is None else int(parse_duration(ttl)),
        partial=freeze(raw["partial"]) if "partial" in raw else None,
        hidden=raw.get("hidden", False),
        collation=freeze(raw["collation"]) if "collation" in raw else None,
        origin=Origin(file, path),
    )


# --- queues.yaml and schedules.yaml ---------------------------------------------------------------


def queues(doc: Document) -> tuple[Queue, ...]:
    defaults = doc.data.get("defaults", {})
    out = []
    for name, raw in doc.data["queues"].items():
        merged = {**defaults, **raw}
        retention = {**defaults.get("retention", {}), **raw.get("retention", {})}
        out.append(
            Queue(
                name=name,
                tasks=tuple(
                    _task(task_name, task_raw or {}, name, doc.file, ("queues", name, "tasks", task_name))
                    for task_name, task_raw in raw["tasks"].items()
                ),
                completed=_retention(retention.get("completed", {}), Queue.completed),
                failed=_retention(retention.get("failed", {}), Queue.failed),
                visibility_timeout=_seconds(merged, "visibility_timeout", Queue.visibility_timeout),
                concurrency=merged.get("concurrency", Queue.concurrency),
                shutdown_timeout=_seconds(merged, "shutdown_timeout", Queue.shutdown_timeout),
                max_deliveries=merged.get("max_deliveries", Queue.max_deliveries),
                rate_limit=_rate_limit(merged.get("rate_limit")),
                middlewares=_middlewares(doc.file, name, raw, defaults),
                description=raw.get("description"),
                origin=Origin(doc.file, ("queues", name)),
                result_max_bytes={**defaults.get("results", {}), **raw.get("results", {})}.get(
                    "max_bytes", Queue.result_max_bytes
                ),
            )
        )
    return tuple(out)


def _rate_limit(raw: dict[str, Any] | None) -> RateLimit | None:
    return None if raw is None else RateLimit(max=raw["max"], per=_duration(raw["per"]))


def _middlewares(file: str, queue: str, raw: dict[str, Any], defaults: dict[str, Any]) -> tuple[MiddlewareRef, ...]:
    """The queue's own list, else the defaults' list; `where` names the entry in the YAML."""
    path: PathKey = ("queues", queue, "middlewares") if "middlewares" in raw else ("defaults", "middlewares")
    entries = raw["middlewares"] if "middlewares" in raw else defaults.get("middlewares", [])
    out = []
    for i, entry in enumerate(entries):
        # `where` goes into generated code: the file's name (queues.yaml), never a machine's path.
        where, origin = f"{Path(file).name} {dotted((*path, i))}", Origin(file, (*path, i))
        if isinstance(entry, str):
            out.append(MiddlewareRef(entry, where=where, origin=origin))
        else:
            out.append(MiddlewareRef(entry["path"], freeze(entry.get("kwargs", {})), where, origin))
    return tuple(out)


def _retention(raw: dict[str, Any], base: RetentionRule) -> RetentionRule:
    return RetentionRule(
        max_age=_seconds(raw, "max_age", base.max_age), max_count=raw.get("max_count", base.max_count)
    )


def _task(name: str, raw: dict[str, Any], queue: str, file: str, path: PathKey) -> Task:
    return Task(
        name=name,
        queue=queue,
        handler=raw.get("handler"),
        timeout=_duration(raw["timeout"]) if "timeout" in raw else None,
        retry=retry_policy(raw["retry"], DEFAULT_RETRY) if "retry" in raw else None,
        description=raw.get("description"),
        origin=Origin(file, path),
        priority=raw.get("priority", "normal"),
    )


def schedules(doc: Document) -> tuple[Schedule, ...]:
    defaults = doc.data.get("defaults", {})
    base_retry = retry_policy(defaults.get("retry"), DEFAULT_RETRY)
    out = []
    for schedule_id, raw in doc.data["schedules"].items():
        out.append(
            Schedule(
                id=schedule_id,
                queue=raw["queue"],
                task=raw["task"],
                cron=raw.get("cron"),
                every=_duration(raw["every"]) if "every" in raw else None,
                kwargs=freeze(raw.get("kwargs", {})),
                retry=retry_policy(raw.get("retry"), base_retry),
                misfire=raw.get("misfire", defaults.get("misfire", "skip")),
                timezone=raw.get("timezone", defaults.get("timezone", "UTC")),
                enabled=raw.get("enabled", True),
                align=raw.get("align", defaults.get("align", False)),
                description=raw.get("description"),
                origin=Origin(doc.file, ("schedules", schedule_id)),
                priority=raw.get("priority"),
            )
        )
    return tuple(out)
