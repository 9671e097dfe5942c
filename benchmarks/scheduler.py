"""Benchmark the scheduler: how late does it fire, and does it fire each slot exactly once?

Run from the repository root:

    .venv/bin/python benchmarks/scheduler.py [--seconds 30]

It starts its own embedded MongoDB wire-protocol server and Redis server (`bootstrap.local.servers`) in a
temporary folder and stops them at the end, also on error. Nothing else is needed; no other server
is touched.

For each run a fresh project is made the way the integration tests make one (the shipped config with
its own Redis key prefix, `delta-sync-schedule` changed to `every: 1s`, applied and generated), then
ONE and then THREE `taskiq scheduler` processes are started on the generated package and left
running for --seconds after the first fire. Then they get SIGTERM and the delta-sync stream is read
(no worker runs, so every fired job is still in it).

Columns:

* fires -- stream entries (jobs enqueued) whose slot is in the measured window;
* slots -- the 1 s slots from the first to the last slot seen;
* dup -- fires beyond one per slot (must be 0);
* missed -- slots in that range that were never fired (must be 0);
* p50 / p99 / max ms -- fire lateness: the enqueue time minus the slot time. The enqueue time is the
  millisecond part of the stream entry id (the Redis server clock at the XADD), the slot time comes
  from the job's labels (`slot`, epoch seconds; also in the task id `<schedule>@<slot>`). It includes
  the Taskiq loop waking at the next second boundary plus reading the state and the claim script.
  With ~30 samples p99 is close to the maximum;
* by replica -- how many of those fires each scheduler process claimed (from their logs).

All times are wall-clock on this machine; the scheduler processes, Redis and this script share its
cores.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bootstrap.local.servers import MongoServer, RedisServer  # noqa: E402
from tests.support.jobs_project import Project, fires, make_project, wait_for  # noqa: E402

SCHEDULE = "delta-sync-schedule"
QUEUE = "delta-sync"


@dataclass
class Result:
    replicas: int
    fires: int
    slots: int
    duplicates: int
    missed: int
    lateness_ms: list[float]
    by_replica: list[int]


def read_fires(project: Project) -> list[tuple[float, float]]:
    """(slot, enqueued) of each job in the delta-sync stream, epoch seconds."""
    found = fires(project, QUEUE)
    for fire in found:
        assert fire.task_id.startswith(f"{SCHEDULE}@"), fire.task_id
    return [(fire.slot, fire.enqueued) for fire in found]


def run(workdir: Path, mongo: MongoServer, redis_server: RedisServer, replicas: int, seconds: float) -> Result:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        projects: Generator[Project, None, None] = make_project(  # type: ignore[assignment]
            workdir / f"r{replicas}",
            f"{mongo.uri}bench_{replicas}",
            redis_server.uri,
            lambda p: p.edit("schedules.yaml", "every: 15m", "every: 1s"),
        )
        project = next(projects)
    try:
        processes = [project.start_scheduler(f"s{i}", update_interval=10) for i in range(replicas)]
        first = wait_for(lambda: read_fires(project), 60, "the first fire", interval=0.2)[0][0]
        time.sleep(max(0.0, first + seconds + 0.5 - time.time()))
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(15)
        measured = [(slot, at) for slot, at in read_fires(project) if first <= slot <= first + seconds]
        window = {when(first + i) for i in range(int(seconds) + 1)}
        by_replica = [
            len([s for s in re.findall(rf"schedule {SCHEDULE} fired for (\S+) ", project.log(f"s{i}")) if s in window])
            for i in range(replicas)
        ]
    finally:
        projects.close()  # kills anything left
    counts = Counter(slot for slot, _ in measured)
    slots = sorted(counts)
    expected = {slots[0] + i for i in range(round(slots[-1] - slots[0]) + 1)} if slots else set()
    return Result(
        replicas=replicas,
        fires=len(measured),
        slots=len(expected),
        duplicates=sum(n - 1 for n in counts.values()),
        missed=len(expected - set(slots)),
        lateness_ms=[(at - slot) * 1000 for slot, at in measured],
        by_replica=by_replica,
    )


def when(slot: float) -> str:
    """A slot as the scheduler writes it in task ids and logs."""
    return datetime.fromtimestamp(slot, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main() -> int:
    seconds = 30.0
    if "--seconds" in sys.argv:
        seconds = float(sys.argv[sys.argv.index("--seconds") + 1])
    with tempfile.TemporaryDirectory(prefix="bench-scheduler-") as tmp:
        workdir = Path(tmp)
        mongo = MongoServer(workdir / "mongo")
        redis_server = RedisServer(workdir / "redis")
        results = []
        try:
            mongo.start()
            redis_server.start()
            for replicas in (1, 3):
                print(f"running {replicas} scheduler process(es) for {seconds:g} s ...", flush=True)
                results.append(run(workdir, mongo, redis_server, replicas, seconds))
        finally:
            redis_server.stop()
            mongo.stop()
    print()
    print(f"Schedule `{SCHEDULE}` every 1 s, {seconds:g} s measured per run (slots from the first fire on).")
    print("lateness = enqueue time (stream entry id, Redis clock) - slot time; dup/missed must be 0.")
    print()
    header = f"{'replicas':>8} {'fires':>6} {'slots':>6} {'dup':>4} {'missed':>6} {'p50 ms':>8} {'p99 ms':>8} "
    print(header + f"{'max ms':>8}  by replica")
    for r in results:
        print(
            f"{r.replicas:>8} {r.fires:>6} {r.slots:>6} {r.duplicates:>4} {r.missed:>6} "
            f"{percentile(r.lateness_ms, 50):>8.1f} {percentile(r.lateness_ms, 99):>8.1f} "
            f"{max(r.lateness_ms, default=float('nan')):>8.1f}  {'/'.join(map(str, r.by_replica))}"
        )
    return 0 if all(r.duplicates == 0 and r.missed == 0 and r.fires for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
