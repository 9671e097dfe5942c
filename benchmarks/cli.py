"""Whole-process timings of `bootstrap validate`, `plan` and `apply`, against the previous release.

Usage: python benchmarks/cli.py [--runs N] [--previous REV] [--collections N]

Starts its own MongoDB (SecantusDB, `bootstrap.local.servers.MongoServer`) and redis-server in a
temporary folder, stops them at the end (also on error), and touches nothing else. The previous
release (default: f376c9d, the last commit before the restructuring) is taken with `git archive` into
the same temporary folder and run with the same interpreter and PYTHONPATH=<it>/src; this tree runs
with PYTHONPATH=<this repository>/src.

Each command runs as a whole process (`python -m bootstrap COMMAND --config config/`: start-up,
imports, the work, closing connections, interpreter exit), the current and the previous version and
`python -c pass` alternated within each round, N rounds (default 15); the median is shown, with its
ratio to `python -c pass` and to the previous release. For scale, `python -c "import pymongo, redis"`
is timed too: plan and apply need both drivers, whatever else they do.

* validate   -- the shipped config;
* plan       -- no-op: against a database and Redis the shipped config was applied to;
* apply      -- no-op: the same;
* apply cold -- a fresh database every run (and a flushed Redis database): everything is created.

Then the server's own time for the cold apply's writes (`create` and `createIndexes` of the shipped
collections, sent directly with pymongo, median of N fresh databases), and spec loading in process at
a generated config of --collections collections (default 500; benchmarks/generated_config.py),
milliseconds per collection, for both versions. Last, whether each target is met:

* no-op apply, plan and validate: each under 0.30 s;
* cold apply: under 0.45 s plus the server's own time;
* spec loading: under 1 ms per collection at 500 collections.

Exit status: 0 (the numbers are the result), or 1 when a command fails. Times depend on the machine
and its load: compare the ratios.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from bootstrap.local.servers import MongoServer, RedisServer
from bootstrap.spec.load import load_spec
from bootstrap.spec.model import Index

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config"
PREVIOUS = "f376c9d"
TARGETS = {"validate": 0.30, "plan": 0.30, "apply": 0.30}
COLD_TARGET = 0.45  # plus the server's own time for the writes
LOAD_TARGET_MS = 1.0  # per collection, at 500 collections

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generated_config import generate_config  # noqa: E402  (a sibling script, not a package)

LOAD_SCRIPT = """
import statistics, sys, time
from pathlib import Path
from bootstrap.spec.load import load_spec
config, runs = Path(sys.argv[1]), int(sys.argv[2])
load_spec(config, {})  # warm up: imports, compiled schemas
times = []
for _ in range(runs):
    started = time.perf_counter()
    load_spec(config, {})
    times.append(time.perf_counter() - started)
print(statistics.median(times))
"""


@dataclass
class Version:
    name: str
    src: Path
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Timings:
    samples: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def add(self, version: str, command: str, seconds: float) -> None:
        self.samples.setdefault((version, command), []).append(seconds)

    def median(self, version: str, command: str) -> float:
        return statistics.median(self.samples[(version, command)])


def previous_release(rev: str, target: Path) -> Path:
    """`src/` of `rev`, unpacked under `target` (git archive: the repository is not changed)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev, "src"],
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target / "src"


def timed(argv: list[str], env: dict[str, str]) -> float:
    """Seconds from start to exit of one process; it must exit 0."""
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return seconds


def bootstrap(command: str) -> list[str]:
    return [sys.executable, "-m", "bootstrap", command, "--config", str(CONFIG)]


def server_write_seconds(uri: str, runs: int) -> float:
    """Median time the server takes for the cold apply's writes: `create` and one `createIndexes` per
    shipped collection, in a fresh database each run."""
    spec = load_spec(CONFIG, {"MONGODB_URI": f"{uri}x"})
    client: MongoClient[dict[str, Any]] = MongoClient(uri)
    try:
        times = []
        for run in range(runs):
            db = client[f"server_time_{run}"]
            started = time.perf_counter()
            for coll in spec.collections:
                db.command("create", coll.name)
                if coll.indexes:
                    db.command("createIndexes", coll.name, indexes=[_index_model(ix) for ix in coll.indexes])
            times.append(time.perf_counter() - started)
            client.drop_database(db.name)
        return statistics.median(times)
    finally:
        client.close()


def _index_model(index: Index) -> dict[str, Any]:
    model: dict[str, Any] = {"key": dict(index.keys), "name": index.name}
    if index.unique:
        model["unique"] = True
    if index.sparse:
        model["sparse"] = True
    if index.ttl is not None:
        model["expireAfterSeconds"] = index.ttl
    if index.partial is not None:
        model["partialFilterExpression"] = dict(index.partial)
    return model


def load_ms_per_collection(version: Version, config: Path, collections: int, runs: int) -> float:
    done = subprocess.run([sys.executable, "-c", LOAD_SCRIPT, str(config), str(runs)], env=version.env,
                          capture_output=True, text=True, check=True)
    return float(done.stdout.strip()) * 1000 / collections


def flush(redis_url: str) -> Callable[[], None]:
    import redis

    def run() -> None:
        client = redis.Redis.from_url(redis_url)
        try:
            client.flushdb()
        finally:
            client.close()

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=15, help="rounds; the median is shown (default 15)")
    parser.add_argument("--previous", default=PREVIOUS, help=f"the release to compare with (default {PREVIOUS})")
    parser.add_argument("--collections", type=int, default=500, help="collections for the spec-loading number")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, ExitStack() as stack:
        tmp = Path(scratch)
        mongo = MongoServer(tmp / "mongo")
        redis_server = RedisServer(tmp / "redis", appendonly=False)
        for server in (mongo, redis_server):
            server.start()
            stack.callback(server.stop)
        return run(args, tmp, mongo, redis_server)


def run(args: argparse.Namespace, tmp: Path, mongo: MongoServer, redis_server: RedisServer) -> int:
    # As users run it: byte-code caches written (the warm-up writes those of both trees) and used.
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BOOTSTRAP_", "MONGODB_", "REDIS_"))}
    for name in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"):
        base.pop(name, None)
    noop = {"MONGODB_URI": f"{mongo.uri}bench_noop", "REDIS_URL": redis_server.uri.removesuffix("/0") + "/0"}
    cold_redis = redis_server.uri.removesuffix("/0") + "/1"
    versions = [
        Version("current", ROOT / "src"),
        Version("previous", previous_release(args.previous, tmp / "previous")),
    ]
    for version in versions:
        version.env = {**base, "PYTHONPATH": str(version.src), **noop}

    # Warm-up (byte-code caches of both trees) and the no-op state: applied once, then both versions
    # must plan no change, or their no-op numbers would not be no-ops.
    for version in versions:
        timed(bootstrap("validate"), version.env)
    timed(bootstrap("apply"), versions[0].env)
    for version in versions:
        timed([*bootstrap("plan"), "--detailed-exitcode"], version.env)

    timings = Timings()
    commands = ["validate", "plan", "apply", "apply cold"]
    for round_number in range(args.runs):
        timings.add("python", "pass", timed([sys.executable, "-c", "pass"], base))
        timings.add("python", "drivers", timed([sys.executable, "-c", "import pymongo, redis"], base))
        for command in commands:
            for version in versions if round_number % 2 == 0 else versions[::-1]:
                env = version.env
                if command == "apply cold":
                    flush(cold_redis)()
                    env = {**env, "MONGODB_URI": f"{mongo.uri}cold_{version.name}_{round_number}",
                           "REDIS_URL": cold_redis}
                timings.add(version.name, command, timed(bootstrap(command.split()[0]), env))
        print(f"round {round_number + 1}/{args.runs} done", file=sys.stderr, flush=True)

    server_seconds = server_write_seconds(mongo.uri, args.runs)
    with tempfile.TemporaryDirectory() as scratch:
        config = generate_config(Path(scratch) / "config", args.collections)
        load_ms = {v.name: load_ms_per_collection(v, config, args.collections, 5) for v in versions}

    python, drivers = timings.median("python", "pass"), timings.median("python", "drivers")
    print(f"\nmedian of {args.runs} alternated runs, whole process; python -c pass: {python:.3f} s; "
          f"python -c 'import pymongo, redis' (what plan and apply cannot do without): {drivers:.3f} s")
    print(f"{'command':<12}{'current s':>10}{'previous s':>11}{'cur/pass':>9}{'prev/pass':>10}"
          f"{'cur/prev':>9}  target")
    met: list[tuple[str, bool]] = []
    for command in commands:
        current, previous = timings.median("current", command), timings.median("previous", command)
        if command == "apply cold":
            limit = COLD_TARGET + server_seconds
            target = f"< {COLD_TARGET:.2f} s + server {server_seconds:.3f} s = {limit:.3f} s"
        else:
            limit = TARGETS[command]
            target = f"< {limit:.2f} s"
        ok = current < limit
        met.append((command, ok))
        print(f"{command:<12}{current:>10.3f}{previous:>11.3f}{current / python:>9.1f}{previous / python:>10.1f}"
              f"{current / previous:>9.2f}  {target}: {'met' if ok else 'NOT MET'}")
    ok = load_ms["current"] < LOAD_TARGET_MS
    met.append(("spec loading", ok))
    print(f"\nspec loading at {args.collections} collections (in process, median of 5): "
          f"current {load_ms['current']:.3f} ms per collection, previous {load_ms['previous']:.3f} ms "
          f"({load_ms['current'] / load_ms['previous']:.2f}x); target < {LOAD_TARGET_MS:g} ms: "
          f"{'met' if ok else 'NOT MET'}")
    print(f"load average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    print("targets: " + ", ".join(f"{name} {'met' if good else 'NOT MET'}" for name, good in met))
    return 0


if __name__ == "__main__":
    sys.exit(main())
