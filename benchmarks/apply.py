"""Benchmark `converge.apply` against the "ODM start-up" way of creating collections and indexes.

Run from the repository root:

    .venv/bin/python benchmarks/apply.py

It starts its own embedded MongoDB wire-protocol server (SecantusDB, `bootstrap.local.servers.MongoServer`)
in a temporary folder and stops it at the end, also on error. Nothing else is needed; no other
server is touched.

Workloads:

* shipped   -- the shipped `config/` folder (9 collections, 23 indexes);
* generated -- a generated folder: the shipped bootstrap.yaml, queues.yaml and schedules.yaml plus
  100 collection files (c000 ... c099), each with 9 fields of varied types and 5 indexes (compound,
  unique, unique+sparse, sparse, and a TTL on a date field). It is checked once with
  `bootstrap validate` before use.

Modes, each measured in a fresh database, 3 repetitions (median time shown):

* cold  -- the database is empty: everything is created.
* no-op -- the same again right after: nothing needs to change.

Columns:

* bootstrap ms / cmds -- wall time of `converge.apply(spec, db, Options(), ...)` and the number of
  commands it sent (counted with a pymongo CommandListener on the client passed in; the client is
  connected and warmed up before timing, so handshakes and pings are not counted). "w" is how many of
  those commands are writes (create, createIndexes, collMod, insert, update, delete, ...).
* baseline ms / cmds -- the way ODMs do it at every start-up, one collection at a time:
  `db.create_collection(name, validator=...)` (pymongo sends listCollections, then create; on an
  existing collection it raises CollectionInvalid, which is caught, so the validator is *not*
  converged), then one `Collection.create_index` per index with the options `index_model` gives.
  Its "no-op" run makes exactly the same calls again.
* ratio -- baseline / bootstrap, for time and for commands (> 1 means bootstrap is cheaper).

After each repetition a plan is made against the database each way left behind: it must be empty
(both ways end in exactly the declared state), else the benchmark stops.

Then come the exact commands sent (a Counter of command names; insert/update/delete are shown with
their target: `bootstrap_locks` is the apply lock, `bootstrap_applies` the apply record), the time
`spec.hash()` takes (computed once in every apply that changes something), and the round-trip
targets, with the constant in "collections + constant" split out of the measured commands:

* no-op: 1 listIndexes per collection + 1 listCollections (target: collections + 2);
* cold: create + createIndexes per collection + 5 fixed (2 listCollections -- one plan before and one
  under the lock -- the lock's update and delete, the apply record's insert). As "collections +
  constant" this is NOT MET: the per-collection cost is 2, so cold = 2 x collections + 5.

Exit status: 0, or 1 when the no-op target fails.
All times are wall-clock milliseconds on this machine against the embedded server; they are
comparable with each other, not with a production MongoDB.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from generated_config import generate_config  # a sibling script, not a package
from pymongo import MongoClient, monitoring
from pymongo.database import Database
from pymongo.errors import CollectionInvalid

from bootstrap.engine import apply as applying
from bootstrap.engine.mongo import plan as converge
from bootstrap.engine.mongo.compare import index_model
from bootstrap.engine.mongo.validator import collection_validator
from bootstrap.engine.ops import Options
from bootstrap.local.servers import MongoServer, RedisServer
from bootstrap.spec.load import load_spec
from bootstrap.spec.model import Spec

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "config"
REPEATS = 3
GENERATED_COLLECTIONS = 100
WRITE_COMMANDS = frozenset({"create", "createIndexes", "collMod", "dropIndexes", "drop", "insert", "update",
                            "delete", "findAndModify"})
BOOKKEEPING = frozenset({"insert", "update", "delete", "find", "findAndModify"})
PER_COLLECTION = frozenset({"create", "createIndexes", "listIndexes", "collMod", "dropIndexes"})


class Commands(monitoring.CommandListener):
    """Names of the commands started on the client, from the moment of the last `reset`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.names: list[str] = []

    def reset(self) -> None:
        with self._lock:
            self.names = []

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self.names)

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        if name in BOOKKEEPING:  # say which collection: the lock, the apply record, or data
            name = f"{name} {event.command.get(name)}"
        with self._lock:
            self.names.append(name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@dataclass
class Sample:
    ms: float
    names: list[str]

    @property
    def total(self) -> int:
        return len(self.names)

    @property
    def writes(self) -> int:
        return sum(1 for name in self.names if name.split()[0] in WRITE_COMMANDS)


@dataclass
class Result:
    cold: list[Sample] = field(default_factory=list)
    noop: list[Sample] = field(default_factory=list)


# --- the generated workload ---------------------------------------------------------------------

def validate_config(config_dir: Path, uri: str) -> None:
    """`bootstrap validate` on the generated folder, once: it must be a valid config."""
    cli = Path(sys.executable).parent / "bootstrap"
    env = {**os.environ, "MONGODB_URI": uri}
    done = subprocess.run([str(cli), "validate", "--config", str(config_dir)], env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"generated config is not valid (exit {done.returncode}):\n"
                         f"{done.stdout}{done.stderr}")


# --- the two ways of converging -----------------------------------------------------------------

REDIS: dict[str, redis.Redis] = {}  # apply converges Redis too; its commands are not counted here


def bootstrap_apply(spec: Spec, db: Database[Any]) -> None:
    applying.apply(spec, db, REDIS["client"], Options(), lambda line: None)


def baseline_apply(spec: Spec, db: Database[Any]) -> None:
    """What an ODM does at start-up: per collection, create it (ignore "exists"), then createIndex
    once per index."""
    for coll in spec.collections:
        # Exists already (CollectionInvalid): an ODM carries on; the validator is left as it is.
        with contextlib.suppress(CollectionInvalid):
            db.create_collection(coll.name, validator=collection_validator(coll),
                                 validationLevel=coll.validation_level,
                                 validationAction=coll.validation_action)
        for index in coll.indexes:
            model = index_model(index)
            db[coll.name].create_index(list(model.keys), name=model.name, **model.options)


def measure(run: Callable[[], None], commands: Commands) -> Sample:
    commands.reset()
    started = time.perf_counter()
    run()
    elapsed = (time.perf_counter() - started) * 1000
    return Sample(elapsed, commands.snapshot())


def run_workload(label: str, spec: Spec, client: MongoClient[dict[str, Any]],
                 commands: Commands) -> tuple[Result, Result]:
    """REPEATS x (cold, then no-op) for both ways, alternating, each repetition in fresh databases."""
    ours, theirs = Result(), Result()
    for rep in range(-1, REPEATS):  # repetition -1 warms up the server and the client: not recorded
        for result, how, tag in ((ours, bootstrap_apply, "b"), (theirs, baseline_apply, "o")):
            name = f"bench_{label}_{tag}{rep + 1}"
            client.drop_database(name)
            db = client[name]
            cold = measure(lambda db=db, how=how: how(spec, db), commands)
            noop = measure(lambda db=db, how=how: how(spec, db), commands)
            # Both ways must leave the same thing behind: what the spec declares (not timed).
            left = converge.make_plan(spec, db, Options()).changes
            if left:
                raise SystemExit(f"{label}: {how.__name__} left {len(left)} change(s) undone: {left[:3]}")
            client.drop_database(name)
            if rep >= 0:
                result.cold.append(cold)
                result.noop.append(noop)
    return ours, theirs


def hash_ms(spec: Spec) -> float:
    """Median time of spec.hash(): computed on every apply that changes something (for its record)."""
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        spec.hash()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


# --- reporting ----------------------------------------------------------------------------------

def median_ms(samples: list[Sample]) -> float:
    return statistics.median(s.ms for s in samples)


def commands_of(samples: list[Sample]) -> tuple[int, int]:
    """(total, writes) of the runs; they are the same in every repetition, else the maximum."""
    return max(s.total for s in samples), max(s.writes for s in samples)


def spread(samples: list[Sample]) -> str:
    totals = sorted({s.total for s in samples})
    return "" if len(totals) == 1 else f" (command counts varied: {totals})"


def print_table(rows: list[tuple[str, str, list[Sample], list[Sample]]]) -> None:
    header = (f"{'workload':<10} {'mode':<6} {'bootstrap ms':>12} {'cmds (w)':>10} "
              f"{'baseline ms':>12} {'cmds (w)':>11} {'time ratio':>10} {'cmd ratio':>9}")
    print(header)
    print("-" * len(header))
    for workload, mode, ours, theirs in rows:
        b_ms, o_ms = median_ms(ours), median_ms(theirs)
        (b_n, b_w), (o_n, o_w) = commands_of(ours), commands_of(theirs)
        cmd_ratio = f"{o_n / b_n:.2f}" if b_n else "n/a"
        print(f"{workload:<10} {mode:<6} {b_ms:>12.1f} {f'{b_n} ({b_w})':>10} "
              f"{o_ms:>12.1f} {f'{o_n} ({o_w})':>11} {o_ms / b_ms:>10.2f} {cmd_ratio:>9}"
              f"{spread(ours)}{spread(theirs)}")


def breakdown(samples: list[Sample]) -> str:
    counts = Counter(samples[0].names)
    return f"{samples[0].total} = " + " + ".join(f"{name} {n}" for name, n in counts.most_common())


def split(sample: Sample, collections: int) -> tuple[int, int, str]:
    """(per-collection commands, fixed commands, the fixed ones listed) of one bootstrap run."""
    counts = Counter(sample.names)
    per = sum(n for name, n in counts.items() if name in PER_COLLECTION)
    fixed = {name: n for name, n in counts.items() if name not in PER_COLLECTION}
    listed = ", ".join(f"{name} {n}" for name, n in fixed.items()) or "none"
    return per, sum(fixed.values()), listed


def check_targets(label: str, spec: Spec, ours: Result) -> bool:
    """Print the round-trip targets for one workload; True when the no-op target holds."""
    n = len(spec.collections)
    noop, cold = ours.noop[0], ours.cold[0]
    per, fixed, listed = split(noop, n)
    noop_ok = noop.total <= n + 2
    print(f"  [{'PASS' if noop_ok else 'FAIL'}] no-op apply on {label} config: {noop.total} round trips "
          f"<= collections + constant ({n} + 2) = {n + 2}")
    print(f"         = {per} per-collection ({per / n:g} per collection: listIndexes) "
          f"+ {fixed} fixed ({listed})")
    per, fixed, listed = split(cold, n)
    literal_ok = cold.total <= n + fixed
    print(f"  [{'PASS' if literal_ok else 'NOT MET'}] cold apply on {label} config: {cold.total} commands "
          f"<= collections + constant ({n} + {fixed}) = {n + fixed}")
    print(f"         = {per} per-collection ({per / n:g} per collection: create + createIndexes) "
          f"+ {fixed} fixed ({listed})")
    print(f"         so cold = {per / n:g} x collections + {fixed} (create and createIndexes each name one "
          "collection: 2 per collection with a validator and indexes is the floor)")
    return noop_ok


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bootstrap-bench-") as tmp:
        server = MongoServer(Path(tmp) / "mongo")
        redis_server = RedisServer(Path(tmp) / "redis", appendonly=False)
        try:
            server.start()
            redis_server.start()
            REDIS["client"] = redis.Redis.from_url(redis_server.uri)
            return run(server, Path(tmp))
        finally:
            if "client" in REDIS:
                REDIS["client"].close()
            redis_server.stop()
            server.stop()


def run(server: MongoServer, tmp: Path) -> int:
    env = {**os.environ, "MONGODB_URI": f"{server.uri}bench"}
    generated = generate_config(tmp / "generated" / "config", GENERATED_COLLECTIONS)
    validate_config(generated, env["MONGODB_URI"])
    workloads = [("shipped", load_spec(SHIPPED, env)), ("generated", load_spec(generated, env))]

    commands = Commands()
    client: MongoClient[dict[str, Any]] = MongoClient(server.uri, event_listeners=[commands], tz_aware=True)
    try:
        client.admin.command("ping")  # connect and handshake before anything is timed
        started = time.perf_counter()
        results = {label: run_workload(label, spec, client, commands) for label, spec in workloads}
        total_s = time.perf_counter() - started
    finally:
        client.close()

    print(f"bootstrap converge.apply vs ODM-style baseline on SecantusDB ({server.uri}); "
          f"median of {REPEATS} runs after 1 warm-up, fresh database per run")
    for label, spec in workloads:
        indexes = sum(len(c.indexes) for c in spec.collections)
        print(f"  {label}: {len(spec.collections)} collections, {indexes} indexes")
    print()
    rows = []
    for label, _spec in workloads:
        ours, theirs = results[label]
        rows += [(label, "cold", ours.cold, theirs.cold), (label, "no-op", ours.noop, theirs.noop)]
    print_table(rows)
    print("  cmds (w): commands sent (of which writes); ratios are baseline / bootstrap "
          "(> 1: bootstrap cheaper)")

    for label, _spec in workloads:
        ours, theirs = results[label]
        print()
        print(f"commands sent, {label} config (Counter of command names, first measured run):")
        print(f"  bootstrap cold : {breakdown(ours.cold)}")
        print(f"  bootstrap no-op: {breakdown(ours.noop)}")
        print(f"  baseline cold  : {breakdown(theirs.cold)}")
        print(f"  baseline no-op : {breakdown(theirs.noop)}")
    print()
    print("bootstrap cold, shipped config, in order:")
    print("  " + ", ".join(results["shipped"][0].cold[0].names))

    print()
    print("client-side cost inside a changing apply: spec.hash() (for the apply record), median ms:")
    for label, spec in workloads:
        print(f"  {label}: {hash_ms(spec):.1f}")

    print()
    print("targets:")
    ok = True
    for label, spec in workloads:
        ok &= check_targets(label, spec, results[label][0])
    print()
    print(f"total measuring time: {total_s:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
