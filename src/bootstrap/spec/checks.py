"""Semantic checks JSON Schema cannot express: references, ranges, types of defaults, duplicates,
names that must be safe in generated code. They run on the built Spec and report every problem."""

from __future__ import annotations

import keyword
import re
import zoneinfo
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import replace
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bootstrap.errors import ERROR, WARNING, Finding
from bootstrap.redact import has_password, mask
from bootstrap.spec.build import DEFAULT_RETRY, retry_policy
from bootstrap.spec.durations import parse_duration
from bootstrap.spec.limits import duration_limits, range_problem
from bootstrap.spec.model import (
    Collection,
    ConnectRetry,
    Field,
    FieldType,
    Index,
    Queue,
    RetryPolicy,
    Schedule,
    ShardKey,
    Spec,
    Task,
)
from bootstrap.spec.names import (
    collection_name_problem,
    did_you_mean,
    generated_name_clashes,
    identifier_problem,
    package_name_problem,
)
from bootstrap.spec.yamlload import BOOL_HINT, Document, PathKey

MAX_TTL = 2**31 - 1  # MongoDB's limit for expireAfterSeconds
TIMESTAMP_FIELDS = ("createdAt", "updatedAt")
QUEUES_FILE = "queues.yaml"
_OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")


class Reporter:
    """Collects findings, locating each through the document it came from."""

    def __init__(self, docs: Mapping[str, Document]) -> None:
        self.docs = docs
        self.findings: list[Finding] = []

    def __call__(self, file: str, path: PathKey, message: str, *, key: bool = False, severity: str = ERROR) -> None:
        doc = self.docs.get(file)
        found = Finding(file, 0, 0, "", message) if doc is None else doc.finding(path, message, key=key)
        self.findings.append(found if severity == ERROR else replace(found, severity=severity))


def check_spec(
    spec: Spec, docs: Mapping[str, Document], settings_file: str, failed_kinds: AbstractSet[str] = frozenset()
) -> list[Finding]:
    """Every semantic problem; `failed_kinds` names kinds of file that did not load, whose
    declarations are unknown (references into them are not checked)."""
    report = Reporter(docs)
    if "bootstrap" not in failed_kinds:
        settings = docs.get(settings_file)
        _check_settings(spec, report, settings_file, settings.unset if settings is not None else set())
        _check_codegen(spec, report, settings_file)
    _check_collections(spec, report, check_refs="collection" not in failed_kinds)
    _check_queues(spec, report)
    _check_generated_names(spec, report)
    _check_schedules(spec, report, check_refs="queues" not in failed_kinds)
    return report.findings


# --- bootstrap.yaml ---------------------------------------------------------------------------


def _check_settings(spec: Spec, report: Reporter, file: str, unset: AbstractSet[PathKey] = frozenset()) -> None:
    mongo, redis = spec.mongodb, spec.redis
    if mongo.pool_min > mongo.pool_max:
        report(
            file,
            ("mongodb", "pool", "min_size"),
            f"min_size {mongo.pool_min} is larger than max_size {mongo.pool_max}",
        )
    # The schemas let a URI start with `${` (editors check the file as written); once interpolated it
    # must be a URI. One that kept a variable that is not set as written (`unset`: validate without
    # the secrets, see interpolate.KeepUnset; warned about) is not checked further.
    if ("mongodb", "uri") not in unset:
        _check_mongodb_uri(mongo.uri, report, file)
    for key, seconds in (
        ("server_selection", mongo.server_selection_timeout),
        ("connect", mongo.connect_timeout),
        ("socket", mongo.socket_timeout),
    ):
        if seconds is not None:
            _duration_range(report, file, ("mongodb", "timeouts", key), seconds)
    if ("redis", "url") not in unset:
        _check_redis_url(redis.url, report, file)
    templates = (("mongodb", "uri", mongo.uri_template), ("redis", "url", redis.url_template))
    for section, key, template in templates:
        if has_password(_REFERENCE.sub("", template)):  # `redis://:${REDIS_PASSWORD}@host` writes none
            report(
                file,
                (section, key),
                "a password is written in the file: it would be copied into generated "
                f"code and version control; pass the whole URL in the environment instead (${{{section.upper()}"
                f"{'_URI' if section == 'mongodb' else '_URL'}}})",
            )
    for key, seconds in (("connect", redis.connect_timeout), ("socket", redis.socket_timeout)):
        _duration_range(report, file, ("redis", "timeouts", key), seconds)
    _check_redis_mode(spec, report, file)
    for section, policy in (("mongodb", mongo.connect_retry), ("redis", redis.connect_retry)):
        _check_retry(report, file, (section, "connect_retry"), policy)


def _check_mongodb_uri(uri: str, report: Reporter, file: str) -> None:
    if not uri.startswith(("mongodb://", "mongodb+srv://")):
        report(file, ("mongodb", "uri"), "expected a MongoDB connection string starting with mongodb:// or mongodb+srv://")
    try:
        urlsplit(uri)
    except ValueError:  # a `[` or `]` that opens or closes no IPv6 address (in the password, often)
        report(file, ("mongodb", "uri"), "invalid MongoDB URI: a '[' or ']' outside an IPv6 address (`[::1]`); "
               "in the user name or password, escape it (urllib.parse.quote_plus: %5B, %5D)")  # fmt: skip
        return
    if uri.startswith("mongodb://") and not plain_mongodb_uri(uri):
        try:
            from pymongo.uri_parser import parse_uri

            parse_uri(uri)
        except Exception as exc:  # pymongo raises several types; the message is what matters
            report(file, ("mongodb", "uri"), f"invalid MongoDB URI: {_without_secrets(str(exc), uri)}")


def _check_redis_url(url: str, report: Reporter, file: str) -> None:
    if not url.startswith(("redis://", "rediss://")):
        report(file, ("redis", "url"), "expected a Redis URL starting with redis:// or rediss://")
    try:
        parts = urlsplit(url)
        _ = parts.port
        if not parts.hostname and not parts.path:
            raise ValueError("no host")
    except ValueError as exc:  # the parser's message may quote part of a password: then it is not shown
        detail = "expected redis://[[user]:password@]host[:port][/db]" if "@" in url else str(exc)
        report(file, ("redis", "url"), f"invalid Redis URL ({detail})")
        return
    _redis_options(report, file, url)
    database = parts.path.strip("/")
    if database and not database.isdigit():  # redis-py would quietly use database 0
        # Not quoted when the URL holds credentials: a '/' in a password moves the split.
        what = "the URL's path" if "@" in url else f"'{database}'"
        report(
            file,
            ("redis", "url"),
            f"a Redis database is a number (redis://host:6379/0), not {what}: Redis databases "
            "have no names; keep projects apart with key_prefix (a '/' in a password must be "
            "written %2F)",
        )


# `${NAME}` with no default, an empty one or an error message: a value taken from the environment,
# never written in the file.
_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-|:?\?[^}]*)?\}")


def _redis_options(report: Reporter, file: str, url: str) -> None:
    """The URL's query options, read as redis-py will read them, and given to a connection as it will
    be (made, not connected): a bad value (`?socket_timeout=abc`), an unknown name (`?socket_timout=5`)
    or protocol would else stop every command that connects."""
    if "?" not in url:
        return
    from redis import ConnectionPool, RedisError

    try:
        ConnectionPool.from_url(url).make_connection()
    except (ValueError, TypeError, RedisError) as exc:
        said = str(exc).replace("AbstractConnection.__init__() got an unexpected keyword argument", "unknown option")
        report(file, ("redis", "url"), f"invalid Redis URL: {_without_secrets(said, url)}")


def _check_redis_mode(spec: Spec, report: Reporter, file: str) -> None:
    """What a mode cannot have: a database other than 0 on a cluster (it has no SELECT); Sentinel
    without its master and sentinels, or sentinels in another mode."""
    redis = spec.redis
    if redis.mode == "cluster":
        database = urlsplit(redis.url).path.strip("/")
        if database not in ("", "0"):
            report(
                file,
                ("redis", "url"),
                f"Redis Cluster has database 0 only, and the URL selects database {database}: "
                "end the URL with /0 (or nothing), and keep projects apart with key_prefix",
            )
    if redis.mode == "sentinel" and not redis.sentinel_master:
        report(file, ("redis", "mode"), "sentinel mode needs `sentinel: {master: NAME, hosts: \"host:port,...\"}`")
    if redis.mode != "sentinel" and redis.sentinel_master:
        report(file, ("redis", "sentinel"), f"sentinels are used in sentinel mode only (mode is {redis.mode})")
    if redis.mode == "sentinel" and redis.sentinel_hosts:
        for item in redis.sentinel_hosts.split(","):
            port = item.strip().rpartition(":")[2] if ":" in item else "26379"
            if not item.strip() or not port.isdigit() or not 0 < int(port) < 65536:
                found = item.strip()
                report(file, ("redis", "sentinel", "hosts"), f"expected host:port, comma-separated; got {found!r}")
                break
    if redis.wait_replicas and redis.mode == "cluster":
        # WAIT counts the replicas of the connection's node; a cluster client sends it to no
        # particular node, so it would confirm nothing about the job's master.
        report(file, ("redis", "wait"), "is not supported with mode cluster (see docs/scaling.md); remove it")
    if redis.wait_replicas and redis.wait_timeout <= 0:
        report(file, ("redis", "wait", "timeout"), "must be longer than 0s")


def _check_codegen(spec: Spec, report: Reporter, file: str) -> None:
    """The generated package shadows no module and is written inside the project unless allowed."""
    codegen = spec.codegen
    target = codegen.output / codegen.package
    problem = package_name_problem(codegen.package, target)
    if problem:
        report(file, ("codegen", "package"), problem)
    doc = report.docs.get(file)
    if doc is not None and ("project",) in doc.templates and "package" not in doc.data.get("codegen", {}):
        report(file, ("project",), f"{doc.templates[('project',)]} names the generated package "
               f"({codegen.package} here, another where the project differs): set codegen.package, so every "
               "environment generates and checks the same one", severity=WARNING)
    written = doc.data.get("codegen", {}).get("output", "generated") if doc else str(codegen.output)
    problem = _output_problem(str(written), codegen.output, target, spec.root, codegen.allow_outside_project)
    if problem:
        report(file, ("codegen", "output"), problem)


def _output_problem(written: str, output: Path, target: Path, root: Path, allowed: bool) -> str | None:
    """Why the package folder `target` in `output` (`written` in the file) may not be written, or None.
    Symlinks are resolved first, the package folder's too: it may lead elsewhere."""
    try:
        places = [(written, output.resolve()), (f"{written}/{target.name}", target.resolve())]
    except (RuntimeError, OSError):
        return f"'{written}' cannot be resolved (a symlink loop?)"
    for shown, resolved in places if not allowed else ():
        if not resolved.is_relative_to(root):
            return (
                f"'{shown}' is outside the project folder ({resolved} is not under {root}); generated code is "
                "written only inside it unless codegen.allow_outside_project: true"
            )
    return None


# host[:port][,host[:port]...][/database]: no credentials, options, escapes or IPv6 brackets.
_PLAIN_MONGODB_URI = re.compile(
    r"mongodb://[A-Za-z0-9._-]+(?::[1-9][0-9]{0,4})?(?:,[A-Za-z0-9._-]+(?::[1-9][0-9]{0,4})?)*(?:/[A-Za-z0-9_-]*)?"
)


def plain_mongodb_uri(uri: str) -> bool:
    """A URI so plain that pymongo's parser is sure to accept it (as the default one is). Its parser
    is the only judge of anything else, but importing pymongo costs more than the rest of `validate`."""
    return _PLAIN_MONGODB_URI.fullmatch(uri) is not None and all(
        int(port) <= 65535 for port in re.findall(r":([0-9]+)", uri.removeprefix("mongodb://"))
    )


def _without_secrets(message: str, uri: str) -> str:
    """A driver's message about `uri`, with its password masked, however the driver quoted it."""
    try:
        password = (urlsplit(uri).password or "") if "@" in uri else ""
    except ValueError:  # does not parse (an unclosed [IPv6 address): the mask alone
        password = ""
    message = mask(message)
    return message.replace(password, "****") if len(password) >= 3 else message


# --- collections --------------------------------------------------------------------------------


def _check_collections(spec: Spec, report: Reporter, check_refs: bool) -> None:
    names: set[str] | None = {c.name for c in spec.collections} if check_refs else None
    seen: dict[str, str] = {}
    models: dict[str, str] = {}
    for coll in spec.collections:
        file = coll.origin.file
        if coll.name in seen:
            report(file, ("name",), f"collection '{coll.name}' is already declared in {seen[coll.name]}")
        seen.setdefault(coll.name, file)
        problem = collection_name_problem(coll.name)
        if problem:
            report(file, ("name",), problem)
        if coll.model:
            if keyword.iskeyword(coll.model):
                report(file, ("model",), f"'{coll.model}' is a Python keyword")
            elif coll.model in models:
                report(file, ("model",), f"model '{coll.model}' is already used by {models[coll.model]}")
            models.setdefault(coll.model, file)
        for fld in coll.fields:
            if coll.timestamps and fld.name in TIMESTAMP_FIELDS:
                report(
                    file,
                    fld.origin.path,
                    f"'{fld.name}' is added by timestamps: true; remove it or set timestamps: false",
                    key=True,
                )
            _check_field(fld, report, file, names)
        _check_indexes(coll, report)
        _warn_ttl_on_optional_field(coll, report)
        if coll.shard is not None:
            _check_shard(coll, coll.shard, report)


_ALLOWED_FOR = {
    "fields": "object",
    "items": "array",
    "values": "map",
    "ref": "objectId",
    "min": "numeric",
    "min_length": "string",
    "enum": "string or numeric",
}


def _check_field(fld: Field, report: Reporter, file: str, collections: set[str] | None) -> None:
    path, kind = fld.origin.path, fld.type
    numeric = kind.numeric
    misplaced = {
        "fields": (bool(fld.fields) or not fld.additional_fields, kind is FieldType.OBJECT),
        "items": (
            fld.items is not None or fld.min_items is not None or fld.max_items is not None or fld.unique_items,
            kind is FieldType.ARRAY,
        ),
        "values": (fld.values is not None, kind is FieldType.MAP),
        "ref": (fld.ref is not None, kind is FieldType.OBJECT_ID),
        "min": (fld.minimum is not None or fld.maximum is not None, numeric),
        "min_length": (
            fld.min_length is not None or fld.max_length is not None or fld.pattern is not None,
            kind is FieldType.STRING,
        ),
        "enum": (fld.enum is not None, kind is FieldType.STRING or numeric),
    }
    for option, (present, fits) in misplaced.items():
        if present and not fits:
            key = _present_key(report, file, path, option)
            report(
                file,
                (*path, key),
                f"'{key}' applies to {_ALLOWED_FOR[option]} fields, not to type '{kind}'",
                key=True,
            )
    if fld.ref is not None and collections is not None and fld.ref not in collections:
        report(file, (*path, "ref"), f"'{fld.ref}' is not a declared collection{did_you_mean(fld.ref, collections)}")
    _check_bounds(fld, report, file)
    if fld.pattern is not None:
        try:
            re.compile(fld.pattern)
        except re.error as exc:
            report(file, (*path, "pattern"), f"invalid regular expression: {exc}")
    if fld.enum is not None:
        for i, value in enumerate(fld.enum):
            problem = value_problem(fld, value, check_enum=False)
            if problem:
                report(file, (*path, "enum", i), problem)
        if len({repr(v) for v in fld.enum}) != len(fld.enum):
            report(file, (*path, "enum"), "enum lists a value twice")
    if fld.has_default:
        problem = value_problem(fld, fld.default)
        if problem:
            report(file, (*path, "default"), f"default {problem}")
    for sub in fld.fields:
        _check_field(sub, report, file, collections)
    for sub_field in (fld.items, fld.values):
        if sub_field is not None:
            _check_field(sub_field, report, file, collections)


def _present_key(report: Reporter, file: str, path: PathKey, option: str) -> str:
    """Which of an option's related keys the user actually wrote (for pointing at it)."""
    group = {
        "items": ("items", "min_items", "max_items", "unique_items"),
        "min": ("min", "max"),
        "min_length": ("min_length", "max_length", "pattern"),
        "fields": ("fields", "additional_fields"),
    }.get(option, (option,))
    doc = report.docs.get(file)
    for key in group:
        if doc is not None and (*path, key) in doc.keys:
            return key
    return option


def _check_bounds(fld: Field, report: Reporter, file: str) -> None:
    for low_key, low, high_key, high in (
        ("min", fld.minimum, "max", fld.maximum),
        ("min_length", fld.min_length, "max_length", fld.max_length),
        ("min_items", fld.min_items, "max_items", fld.max_items),
    ):
        if low is not None and high is not None and low > high:
            report(file, (*fld.origin.path, low_key), f"{low_key} {low} is larger than {high_key} {high}")


def value_problem(fld: Field, value: Any, *, check_enum: bool = True) -> str | None:
    """Why `value` is not a valid value of field `fld`, or None. Used for defaults and enums."""
    if value is None:
        return None if fld.nullable else "null is not allowed (the field is not nullable)"
    problem = _type_problem(fld, value)
    if problem is None and check_enum and fld.enum is not None and value not in fld.enum:
        problem = f"{value!r} is not one of the enum values ({', '.join(map(str, fld.enum))})"
    return problem


def _type_problem(fld: Field, value: Any) -> str | None:
    kind = fld.type
    wrong = f"{value!r} is not of type {kind}"
    if kind is FieldType.ANY:
        return None
    if kind is FieldType.BOOL:
        return None if isinstance(value, bool) else wrong
    if kind.numeric:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return wrong
        if kind in (FieldType.INT, FieldType.LONG) and not isinstance(value, int):
            return wrong
        if kind is FieldType.INT and not -(2**31) <= value < 2**31:
            return f"{value} does not fit in a 32-bit int (use type long)"
        if fld.minimum is not None and value < fld.minimum:
            return f"{value} is below min {fld.minimum}"
        if fld.maximum is not None and value > fld.maximum:
            return f"{value} is above max {fld.maximum}"
        return None
    if kind in (FieldType.OBJECT, FieldType.MAP):
        return None if isinstance(value, Mapping) else wrong
    if kind is FieldType.ARRAY:
        if not isinstance(value, tuple | list):
            return wrong
        if fld.max_items is not None and len(value) > fld.max_items:
            return f"has {len(value)} items, more than max_items {fld.max_items}"
        for item in value if fld.items is not None else ():
            problem = value_problem(fld.items, item)  # type: ignore[arg-type]
            if problem:
                return f"item {problem}"
        return None
    if not isinstance(value, str):
        return f"{wrong}{BOOL_HINT}" if isinstance(value, bool) else wrong
    if kind is FieldType.DATE and value != "now" and not _is_iso_date(value):
        return f"{value!r} is not a date (expected 'now' or an ISO 8601 date such as 2024-01-31T00:00:00Z)"
    if kind is FieldType.OBJECT_ID and not _OBJECT_ID.match(value):
        return f"{value!r} is not an ObjectId (expected 24 hexadecimal characters)"
    if fld.min_length is not None and len(value) < fld.min_length:
        return f"{value!r} is shorter than min_length {fld.min_length}"
    if fld.max_length is not None and len(value) > fld.max_length:
        return f"{value!r} is longer than max_length {fld.max_length}"
    if fld.pattern is not None and _safe_search(fld.pattern, value) is False:
        return f"{value!r} does not match pattern {fld.pattern!r}"
    return None


def _safe_search(pattern: str, value: str) -> bool | None:
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return None  # reported on the pattern itself


def _is_iso_date(text: str) -> bool:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def resolve_field(fields: Iterable[Field], dotted: str, timestamps: bool) -> Field | bool | None:
    """The field a dotted index path names: a Field, True when it lies inside a free-form part
    (`any`, untyped map or array elements), or None when nothing declares it."""
    parts = dotted.split(".")
    if parts[0] == "_id" and len(parts) == 1:
        return Field("_id", FieldType.OBJECT_ID)
    if timestamps and dotted in TIMESTAMP_FIELDS:
        return Field(dotted, FieldType.DATE)
    current: tuple[Field, ...] = tuple(fields)
    found: Field | None = None
    i = 0
    while i < len(parts):
        found = next((f for f in current if f.name == parts[i]), None)
        if found is None:
            return None
        i += 1
        # Arrays are transparent in MongoDB paths: `evidence.messageId` reaches into elements.
        while found.type is FieldType.ARRAY and found.items is not None:
            if i < len(parts) and parts[i].isdigit():
                i += 1
            found = found.items
        if found.type is FieldType.MAP:
            if i == len(parts):
                return found  # the map itself, not its values
            i += 1  # the map key
            if found.values is None:
                return True
            found = found.values
            if i == len(parts):
                return found
        if i == len(parts):
            return found
        if found.type is FieldType.ANY or (found.type is FieldType.ARRAY and found.items is None):
            return True
        if found.type is not FieldType.OBJECT:
            return None
        if not found.fields:
            return True  # an object with no declared fields is free-form
        current = found.fields
    return found


def _check_indexes(coll: Collection, report: Reporter) -> None:
    file = coll.origin.file
    names: dict[str, int] = {}
    patterns: dict[tuple[tuple[str, int | str], ...], int] = {}
    for number, index in enumerate(coll.indexes):
        path = index.origin.path
        if index.name in names:
            report(
                file,
                (*path, "name"),
                f"index name '{index.name}' is already used by indexes[{names[index.name]}]",
            )
        elif index.name == "_id_":
            report(file, (*path, "name"), "'_id_' is the name of MongoDB's own _id index")
        names.setdefault(index.name, number)
        if index.keys in patterns:
            report(
                file,
                (*path, "keys"),
                f"same keys as indexes[{patterns[index.keys]}] (MongoDB allows one index per key pattern)",
            )
        patterns.setdefault(index.keys, number)
        for key, direction in index.keys:
            target = resolve_field(coll.fields, key, coll.timestamps)
            if target is None:
                report(file, (*path, "keys", key), f"'{key}' is not a declared field of '{coll.name}'", key=True)
            del direction
        _check_index_options(coll, index, report)


def _check_index_options(coll: Collection, index: Index, report: Reporter) -> None:
    file, path = coll.origin.file, index.origin.path
    kinds = [d for _, d in index.keys]
    if index.ttl is not None:
        if len(index.keys) != 1:
            report(file, (*path, "ttl"), "a TTL index must have exactly one key (a date field)")
        else:
            key = index.keys[0][0]
            target = resolve_field(coll.fields, key, coll.timestamps)
            if key == "_id":
                report(file, (*path, "ttl"), "a TTL index cannot be on _id")
            elif isinstance(target, Field) and target.type is not FieldType.DATE:
                report(file, (*path, "ttl"), f"TTL field '{key}' has type {target.type} (expected date)")
        if index.ttl > MAX_TTL:
            report(file, (*path, "ttl"), f"{index.ttl} seconds is too long (expected at most {MAX_TTL})")
        doc = report.docs.get(file)
        raw = doc.data["indexes"][path[-1]]["ttl"] if doc else None
        if isinstance(raw, str) and float(index.ttl) != parse_duration(raw):
            report(file, (*path, "ttl"), f"'{raw}' is not a whole number of seconds")
    if "hashed" in kinds and index.unique:
        report(file, (*path, "unique"), "a hashed index cannot be unique")
    if kinds.count("hashed") > 1:
        report(file, (*path, "keys"), "an index may have only one hashed field")
    if index.sparse and index.partial is not None:
        report(file, (*path, "sparse"), "MongoDB does not allow sparse together with partial")


def describe_key(keys: tuple[tuple[str, int | str], ...]) -> str:
    return "{" + ", ".join(f"{name}: {direction}" for name, direction in keys) + "}"


def _through_array(fields: Iterable[Field], dotted: str) -> bool:
    """Whether a dotted path is, or passes through, an array field (MongoDB paths see through them)."""
    current = tuple(fields)
    for part in dotted.split("."):
        found = next((f for f in current if f.name == part), None)
        if found is None:
            return False
        if found.type is FieldType.ARRAY:
            return True
        current = found.fields
    return False


def _check_shard(coll: Collection, shard: ShardKey, report: Reporter) -> None:
    """MongoDB's rules for a shard key: declared, non-array fields, at most one hashed field, no
    unique hashed key, presplit of the kind the key allows, and every unique index (but _id's)
    starting with a ranged shard key, since uniqueness across shards is enforced only through it."""
    file, path = coll.origin.file, shard.origin.path
    fields: dict[str, Field] = {}
    for name, _direction in shard.keys:
        target = resolve_field(coll.fields, name, coll.timestamps)
        if target is None:
            report(file, (*path, "key", name), f"'{name}' is not a declared field of '{coll.name}'", key=True)
        elif _through_array(coll.fields, name):
            report(file, (*path, "key", name), f"a shard key field cannot be an array or inside one ('{name}')",
                   key=True)
        elif isinstance(target, Field):
            fields[name] = target
    if sum(direction == "hashed" for _, direction in shard.keys) > 1:
        report(file, (*path, "key"), "a shard key may have only one hashed field")
    if shard.unique and shard.hashed:
        report(file, (*path, "unique"), "a hashed shard key cannot be unique (MongoDB refuses unique with hashed)")
    if shard.chunks is not None and not shard.hashed:
        report(file, (*path, "presplit", "chunks"),
               "chunks (numInitialChunks) applies to hashed shard keys only; split a ranged key with `at`")
    if shard.split_at and shard.hashed:
        report(file, (*path, "presplit", "at"),
               "split points apply to ranged shard keys only; presplit a hashed key with `chunks`")
    for number, point in enumerate(shard.split_at):
        where = (*path, "presplit", "at", number)
        if tuple(point) != shard.fields:
            report(file, where, f"a split point names every shard key field in order ({', '.join(shard.fields)}), "
                   f"not {', '.join(map(str, point)) or 'none'}")
            continue
        for name, value in point.items():
            fld = fields.get(name)
            problem = value_problem(fld, value, check_enum=False) if fld is not None else None
            if problem:
                report(file, (*where, name), f"split point: {problem}")
    key = describe_key(shard.keys)
    for index in coll.indexes:
        if not index.unique or [name for name, _ in index.keys] == ["_id"]:
            continue  # _id is unique per shard by MongoDB's own rule
        if shard.hashed:
            report(file, (*index.origin.path, "unique"),
                   f"a unique index cannot go with the hashed shard key {key}: MongoDB enforces uniqueness "
                   "across shards only for indexes prefixed by a ranged shard key")
        elif tuple(name for name, _ in index.keys[: len(shard.keys)]) != shard.fields:
            report(file, (*index.origin.path, "unique"),
                   f"a unique index on a sharded collection must start with the shard key {key} "
                   "(MongoDB enforces uniqueness across shards only through it)")
    if shard.unique:
        exact = next((ix for ix in coll.indexes if ix.keys == shard.keys), None)
        if exact is not None and not exact.unique:
            report(file, (*exact.origin.path, "keys"),
                   f"the shard key {key} is unique: the index on exactly that key must be unique too")


def _warn_ttl_on_optional_field(coll: Collection, report: Reporter) -> None:
    """A TTL index expires documents by the date in its field: a document without that date is
    never removed. Warn when the application may leave the field out: not required, no default,
    not a timestamp (which the models set on insert)."""
    for index in coll.indexes:
        if index.ttl is None or len(index.keys) != 1:
            continue
        key = index.keys[0][0]
        if coll.timestamps and key in TIMESTAMP_FIELDS:
            continue
        target = resolve_field(coll.fields, key, coll.timestamps)
        if isinstance(target, Field) and target.type is FieldType.DATE and not (target.required or target.has_default):
            report(
                coll.origin.file,
                (*index.origin.path, "ttl"),
                f"documents without `{key}` never expire (the field is optional and has no default: "
                f"make it required or give it `default: now`)",
                severity=WARNING,
            )


# --- queues and schedules -------------------------------------------------------------------------


def _check_retry(report: Reporter, file: str, path: PathKey, policy: RetryPolicy | ConnectRetry) -> None:
    _duration_range(report, file, (*path, "delay"), policy.delay)
    _duration_range(report, file, (*path, "max_delay"), policy.max_delay)
    doc = report.docs.get(file)
    if policy.delay > policy.max_delay and doc is not None and _exists(doc, path):
        report(
            file,
            (*path, "delay"),
            f"delay ({policy.delay:g}s) is longer than max_delay ({policy.max_delay:g}s)",
        )


def _duration_range(report: Reporter, file: str, path: PathKey, seconds: float) -> None:
    """The duration at `path` within its limits (`limits.duration_limits`)."""
    doc = report.docs.get(file)
    if doc is None or not _exists(doc, path):
        return  # a default, not something the user wrote
    low, high = duration_limits(path) or (0.0, float("inf"))
    problem = range_problem(seconds, low, high)
    if problem:
        report(file, path, problem)


def _exists(doc: Document, path: PathKey) -> bool:
    return path in doc.values


def _check_queues(spec: Spec, report: Reporter) -> None:
    for file in dict.fromkeys(q.origin.file for q in spec.queues):
        doc = report.docs.get(file)
        _check_queue_defaults(report, file, doc.data.get("defaults", {}) if doc else {})
    tasks: dict[str, str] = {}
    for queue in spec.queues:
        file, path = queue.origin.file, queue.origin.path
        problem = identifier_problem(queue.name)
        if problem:
            report(file, path, problem, key=True)
        # Values the queue inherits were checked in defaults; these paths exist only where it sets its own.
        _duration_range(report, file, (*path, "visibility_timeout"), queue.visibility_timeout)
        _duration_range(report, file, (*path, "shutdown_timeout"), queue.shutdown_timeout)
        if queue.rate_limit is not None:
            _duration_range(report, file, (*path, "rate_limit", "per"), queue.rate_limit.per)
        for kind in ("completed", "failed"):
            max_age = getattr(queue, kind).max_age
            _duration_range(report, file, (*path, "retention", kind, "max_age"), max_age)
        for task in queue.tasks:
            problem = identifier_problem(task.name)
            if problem:
                report(file, task.origin.path, problem, key=True)
            if task.name in tasks:
                report(
                    file,
                    task.origin.path,
                    f"task '{task.name}' is already declared on queue '{tasks[task.name]}' (task names are global)",
                    key=True,
                )
            tasks.setdefault(task.name, queue.name)
            if task.timeout is not None:
                _duration_range(report, file, (*task.origin.path, "timeout"), task.timeout)
            if task.retry is not None:
                _check_retry(report, file, (*task.origin.path, "retry"), task.retry)


def _check_generated_names(spec: Spec, report: Reporter) -> None:
    """Queue and task names, which become globals of the generated brokers.py and tasks.py, shadow
    none of that module's own names nor each other (the templates make this hold for every valid
    name; this guards names a future schema or template may allow)."""
    queues = [(queue.name, queue.origin.file, queue.origin.path) for queue in spec.queues]
    tasks = [(task.name, queue.origin.file, task.origin.path) for queue in spec.queues for task in queue.tasks]
    for module, declared in (("brokers.py", queues), ("tasks.py", tasks)):
        where = {name: (file, path) for name, file, path in reversed(declared)}  # the first declaration
        for name, problem in generated_name_clashes(module, [name for name, _, _ in declared]):
            file, path = where[name]
            report(file, path, problem, key=True)


def _check_queue_defaults(report: Reporter, file: str, defaults: Mapping[str, Any]) -> None:
    """The queue defaults as written, once (each queue may override them)."""
    for key in ("visibility_timeout", "shutdown_timeout"):
        if key in defaults:
            _duration_range(report, file, ("defaults", key), parse_duration(defaults[key]))
    if "per" in defaults.get("rate_limit", {}):
        per = parse_duration(defaults["rate_limit"]["per"])
        _duration_range(report, file, ("defaults", "rate_limit", "per"), per)
    for kind, rule in defaults.get("retention", {}).items():
        if "max_age" in rule:
            max_age = parse_duration(rule["max_age"])
            _duration_range(report, file, ("defaults", "retention", kind, "max_age"), max_age)


def _check_schedules(spec: Spec, report: Reporter, check_refs: bool) -> None:
    """`check_refs` is False when queues.yaml did not load: its queues and tasks are then unknown."""
    queues = {q.name: q for q in spec.queues}
    for file in dict.fromkeys(s.origin.file for s in spec.schedules):
        # The defaults as written (each schedule's own policy may override them).
        doc = report.docs.get(file)
        defaults = doc.data.get("defaults", {}) if doc else {}
        _check_retry(report, file, ("defaults", "retry"), retry_policy(defaults.get("retry"), DEFAULT_RETRY))
        if "timezone" in defaults:
            _check_timezone(report, file, ("defaults", "timezone"), defaults["timezone"])
    for schedule in spec.schedules:
        file, path = schedule.origin.file, schedule.origin.path
        if check_refs:
            _check_schedule_target(schedule, queues, report)
        if (schedule.cron is None) == (schedule.every is None):
            report(
                file,
                path,
                "give exactly one of 'cron' or 'every'" + (" (both are set)" if schedule.cron is not None else ""),
                key=True,
            )
        if schedule.cron is not None:
            problem = cron_problem(schedule.cron, schedule.timezone)
            if problem:
                report(file, (*path, "cron"), problem)
        if schedule.every is not None:
            _duration_range(report, file, (*path, "every"), schedule.every)
        _check_retry(report, file, (*path, "retry"), schedule.retry)
        if _exists(report.docs[file], (*path, "timezone")):
            _check_timezone(report, file, (*path, "timezone"), schedule.timezone)
        for key in schedule.kwargs:
            if not key.isidentifier() or keyword.iskeyword(key):
                report(
                    file,
                    (*path, "kwargs", key),
                    f"'{key}' cannot be a Python keyword argument name",
                    key=True,
                )


def _check_schedule_target(schedule: Schedule, queues: Mapping[str, Queue], report: Reporter) -> None:
    """The schedule's queue is declared and serves its task."""
    file, path = schedule.origin.file, schedule.origin.path
    queue = queues.get(schedule.queue)
    if queue is None:
        report(
            file,
            (*path, "queue"),
            f"'{schedule.queue}' is not a declared queue"
            + (did_you_mean(schedule.queue, queues) if queues else f" (there is no {QUEUES_FILE})"),
        )
    elif schedule.task not in {t.name for t in queue.tasks}:
        task_names = [t.name for t in queue.tasks]
        report(
            file,
            (*path, "task"),
            f"'{schedule.task}' is not a task of queue '{queue.name}' "
            f"(declared: {', '.join(task_names)}){did_you_mean(schedule.task, task_names)}",
        )


# The range of each field of a cron expression: minute, hour, day of month, month, day of week.
_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_CRON_NUMBERS = re.compile(r"(?:0|[1-9][0-9]?)(?:,(?:0|[1-9][0-9]?))*")
_CRON_STEP = re.compile(r"\*/([1-9][0-9]?)")


def plain_cron(fields: list[str]) -> bool:
    """Five fields so plain that croniter is sure to accept them: `*`, `*/step` or numbers, each
    within its field's range. croniter is the only judge of anything else (ranges, names, `L`, `#`),
    but importing it costs a tenth of `validate`."""
    for field, (low, high) in zip(fields, _CRON_RANGES, strict=True):
        if field == "*":
            continue
        step = _CRON_STEP.fullmatch(field)
        if step is not None:
            if int(step.group(1)) > high:
                return False
        elif not _CRON_NUMBERS.fullmatch(field) or not all(low <= int(n) <= high for n in field.split(",")):
            return False
    return True


# The most days each month can have (29 for February: leap years count).
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def plain_cron_fires(fields: list[str]) -> bool:
    """Whether a plain cron (see `plain_cron`) fires at all: only days of month that no listed month
    has (`0 0 30 2 *`) can stop it, and only when the day of week does not also pick days."""
    day, month, weekday = fields[2], fields[3], fields[4]
    if weekday != "*" or "*" in day or "*" in month:
        return True  # a restricted weekday ORs in more days; a stepped or any day or month has day 1 or a 31-day month
    return any(int(d) <= _MONTH_DAYS[int(m) - 1] for d in day.split(",") for m in month.split(","))


def cron_problem(expression: str, timezone: str = "UTC") -> str | None:
    """Why `expression` is not a valid five-field cron expression that fires, or None. It must fire
    at least once from now on in `timezone` (UTC when unknown: that gets its own finding)."""
    fields = expression.split()
    if len(fields) != 5:
        return f"'{expression}' has {len(fields)} field(s) (expected 5: minute hour day-of-month month day-of-week)"
    never = f"'{expression}' never fires: no date matches its day of month and month"
    if plain_cron(fields):
        return None if plain_cron_fires(fields) else never
    from croniter import CroniterBadDateError, croniter

    if not croniter.is_valid(expression):
        return f"'{expression}' is not a valid cron expression (minute hour day-of-month month day-of-week)"
    try:
        zone: tzinfo = zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = UTC
    try:
        # croniter's own search window (50 years), as the scheduler and status use it: every five-field
        # cron that fires at all fires within 8 years (leap days skip 2100), so this is "never".
        croniter(expression, datetime.now(zone)).get_next(float)
    except CroniterBadDateError:
        return never
    return None


def _check_timezone(report: Reporter, file: str, path: PathKey, name: str) -> None:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        report(
            file,
            path,
            f"'{name}' is not a known time zone (expected an IANA name such as UTC or Europe/Paris)",
        )


# --- handlers (validate only: importing them runs the application's code) -------------------------

HANDLER_CHECK_TIMEOUT = 120.0  # seconds for importing every handler module


def handler_problems(spec: Spec) -> list[tuple[Queue, Task, str]]:
    """Each declared handler that workers could not use, with why: its module does not import, or
    the name is not a function. Imported as workers import them (the project folder, the folder
    holding config/, and the generated output folder on the path) in a process of its own, so the
    application's code neither runs in this one nor leaves modules behind. No handler declared: no
    process, no cost."""
    declared = [(queue, task) for queue in spec.queues for task in queue.tasks if task.handler]
    found = import_problems(spec, sorted({task.handler for _, task in declared if task.handler}))
    return [
        (queue, task, _before_generate(spec, problem))
        for queue, task in declared
        if (problem := found.get(task.handler or ""))
    ]


def _before_generate(spec: Spec, problem: str) -> str:
    """`problem`, with the way out when it is the generated package that is missing: a handler that
    uses the generated models cannot import before `bootstrap generate` wrote them."""
    package = spec.codegen.package
    if f"ModuleNotFoundError: No module named '{package}'" in problem or (
        f"ModuleNotFoundError: No module named '{package}." in problem
    ):
        return (
            f"{problem}; {package} is the package `bootstrap generate` writes (to {spec.codegen.output}): "
            "run it, then validate again"
        )
    return problem


MIDDLEWARE = "middleware "  # asks the checking process about a middleware, not a handler


def middleware_problems(spec: Spec) -> list[tuple[Queue, int, str]]:
    """Each declared middleware (queue, index in its list) workers could not use, with why; imported
    as handlers are (see handler_problems), not instantiated."""
    declared = [(queue, i, ref.path) for queue in spec.queues for i, ref in enumerate(queue.middlewares)]
    found = import_problems(spec, sorted({MIDDLEWARE + path for _, _, path in declared}))
    return [(queue, i, problem) for queue, i, path in declared if (problem := found.get(MIDDLEWARE + path))]


def import_problems(spec: Spec, todo: list[str]) -> dict[str, str | None]:
    """Import each path in a process of its own (see handler_problems): path -> problem or None."""
    if not todo:
        return {}
    import json
    import os
    import subprocess
    import sys
    import time

    env = dict(os.environ)
    search = [str(spec.root), str(spec.codegen.output), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in dict.fromkeys(search) if p)
    command = [sys.executable, "-c", "from bootstrap.jobs.handlers import check_handler_imports as c; c()"]
    found: dict[str, str | None] = {}
    deadline = time.monotonic() + HANDLER_CHECK_TIMEOUT
    while todo:
        try:
            done = subprocess.run(
                command, input=json.dumps(todo), env=env, capture_output=True, text=True,
                timeout=max(1.0, deadline - time.monotonic()),
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            found.update({path: f"importing it took longer than {HANDLER_CHECK_TIMEOUT:g}s" for path in todo})
            break
        found.update(_answers(done.stdout, todo))
        todo = [path for path in todo if path not in found]
        if todo:  # the process ended while importing the first one left: that one, then the rest again
            said = (done.stderr.strip().splitlines() or [""])[-1]
            ended = f"importing it ended the process (exit code {done.returncode})"
            found[todo.pop(0)] = f"{ended}: {said}" if said else ended
    return found


def _answers(output: str, asked: list[str]) -> dict[str, str | None]:
    """The checking process's answers: lines `[path, problem]` (a module may have written to the
    same stream: any other line is not an answer)."""
    import json

    answers: dict[str, str | None] = {}
    for line in output.splitlines():
        try:
            path, problem = json.loads(line)
        except (ValueError, TypeError):
            continue
        if path in asked and (problem is None or isinstance(problem, str)):
            answers[path] = problem
    return answers


def check_handlers(spec: Spec, report: Reporter) -> None:
    for queue, task, problem in handler_problems(spec):
        report(queue.origin.file, (*task.origin.path, "handler"), f"handler {task.handler}: {problem}")
    seen = set()
    for queue, i, problem in middleware_problems(spec):
        ref = queue.middlewares[i]
        if (ref.origin.file, ref.origin.path) not in seen:  # a default's entry: once, not once per queue
            seen.add((ref.origin.file, ref.origin.path))
            report(ref.origin.file, ref.origin.path, f"middleware {ref.path}: {problem}")
