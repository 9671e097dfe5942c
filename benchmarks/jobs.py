"""Job throughput with shipped defaults (per-job logging at INFO on): enqueue N no-op jobs in bulk into
one queue, then process them with one worker at several concurrencies, at-least-once on (stream +
consumer group, acknowledgement after the job, job records with retention).

Run: .venv/bin/python benchmarks/jobs.py [N] [--rounds R] [--compare-bullmq] [--compare-taskiq]
[--metrics-cost] (default N = 10000, R = 1). `--compare-bullmq` runs BullMQ 5 (benchmarks/bullmq/throughput.js, after
`npm install` there) on the same Redis with the seed's job options, alternating with ours round by
round, and prints the ratio; `--compare-taskiq` does the same with plain taskiq + taskiq-redis.
`--metrics-cost` adds our worker with Prometheus metrics on (alternated with it off; each run checks
the scraped count) and prints the metrics hooks' CPU per job, measured in process.

Measured the way BullMQ's throughput.js measures: enqueue timed after the producer is connected;
processing from the first delivery (the consumer group's first hand-out) to the last job
acknowledged. The worker is started through bootstrap.local.processes (it dies with this script), its
log lines go to a file (as under a process manager), and its memory is the RSS of all its processes,
summed (peak: VmHWM summed). CPU us/job is the worker's user + system CPU time from the first
delivery to the last acknowledgement, per job: on a loaded machine (where the rates are set by
the scheduler as much as by the code) it is the steadier measure of what a job costs. Redis us/job
is the Redis server's CPU time over the same span, per job (for plain taskiq: over the worker's whole
run): what one job costs the Redis that every worker of a deployment shares.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from taskiq import TaskiqMessage  # noqa: E402

from bootstrap.jobs.broker import StreamBroker  # noqa: E402
from bootstrap.jobs.contract import Runtime  # noqa: E402
from bootstrap.jobs.launcher import worker_command  # noqa: E402
from bootstrap.jobs.runtime import queue_runtime  # noqa: E402
from bootstrap.jobs.wiring import task_labels  # noqa: E402
from bootstrap.local.processes import Child  # noqa: E402
from bootstrap.local.servers import MongoServer, RedisServer, free_port  # noqa: E402
from tests.support.jobs_project import Project, make_project  # noqa: E402

BULLMQ = ROOT / "benchmarks" / "bullmq"
CONCURRENCIES = (1, 10, 50)

BENCH_QUEUE = """
  bench:
    visibility_timeout: 5m
    concurrency: {concurrency}
    retention:
      completed: {{max_age: 1h, max_count: 200}}
      failed: {{max_age: 24h, max_count: 1000}}
    tasks:
      noop-job: {{handler: "handlers_for_tests:noop"}}
"""

Result = dict[str, float]


def add_bench_queue(concurrency: int) -> Callable[[Project], None]:
    def edit(project: Project) -> None:
        path = project.config / "queues.yaml"
        path.write_text(path.read_text().rstrip("\n") + "\n" + BENCH_QUEUE.format(concurrency=concurrency))

    return edit


def tree(pid: int) -> list[int]:
    """`pid` and every process under it."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            children = []
        todo.extend(int(c) for c in children)
    return found


def memory_mib(pid: int) -> tuple[float, float]:
    """(RSS, peak RSS) of `pid` and its descendants, summed, in MiB."""
    rss = peak = 0
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    peak += int(line.split()[1])
        except OSError:
            pass
    return rss / 1024, peak / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` and its descendants so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def last_delivered(client: redis.Redis, stream: str) -> Any:
    """The id the consumer group handed out last (0-0 before any)."""
    groups = client.xinfo_groups(stream)
    return groups[0]["last-delivered-id"] if groups else b"0-0"


def redis_pid(client: redis.Redis) -> int:
    return int(client.info("server")["process_id"])


def first_delivery_and_drain(
    client: redis.Redis, stream: str, group: str, pid: int, before: Any, timeout: float = 300
) -> tuple[float, float, float, float]:
    """(when the group first handed a job out, when the stream was empty: all acknowledged and
    deleted, the worker's and Redis's CPU seconds in between). `before`: the group's last-delivered id before
    the worker started (an earlier round leaves it past 0-0). Polled every 2 ms until the first
    delivery, then every 5 ms: the poller shares the machine with the worker and must not slow it
    down."""
    deadline = time.monotonic() + timeout
    first, cpu, server, redis_cpu = None, 0.0, redis_pid(client), 0.0
    while time.monotonic() < deadline:
        if first is None and last_delivered(client, stream) != before:
            first, cpu, redis_cpu = time.monotonic(), cpu_seconds(pid), cpu_seconds(server)
        if first is not None and client.xlen(stream) == 0:
            return first, time.monotonic(), cpu_seconds(pid) - cpu, cpu_seconds(server) - redis_cpu
        time.sleep(0.002 if first is None else 0.005)
    raise RuntimeError(f"{stream} not drained in {timeout}s ({client.xlen(stream)} left)")


async def enqueue_connected(runtime: Runtime, n: int) -> float:
    """Enqueue `n` no-op jobs in bulk (1000 per Lua call) with a connected broker; jobs/s."""
    labels = task_labels(runtime.queue("bench").task("noop-job"))
    marker = f"job-id-{uuid.uuid4().hex}"
    template = TaskiqMessage(task_id=marker, task_name="noop-job", labels=labels, args=[], kwargs={"n": 1})
    head, _, tail = template.model_dump_json().encode().partition(json.dumps(marker).encode())
    base = uuid.uuid4().hex
    broker = StreamBroker(queue_runtime(runtime, "bench"))
    await broker.startup()
    try:
        started = time.perf_counter()
        await broker.kick_data(head + json.dumps(f"{base}-{i}").encode() + tail for i in range(n))
        return n / (time.perf_counter() - started)
    finally:
        await broker.shutdown()



def scrape_completed(port: int) -> float:
    """bootstrap_jobs_completed_total of the worker serving metrics on `port`."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "bootstrap_jobs_completed_total"
    )


def hooks_cost(jobs: int = 100_000) -> float:
    """Microseconds of CPU the metrics hooks add to one completed job, in this process (no I/O:
    what the worker runs per job besides the job; steadier than throughput on a busy machine)."""
    from bootstrap.jobs.metrics_middleware import MetricsMiddleware
    from bootstrap.jobs.runtime import QueueRuntime

    runtime = QueueRuntime("bench", "bench", "redis://127.0.0.1:1/0", 300.0, 10, 3600.0, 200, 86400.0, 1000)
    metrics = MetricsMiddleware(StreamBroker(runtime), port=1)  # never started: counting only
    messages = [TaskiqMessage(task_id=f"j{i}", task_name="noop-job", labels={}, args=[], kwargs={}) for i in range(999)]
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for i in range(jobs):
            message = messages[i % 999]
            metrics.started(message)
            metrics.completed(message, 0.001)
        best = min(best, time.perf_counter() - started)
    return best / jobs * 1e6


def run_bootstrap(
    project: Project, redis_url: str, n: int, log_level: str, profile: Path | None = None, metrics: bool = False
) -> Result:
    """`metrics`: the worker serves Prometheus metrics (as the shipped config declares), else none."""
    os.environ.update(project.env)
    runtime = Runtime.from_spec(project.spec())
    keys = project.queue_keys("bench")
    client = redis.Redis.from_url(redis_url)
    client.delete(keys.records("completed"), keys.records("failed"))
    enqueue_rate = asyncio.run(enqueue_connected(runtime, n))
    assert client.xlen(keys.stream) == n
    env = {
        **os.environ,
        **project.env,
        "BOOTSTRAP_LOG_LEVEL": log_level,
        "PYTHONPATH": os.pathsep.join([str(project.root), str(project.root / "generated")]),
    }
    port = free_port() if metrics else 0
    if metrics:  # the base port such that the bench queue's worker serves on `port`
        env["BOOTSTRAP_METRICS_PORT"] = str(port - 1 - runtime.queue_names.index("bench"))
    log_path = project.root / "worker.log"
    log_path.unlink(missing_ok=True)
    command = worker_command(runtime, project.package, "bench")
    if profile is not None:  # collapsed stacks of every worker process, for flame graphs or grep
        spy = Path(sys.executable).with_name("py-spy")
        command = [str(spy), "record", "--format", "raw", "--rate", "250", "--subprocesses", "--nonblocking",
                   "-o", str(profile), "--", *command]  # fmt: skip
    before = last_delivered(client, keys.stream)
    worker = Child("bench worker", command, env=env, cwd=project.root, log_path=log_path)
    worker.start()
    try:
        assert worker.pid is not None
        first, last, cpu, redis_cpu = first_delivery_and_drain(client, keys.stream, "workers", worker.pid, before)
        rss, peak = memory_mib(worker.pid)
        # Honest numbers: every job ran (none dropped or failed) and was logged; the records prove it.
        deadline = time.monotonic() + 10
        while client.zcard(keys.records("completed")) < min(n, 200) and time.monotonic() < deadline:
            time.sleep(0.01)
        completed, failed = client.zcard(keys.records("completed")), client.zcard(keys.records("failed"))
        assert completed == min(n, 200) and failed == 0, (completed, failed)
        assert client.xpending(keys.stream, "workers")["pending"] == 0
        if metrics:  # the metrics counted every job
            assert scrape_completed(port) == n, scrape_completed(port)
    finally:
        if profile is not None and worker.pid is not None:  # py-spy writes its profile on SIGINT
            os.kill(worker.pid, signal.SIGINT)
            worker.wait(20)
        worker.stop(15)
        client.close()
    logged = sum(1 for line in log_path.read_text(errors="replace").splitlines() if "job completed:" in line)
    if log_level.upper() in ("DEBUG", "INFO"):
        assert logged == n, f"{logged} 'job completed' lines for {n} jobs"
    return {"enqueue": enqueue_rate, "process": n / (last - first), "cpu": cpu * 1e6 / n, "rss": rss, "peak": peak,
            "redis": redis_cpu * 1e6 / n}


def run_bullmq(redis_url: str, n: int, concurrency: int) -> Result:
    """BullMQ 5: producer (addBulk, the seed's job options), then one worker; throughput.js prints JSON."""
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    common = [redis_url, queue, str(n), str(concurrency)]
    produced = subprocess.run(["node", "throughput.js", "produce", *common], cwd=BULLMQ, capture_output=True,
                              text=True, check=True)  # fmt: skip
    enqueue_rate = json.loads(produced.stdout)["enqueue"]
    out = Path(tempfile.mkstemp(prefix="bullmq-", suffix=".json")[1])
    with redis.Redis.from_url(redis_url) as client:
        server = redis_pid(client)
    worker = Child("bullmq worker", ["node", "throughput.js", "work", *common, str(out)], cwd=BULLMQ)
    worker.start()
    try:
        assert worker.pid is not None
        deadline = time.monotonic() + 300
        cpu = redis_cpu = None
        while not out.read_text().startswith("{") and time.monotonic() < deadline:
            if worker.poll() is not None:
                raise RuntimeError(f"the BullMQ worker exited with {worker.returncode}")
            if cpu is None and out.read_text() == "started":  # written when it ran its first job
                cpu, redis_cpu = cpu_seconds(worker.pid), cpu_seconds(server)
            time.sleep(0.002 if cpu is None else 0.005)
        rss, peak = memory_mib(worker.pid)
        used = cpu_seconds(worker.pid) - (cpu or 0.0)
        redis_used = cpu_seconds(server) - (redis_cpu or 0.0)
        result = json.loads(out.read_text())
    finally:
        worker.stop(15)
        out.unlink(missing_ok=True)
    return {"enqueue": enqueue_rate, "process": result["process"], "cpu": used * 1e6 / n, "rss": rss, "peak": peak,
            "redis": redis_used * 1e6 / n}


BASELINE_APP = textwrap.dedent("""
    from taskiq_redis import RedisStreamBroker
    import os
    broker = RedisStreamBroker(os.environ["REDIS_URL"], queue_name=os.environ["BENCH_QUEUE"], consumer_id="0",
                               unacknowledged_lock_timeout=60)

    @broker.task(task_name="noop")
    async def noop(n: int) -> None:
        return None
""")


def run_taskiq(tmp: Path, redis_url: str, n: int, concurrency: int) -> Result:
    """Plain taskiq + taskiq-redis (RedisStreamBroker, taskiq's own worker), logging at WARNING."""
    app = tmp / "baseline"
    app.mkdir(exist_ok=True)
    (app / "baseline_app.py").write_text(BASELINE_APP)
    queue = f"baseline-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url)
    env = {**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": str(app), "BENCH_QUEUE": queue}
    code = textwrap.dedent(f"""
        import asyncio, time
        from baseline_app import broker, noop
        async def main():
            await broker.startup()
            started = time.perf_counter()
            for _ in range({n}):
                await noop.kiq(1)
            print({n} / (time.perf_counter() - started))
            await broker.shutdown()
        asyncio.run(main())
    """)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    enqueue_rate = float(out.stdout.strip())
    command = [sys.executable, "-m", "taskiq", "worker", "baseline_app:broker", "--workers", "1",
               "--max-async-tasks", str(concurrency), "--log-level", "WARNING"]  # fmt: skip
    server = redis_pid(client)
    redis_cpu = cpu_seconds(server)
    worker = Child("taskiq worker", command, env=env, cwd=app, log_path=app / "worker.log")
    worker.start()
    try:
        # taskiq-redis does not delete acknowledged entries: done when the group has been handed the
        # stream's last entry and nothing is pending.
        last_id = client.xinfo_stream(queue)["last-generated-id"]
        deadline = time.monotonic() + 300
        first = None
        while time.monotonic() < deadline:
            groups = client.xinfo_groups(queue)
            info = groups[0] if groups else {"last-delivered-id": b"0-0", "pending": 0}
            if first is None and info["last-delivered-id"] != b"0-0":
                first = time.monotonic()
            if info["last-delivered-id"] == last_id and info["pending"] == 0:
                break
            time.sleep(0.002 if first is None else 0.005)
        last = time.monotonic()
        assert worker.pid is not None
        rss, peak = memory_mib(worker.pid)
        cpu = cpu_seconds(worker.pid)  # start-up included
        redis_cpu = cpu_seconds(server) - redis_cpu
    finally:
        worker.stop(15)
        client.delete(queue)
        client.close()
    return {"enqueue": enqueue_rate, "process": n / (last - (first or last)), "cpu": cpu * 1e6 / n, "rss": rss,
            "peak": peak, "redis": redis_cpu * 1e6 / n}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=1, help="alternated runs per system and concurrency")
    parser.add_argument("--concurrency", default=",".join(map(str, CONCURRENCIES)))
    parser.add_argument("--log-level", default="INFO", help="the workers' BOOTSTRAP_LOG_LEVEL (shipped: INFO)")
    parser.add_argument("--compare-bullmq", action="store_true")
    parser.add_argument("--compare-taskiq", action="store_true")
    parser.add_argument("--profile", type=Path, help="record the worker with py-spy into PROFILE-cN.txt")
    parser.add_argument("--metrics-cost", action="store_true",
                        help="also run the bootstrap worker with Prometheus metrics on; print the hooks' CPU per job")
    args = parser.parse_args()
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    if args.compare_bullmq and not (BULLMQ / "node_modules" / "bullmq").is_dir():
        sys.exit(f"BullMQ is not installed: run `npm install` in {BULLMQ}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    mongo, redis_server = MongoServer(tmp / "mongo"), RedisServer(tmp / "redis", appendonly=False)
    mongo.start()
    redis_server.start()
    on = "bootstrap, metrics on"
    systems = (["bootstrap"] + [on] * args.metrics_cost + ["BullMQ 5"] * args.compare_bullmq
               + ["taskiq + taskiq-redis"] * args.compare_taskiq)  # fmt: skip
    if args.metrics_cost:
        print(f"metrics hooks: {hooks_cost():.2f} us of CPU per completed job (best of 5 x 100,000, in process)")
    results: dict[tuple[str, int], list[Result]] = {}
    try:
        print(f"jobs benchmark: N = {args.n} no-op jobs, one worker, logging {args.log_level}; {redis_server.uri}")
        print(f"{'system':<24}{'conc.':>6}{'round':>6}{'enqueue/s':>11}{'process/s':>11}{'CPU us/job':>11}"
              f"{'Redis us/job':>13}{'RSS MiB':>9}{'peak MiB':>9}")  # fmt: skip
        for concurrency in concurrencies:
            gen = make_project(tmp / f"c{concurrency}", mongo.uri + f"bench{concurrency}", redis_server.uri,
                               add_bench_queue(concurrency))  # fmt: skip
            project = next(gen)
            try:
                for round_ in range(args.rounds):
                    order = systems if round_ % 2 == 0 else systems[::-1]  # alternated: neither always first
                    for name in order:
                        if name == "bootstrap":
                            profile = None
                            if args.profile is not None:
                                profile = args.profile.with_name(f"{args.profile.name}-c{concurrency}.txt")
                            result = run_bootstrap(project, redis_server.uri, args.n, args.log_level, profile)
                        elif name == on:
                            result = run_bootstrap(project, redis_server.uri, args.n, args.log_level, metrics=True)
                        elif name == "BullMQ 5":
                            result = run_bullmq(redis_server.uri, args.n, concurrency)
                        else:
                            result = run_taskiq(tmp, redis_server.uri, args.n, concurrency)
                        results.setdefault((name, concurrency), []).append(result)
                        print(f"{name:<24}{concurrency:>6}{round_ + 1:>6}{result['enqueue']:>11.0f}"
                              f"{result['process']:>11.0f}{result['cpu']:>11.0f}{result['redis']:>13.0f}{result['rss']:>9.1f}"
                              f"{result['peak']:>9.1f}", flush=True)  # fmt: skip
            finally:
                gen.close()
        print()
        for concurrency in concurrencies:
            ours = statistics.median(r["process"] for r in results[("bootstrap", concurrency)])
            ours_cpu = statistics.median(r["cpu"] for r in results[("bootstrap", concurrency)])
            ours_redis = statistics.median(r["redis"] for r in results[("bootstrap", concurrency)])
            line = (f"concurrency {concurrency}: bootstrap {ours:.0f} jobs/s (median), {ours_cpu:.0f} us CPU/job, "
                    f"Redis {ours_redis:.0f} us/job")  # fmt: skip
            for other in systems[1:]:
                theirs = statistics.median(r["process"] for r in results[(other, concurrency)])
                ratios = [o["process"] / t["process"] for o, t in zip(results[("bootstrap", concurrency)],
                                                                      results[(other, concurrency)], strict=True)]
                target = " (target 2x: met)" if other == "BullMQ 5" and ours >= 2 * theirs else (
                    " (target 2x: NOT met)" if other == "BullMQ 5" else "")
                theirs_cpu = statistics.median(r["cpu"] for r in results[(other, concurrency)])
                theirs_redis = statistics.median(r["redis"] for r in results[(other, concurrency)])
                line += (f"; {other} {theirs:.0f} jobs/s, {theirs_cpu:.0f} us CPU/job, Redis {theirs_redis:.0f} us/job;"
                         f" rate ratio {ours / theirs:.2f}"
                         f"{target} [per round {min(ratios):.2f}-{max(ratios):.2f}], CPU per job ratio "
                         f"{theirs_cpu / ours_cpu:.2f}")  # fmt: skip
            print(line)
        peak = max(r["peak"] for r in results[("bootstrap", concurrencies[-1])])
        print(f"worker memory (all its processes, peak RSS summed): bootstrap {peak:.1f} MiB", end="")
        if args.compare_bullmq:
            print(f"; BullMQ {max(r['peak'] for r in results[('BullMQ 5', concurrencies[-1])]):.1f} MiB", end="")
        print()
    finally:
        mongo.stop()
        redis_server.stop()


if __name__ == "__main__":
    main()
