"""`bootstrap health [--json]`: exit 0 only when the whole stack is as declared and working.

Checks, in order: MongoDB answers; Redis answers; Redis evicts nothing (its maxmemory-policy is the
declared one); every declared schedule is stored in Redis; every queue has a live worker running
the spec's wiring; with schedules declared, a live scheduler runs it too; nothing drifted (the
engine's plan is empty). Each failed check is named with its fix. Checks that need a server that
does not answer are not run (the server's check says why). One attempt per server, each bounded by
--timeout: a health check must answer quickly, so no taskiq, aiohttp or pydantic is imported, and
no connection is retried.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any

import redis
from pymongo.database import Database
from pymongo.errors import PyMongoError

from bootstrap import console
from bootstrap.cli.common import spec_from
from bootstrap.connect.mongo import connect
from bootstrap.connect.redis import UNKNOWN_POLICY, eviction_policies, memory_full
from bootstrap.connect.redis import connect as connect_redis
from bootstrap.connect.redis import shown as redis_shown
from bootstrap.engine.ops import Blocked, Operation, Options
from bootstrap.engine.redis.operations import PolicyUnknown, SetEvictionPolicy
from bootstrap.errors import BootstrapError, Unavailable
from bootstrap.layout.marker import elsewhere
from bootstrap.redact import mask
from bootstrap.spec.model import ConnectRetry, Spec

ONCE = ConnectRetry(retries=0)  # one attempt: a health check reports, it does not wait for recovery


CHECKS = ("mongodb", "redis", "eviction", "schedules", "workers", "scheduler", "drift")


def _check_names(text: str) -> frozenset[str]:
    names = frozenset(name.strip() for name in text.split(",") if name.strip())
    unknown = sorted(names - set(CHECKS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{', '.join(unknown) or 'nothing'}: expected some of {', '.join(CHECKS)}")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.add_argument(
        "--only",
        type=_check_names,
        metavar="CHECKS",
        help=f"run only these checks (comma-separated: {','.join(CHECKS)}), e.g. a container's own: "
        "--only mongodb,redis,workers for a worker, --only redis,scheduler for the scheduler",
    )
    parser.add_argument(
        "--queue",
        action="append",
        metavar="QUEUE",
        help="the workers check looks at this queue only (repeatable): a container that runs the "
        "workers of some queues (`python -m PACKAGE.worker QUEUE ...`) checks its own",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="how long each server may take to answer (default 3)",
    )


@dataclass(frozen=True)
class Check:
    name: str  # mongodb, redis, eviction, schedules, workers, scheduler, drift
    ok: bool
    detail: str  # what was found
    fix: str | None = None  # what to do about it (failed checks)


def run(args: argparse.Namespace) -> int:
    spec = spec_from(args)
    declared = [queue.name for queue in spec.queues]
    for name in args.queue or ():
        if name not in declared:
            raise BootstrapError(f"unknown queue '{name}' (declared: {', '.join(declared)})")
    if args.queue and args.only is not None and "workers" not in args.only:
        raise BootstrapError("--queue names the queues of the workers check, which --only leaves out")
    checks = list(run_checks(spec, args.timeout, args.only, frozenset(args.queue or ()) or None))
    healthy = all(check.ok for check in checks)
    if args.json:
        console.out_json({"healthy": healthy, "checks": [asdict(check) for check in checks]})
    else:
        for check in checks:
            console.out(f"{'ok  ' if check.ok else 'FAIL'}  {check.name:<9}  {check.detail}")
            if check.fix:
                console.out(f"{'':15}fix: {check.fix}")
        console.out("healthy" if healthy else f"unhealthy: {', '.join(c.name for c in checks if not c.ok)}")
    return 0 if healthy else 1


def run_checks(
    spec: Spec, timeout: float, only: frozenset[str] | None = None, queues: frozenset[str] | None = None
) -> Iterator[Check]:
    """The checks, in order. `only`: those named, and the check of a server one of them needs when
    that server does not answer (else nothing would fail). `queues`: the queues whose workers are
    checked (None: every one)."""
    wanted = frozenset(CHECKS) if only is None else only
    with _mongo(spec, timeout) as (db, mongo_check), _redis(spec, timeout) as (client, redis_check):
        needs_redis = bool(wanted - {"mongodb"})
        if "mongodb" in wanted or ("drift" in wanted and db is None):
            yield mongo_check
        if "redis" in wanted or (needs_redis and client is None):
            yield redis_check
        hint = _prefix_hint(spec, client) if client is not None else None
        if client is not None and not redis_check.ok:  # answers, but full
            hint = FULL_HINT
        if client is not None:
            if "eviction" in wanted:
                yield _guarded("eviction", lambda: eviction(spec, client))
            for name, check in (
                ("schedules", schedules),
                ("workers", functools.partial(workers, queues=queues)),
                ("scheduler", scheduler),
            ):
                if name in wanted:
                    yield _hinted(_guarded(name, functools.partial(check, spec, client)), hint)
        if client is not None and db is not None and "drift" in wanted:
            yield _hinted(_guarded("drift", lambda: drift(spec, db, client)), hint)


def _prefix_hint(spec: Spec, client: redis.Redis) -> str | None:
    """Where this spec's marker is missing but the database holds another key prefix's data (see
    `admin.other_prefixes`): what to check before following the other checks' fixes (start workers,
    apply), which would start a second, empty deployment."""
    from bootstrap.jobs import admin

    try:
        if admin.data_marker(client, spec) is not None:
            return None
        others = admin.other_prefixes(client, spec)
    except (redis.RedisError, OSError):  # the checks say it
        return None
    return elsewhere(spec.redis.key_prefix, others) if others else None


def _hinted(check: Check, hint: str | None) -> Check:
    return replace(check, fix=hint) if hint is not None and not check.ok else check


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    """The check, or its failure when a server failed under it (a Redis Cluster master that does not
    answer while the others do): every check is still reported."""
    try:
        return check()
    except (redis.RedisError, PyMongoError, OSError) as exc:
        return Check(name, False, f"could not be checked: {mask(str(exc))}",
                     "make every server answer (on a Redis Cluster, every master), then check again")  # fmt: skip


@contextmanager
def _mongo(spec: Spec, timeout: float) -> Iterator[tuple[Database[Any] | None, Check]]:
    settings = replace(
        spec.mongodb,
        connect_retry=ONCE,
        server_selection_timeout=min(spec.mongodb.server_selection_timeout, timeout),
        connect_timeout=min(spec.mongodb.connect_timeout, timeout),
    )
    shown = mask(spec.mongodb.uri)
    started = time.perf_counter()
    try:
        client = connect(settings, short_lived=True)
    except BootstrapError as exc:
        yield None, _unavailable("mongodb", "MongoDB", shown, "MONGODB_URI", exc)
        return
    took = _ms(started)
    try:
        yield client[spec.mongodb.database], Check("mongodb", True, f"MongoDB {shown} answers ({took})")
    finally:
        client.close()


@contextmanager
def _redis(spec: Spec, timeout: float) -> Iterator[tuple[redis.Redis | None, Check]]:
    settings = replace(
        spec.redis,
        connect_retry=ONCE,
        connect_timeout=min(spec.redis.connect_timeout, timeout),
        socket_timeout=min(spec.redis.socket_timeout, timeout),
    )
    shown = redis_shown(spec.redis)
    started = time.perf_counter()
    try:
        client = connect_redis(settings, once=True)
    except BootstrapError as exc:
        check = _unavailable("redis", "Redis", shown, "REDIS_URL", exc)
        if spec.redis.mode == "sentinel" and not check.detail.startswith(f"Redis {shown} refuses"):
            sentinels, master = spec.redis.sentinel_hosts, spec.redis.sentinel_master
            fix = f"check that the sentinels ({sentinels}) run and that {master} has a master (failovers take seconds)"
            check = replace(check, fix=fix)
        yield None, check
        return
    took = _ms(started)
    try:
        full = memory_full(client)
        if full is not None:
            yield client, Check("redis", False, f"Redis {shown} answers ({took}) but is full: {full}; it refuses "
                                "writes: sends, acknowledgements, records and heartbeats", FULL_FIX)  # fmt: skip
        else:
            yield client, Check("redis", True, f"Redis {shown} answers ({took})")
    finally:
        client.close()


FULL_FIX = ("give Redis memory (CONFIG SET maxmemory, or a larger instance), or free some (`bootstrap jobs purge "
            "QUEUE` empties a failed-job store); do not restart the workers: their acknowledgements go through once "
            "writes pass")
FULL_HINT = "Redis is full (see the redis check): it refuses heartbeats and records too; give it memory first"


def _unavailable(name: str, server: str, shown: str, variable: str, exc: BootstrapError) -> Check:
    """The check of a server that could not be used: not answering, or refusing the credentials."""
    if isinstance(exc, Unavailable) and exc.refused:
        return Check(name, False, f"{server} {shown} refuses the credentials: {exc}",
                     f"put the right user and password in {variable}")  # fmt: skip
    if "MISCONF" in str(exc):  # Redis runs, but cannot save its data: it refuses writes until it can
        return Check(name, False, f"{server} {shown} answers but cannot save its data: {exc}",
                     "free disk space where Redis keeps its data, or make that folder writable (its log "
                     "says which); it takes writes again once a save succeeds")  # fmt: skip
    return Check(name, False, f"{server} {shown} does not answer: {exc}",
                 f"start {server}, or point {variable} at one that runs")  # fmt: skip


def eviction(spec: Spec, client: redis.Redis) -> Check:
    """The maxmemory-policy of the server, or of every primary of a cluster (one that evicts loses
    the queues it holds)."""
    wanted = spec.redis.maxmemory_policy
    policies = eviction_policies(client)
    wrong = {where: policy for where, policy in policies.items() if policy not in (wanted, UNKNOWN_POLICY)}
    if wrong:
        found = ", ".join(policy if where == "server" else f"{policy} on {where}" for where, policy in wrong.items())
        return Check(
            "eviction",
            False,
            f"Redis runs with maxmemory-policy {found}: queued jobs can be evicted (expected {wanted})",
            f"run `bootstrap apply --fix-redis`, or start redis-server with --maxmemory-policy {wanted}",
        )
    unread = [where for where, policy in policies.items() if policy == UNKNOWN_POLICY]
    if len(unread) == len(policies):  # CONFIG disabled (managed Redis)
        return Check("eviction", True, f"maxmemory-policy cannot be read (CONFIG is disabled); it must be {wanted}")
    if list(policies) == ["server"]:
        return Check("eviction", True, f"maxmemory-policy {wanted}")
    read = len(policies) - len(unread)
    cannot = f"; cannot be read on {', '.join(unread)} (CONFIG disabled), where it must be {wanted}" if unread else ""
    return Check("eviction", True, f"maxmemory-policy {wanted} on {read} of {len(policies)} primaries{cannot}")


def schedules(spec: Spec, client: redis.Redis) -> Check:
    from bootstrap.jobs import admin

    stored = {row["id"] for row in admin.schedule_states(client, spec)}
    missing = [s.id for s in spec.schedules if s.id not in stored]
    if missing:
        return Check(
            "schedules",
            False,
            f"{len(missing)} of {len(spec.schedules)} declared schedule(s) not in Redis: {', '.join(missing)}",
            "run `bootstrap apply` (it stores them; a Redis that lost its data needs it too)",
        )
    return Check("schedules", True, f"all {len(spec.schedules)} declared schedule(s) stored")


def workers(
    spec: Spec,
    client: redis.Redis,
    wiring: Callable[[Spec], str] | None = None,
    queues: frozenset[str] | None = None,
) -> Check:
    """Every queue (of `queues`, when named) has a live worker (a heartbeat seen lately: `status`
    lists the same) running the wiring generated from this spec (the files workers run: a schedule's
    change leaves them)."""
    from bootstrap.jobs import admin

    expected = (wiring or _worker_wiring_hash)(spec)
    live = admin.workers(client, spec)
    trouble: list[str] = []
    fixes: list[str] = []
    checked = [queue for queue in spec.queues if queues is None or queue.name in queues]
    for queue in checked:
        mine = [w for w in live if w["queue"] == queue.name]
        current = [w for w in mine if w.get("wiring") == expected]
        if any(not w.get("blocked") for w in current):
            continue
        if current:  # alive, beating from its watchdog's thread: a handler blocks the event loop
            trouble.append(f"queue {queue.name}: the event loop of its worker(s) is blocked {current[0]['blocked']}")
            fix = ("a handler blocks the event loop (a blocking call in an async def): await instead, or make it a "
                   "plain def (it then runs in a thread); the worker's log names the line")
        elif mine:
            other = ", ".join(sorted({str(w.get("wiring")) for w in mine}))
            trouble.append(f"queue {queue.name}: {len(mine)} worker(s) run wiring {other}, not the spec's {expected}")
            fix = "run `bootstrap generate` if the package is stale, then restart the workers"
        else:
            trouble.append(f"queue {queue.name}: no live worker (none seen in the last {admin.WORKER_SEEN_WITHIN:g}s)")
            named = "".join(f" {q.name}" for q in checked) if queues is not None else ""
            fix = f"start the workers (`python -m {spec.codegen.package}.worker{named}`, or `bootstrap up`)"
        if fix not in fixes:
            fixes.append(fix)
    if trouble:
        return Check("workers", False, "; ".join(trouble), "; ".join(fixes))
    if queues is not None:
        names = ", ".join(queue.name for queue in checked)
        return Check("workers", True, f"queue(s) {names} have a live worker on wiring {expected}")
    return Check("workers", True, f"every queue ({len(spec.queues)}) has a live worker on wiring {expected}")


def scheduler(spec: Spec, client: redis.Redis, wiring: Callable[[Spec], str] | None = None) -> Check:
    """With schedules declared, a live scheduler (a heartbeat seen lately) runs the wiring generated
    from this spec: else no schedule fires, or one on a queue added since does not."""
    from bootstrap.jobs import admin

    enabled = [s for s in spec.schedules if s.enabled]
    if not enabled:
        said = "declared" if not spec.schedules else "enabled"
        return Check("scheduler", True, f"no schedules {said}: none needed")
    expected = (wiring or _wiring_hash)(spec)
    live = admin.schedulers(client, spec)
    current = [s for s in live if s.get("wiring") == expected]
    if current:
        return Check("scheduler", True, f"{len(current)} live scheduler(s) on wiring {expected}")
    command = f"taskiq scheduler {spec.codegen.package}.scheduler:scheduler {spec.codegen.package}.tasks"
    if live:
        other = ", ".join(sorted({str(s.get("wiring")) for s in live}))
        return Check("scheduler", False, f"{len(live)} scheduler(s) run wiring {other}, not the spec's {expected}",
                     "run `bootstrap generate` if the package is stale, then restart the scheduler")  # fmt: skip
    return Check(
        "scheduler",
        False,
        f"no live scheduler (none seen in the last {admin.WORKER_SEEN_WITHIN:g}s): the {len(enabled)} "
        "enabled schedule(s) do not fire",
        f"start the scheduler (`{command}` in the generated folder, or `bootstrap up`)",
    )


def _wiring_hash(spec: Spec) -> str:
    from bootstrap.codegen.render import wiring_hash  # jinja2: loaded only when a check needs it

    return wiring_hash(spec)


def _worker_wiring_hash(spec: Spec) -> str:
    from bootstrap.codegen.render import wiring_hash

    return wiring_hash(spec, workers=True)


def drift(spec: Spec, db: Database[Any], client: redis.Redis) -> Check:
    """The engine's plan, less the eviction policy (its own check above) and notes about the server
    rather than the spec (`shard:` off a mongos)."""
    from bootstrap.engine.apply import full_plan

    plan = full_plan(spec, db, client, Options(impact=False))
    ops = [op for op in plan.operations if op.is_drift and not _about_eviction(op)]
    if not ops:
        kept = [op for op in plan.operations if op.kind == "kept"]
        also = f" ({len(kept)} undeclared index(es) kept, as plan keeps them)" if kept else ""
        return Check("drift", True, f"MongoDB and Redis match the spec{also}")
    shown = [f"{op.symbol} {op.group}: {line}" for op in ops[:5] for line in op.describe()[:1]]
    more = f" (and {len(ops) - 5} more)" if len(ops) > 5 else ""
    return Check("drift", False, f"{len(ops)} difference(s) from the spec: {'; '.join(shown)}{more}",
                 _drift_fix(spec, db))  # fmt: skip


def _drift_fix(spec: Spec, db: Database[Any]) -> str:
    """`apply`, unless the last apply was of another spec: then this config may be the previous
    release's (a rollout applies the next one first), and applying it would undo that."""
    from bootstrap.engine.history import TOOL, last_apply

    try:
        last = last_apply(db)
    except PyMongoError:
        last = None
    if last is None or last.get("specHash") in (None, spec.hash()) or last.get("outcome") != "success":
        return "run `bootstrap plan` to see them, then `bootstrap apply`"
    if last.get("tool") != TOOL:  # another release hashes the same files otherwise: an upgrade, not a rollout
        return (f"the last apply was by {last.get('tool') or 'an earlier bootstrap'}, this is {TOOL} (each release "
                "hashes the spec its own way): run `bootstrap plan` to see them, then `bootstrap apply`")
    when = last["startedAt"].strftime("%Y-%m-%d %H:%M:%S UTC") if last.get("startedAt") else "?"
    return (f"the last apply ({when}, by {last.get('user', '?')}@{last.get('host', '?')}) was of another spec "
            f"({last['specHash']}, this config is {spec.hash()}): if that is the next release, this process runs "
            "the previous one and the difference goes once it is replaced (do not apply this config); else run "
            "`bootstrap plan` to see them, then `bootstrap apply`")  # fmt: skip


def _about_eviction(op: Operation) -> bool:
    """An operation on the eviction policy (reported by `eviction`), blocked or not."""
    wanted = op.wanted if isinstance(op, Blocked) else op
    return isinstance(wanted, SetEvictionPolicy | PolicyUnknown)


def _ms(started: float) -> str:
    return f"{(time.perf_counter() - started) * 1000:.0f} ms"
