"""Job throughput: enqueue N no-op jobs in bulk into one queue, then process them with one worker
process at several concurrencies, at-least-once on (stream + consumer group, acknowledgement after
the job, job records with retention).

Run: .venv/bin/python benchmarks/jobs.py [N]   (default N = 10000)
     .venv/bin/python benchmarks/jobs.py [N] --metrics-cost   (the worker with Prometheus metrics off
     and on, alternated, per concurrency: rates and the cost per job in microseconds)

Prints, per concurrency: enqueue jobs/s (pipelined bulk enqueue), processing jobs/s (from the
worker's first job to the last acknowledgement) and the worker's peak memory (max RSS, MiB). It
also runs the same load through plain taskiq + taskiq-redis (RedisStreamBroker, taskiq's own
worker) as the baseline, so the ratio comes from one run on one machine. The bootstrap worker serves
Prometheus metrics, as the shipped config does.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from bootstrap.jobs.contract import Runtime  # noqa: E402
from bootstrap.jobs.launcher import worker_command  # noqa: E402
from bootstrap.jobs.wiring import enqueue  # noqa: E402
from bootstrap.local.servers import MongoServer, RedisServer  # noqa: E402
from tests.support.jobs_project import Project, make_project  # noqa: E402

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


def add_bench_queue(concurrency: int):  # type: ignore[no-untyped-def]
    def edit(project: Project) -> None:
        path = project.config / "queues.yaml"
        path.write_text(path.read_text().rstrip("\n") + "\n" + BENCH_QUEUE.format(concurrency=concurrency))

    return edit


def wait_drained(client: redis.Redis, stream: str, n: int, timeout: float = 300) -> tuple[float, float]:
    """Seconds from the first job taken to the stream being empty (all acknowledged and deleted)."""
    deadline = time.monotonic() + timeout
    first = None
    while time.monotonic() < deadline:
        length = client.xlen(stream)
        if first is None and length < n:
            first = time.monotonic()
        if length == 0:
            assert first is not None
            return first, time.monotonic()
        time.sleep(0.005)
    raise RuntimeError(f"{stream} not drained in {timeout}s ({client.xlen(stream)} left)")


def peak_rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def child_pids(pid: int) -> list[int]:
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return []
    return [int(p) for p in out.split()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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


def run_bootstrap(
    tmp: Path, mongo: MongoServer, redis_server: RedisServer, n: int, concurrency: int, metrics: bool = True
) -> dict[str, float]:
    """`metrics`: the worker serves Prometheus metrics (the shipped default), or has none."""
    name = f"b{concurrency}-{'m' if metrics else 'n'}{uuid.uuid4().hex[:6]}"
    gen = make_project(tmp / name, mongo.uri + name.replace("-", "_"), redis_server.uri, add_bench_queue(concurrency))
    project = next(gen)
    try:
        os.environ.update(project.env)
        runtime = Runtime.from_spec(project.spec())
        stream = project.queue_keys("bench").stream
        started = time.perf_counter()
        asyncio.run(enqueue(runtime, "bench", "noop-job", {"n": 1}, count=n))
        enqueue_rate = n / (time.perf_counter() - started)
        client = redis.Redis.from_url(redis_server.uri)
        assert client.xlen(stream) == n
        env = {
            **os.environ,
            **project.env,
            "BOOTSTRAP_LOG_LEVEL": "WARNING",
            "PYTHONPATH": os.pathsep.join([str(project.root), str(project.root / "generated")]),
        }
        port = free_port() if metrics else 0
        base = port - 1 - runtime.queue_names.index("bench") if metrics else 0
        env["BOOTSTRAP_METRICS_PORT"] = str(base)  # the bench worker serves on `port`
        command = worker_command(runtime, project.package, "bench")
        worker = subprocess.Popen(
            command,
            env=env,
            cwd=project.root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        first, last = wait_drained(client, stream, n)
        memory = max((peak_rss_mib(p) for p in child_pids(worker.pid)), default=float("nan"))
        # Honest numbers: every job ran (none dropped or failed) — the records prove it.
        time.sleep(0.1)
        keys = project.queue_keys("bench")
        completed, failed = client.zcard(keys.records("completed")), client.zcard(keys.records("failed"))
        assert completed == min(n, 200) and failed == 0, (completed, failed)
        assert client.xpending(stream, "workers")["pending"] == 0
        if metrics:  # the metrics counted every job
            assert scrape_completed(port) == n, scrape_completed(port)
        os.killpg(worker.pid, 9)
        worker.wait(30)
        client.close()
        return {"enqueue": enqueue_rate, "process": n / (last - first), "memory": memory}
    finally:
        gen.close()


BASELINE_APP = textwrap.dedent("""
    from taskiq_redis import RedisStreamBroker
    import os
    broker = RedisStreamBroker(os.environ["REDIS_URL"], queue_name="baseline", consumer_id="0",
                               unacknowledged_lock_timeout=60)

    @broker.task(task_name="noop")
    async def noop(n: int) -> None:
        return None
""")


def run_baseline(tmp: Path, redis_server: RedisServer, n: int, concurrency: int) -> dict[str, float]:
    app = tmp / f"baseline{concurrency}"
    app.mkdir()
    (app / "baseline_app.py").write_text(BASELINE_APP)
    client = redis.Redis.from_url(redis_server.uri)
    client.delete("baseline")
    env = {**os.environ, "REDIS_URL": redis_server.uri, "PYTHONPATH": str(app)}
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
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "taskiq",
            "worker",
            "baseline_app:broker",
            "--workers",
            "1",
            "--max-async-tasks",
            str(concurrency),
            "--log-level",
            "WARNING",
        ],
        env=env,
        cwd=app,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    # taskiq-redis does not delete acknowledged entries: done when the group has been handed the
    # stream's last entry and nothing is pending (works on Redis 6.2, which lacks entries-read).
    last_id = client.xinfo_stream("baseline")["last-generated-id"]
    deadline = time.monotonic() + 300
    first = None
    while time.monotonic() < deadline:
        info = client.xinfo_groups("baseline")[0]
        if first is None and info["last-delivered-id"] != b"0-0":
            first = time.monotonic()
        if info["last-delivered-id"] == last_id and info["pending"] == 0:
            break
        time.sleep(0.005)
    last = time.monotonic()
    memory = max((peak_rss_mib(p) for p in child_pids(worker.pid)), default=float("nan"))
    os.killpg(worker.pid, 9)
    worker.wait(30)
    client.close()
    return {"enqueue": enqueue_rate, "process": n / (last - (first or last)), "memory": memory}


def hooks_cost(jobs: int = 100_000) -> float:
    """Microseconds of CPU the metrics hooks add to one completed job, in this process (no I/O:
    what the worker runs per job besides the job; steadier than throughput on a busy machine)."""
    from taskiq import TaskiqMessage

    from bootstrap.jobs.broker import StreamBroker
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


def metrics_cost(tmp: Path, mongo: MongoServer, redis_server: RedisServer, n: int, rounds: int = 3) -> None:
    """The per-job cost of metrics: the hooks' CPU time, then the bootstrap worker with metrics off and
    on, alternated."""
    print(f"metrics hooks: {hooks_cost():.2f} us of CPU per completed job (best of 5 x 100,000, in process)")
    print(f"metrics cost: N = {n} no-op jobs, one worker process, {rounds} alternated rounds of off / on")
    print(f"{'concurrency':>12}{'off jobs/s':>12}{'on jobs/s':>12}{'ratio':>8}{'us/job':>9}")
    for concurrency in (1, 10, 50):
        rates: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(rounds):
            for metrics in (False, True):
                rates[metrics].append(run_bootstrap(tmp, mongo, redis_server, n, concurrency, metrics)["process"])
        off, on = statistics.median(rates[False]), statistics.median(rates[True])
        print(f"{concurrency:>12}{off:>12.0f}{on:>12.0f}{on / off:>8.2f}{(1 / on - 1 / off) * 1e6:>9.1f}", flush=True)
        print(f"{'':>12}off runs: {', '.join(f'{r:.0f}' for r in rates[False])}; "
              f"on runs: {', '.join(f'{r:.0f}' for r in rates[True])}")  # fmt: skip


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 10_000
    if "--metrics-cost" in sys.argv:
        tmp = Path(tempfile.mkdtemp(prefix="bench-metrics-"))
        mongo, redis_server = MongoServer(tmp / "mongo"), RedisServer(tmp / "redis", appendonly=False)
        mongo.start()
        redis_server.start()
        try:
            metrics_cost(tmp, mongo, redis_server, n)
        finally:
            mongo.stop()
            redis_server.stop()
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    mongo, redis_server = MongoServer(tmp / "mongo"), RedisServer(tmp / "redis", appendonly=False)
    mongo.start()
    redis_server.start()
    try:
        print(f"jobs benchmark: N = {n} no-op jobs, one worker process; Redis {redis_server.uri}")
        print(f"{'system':<26}{'concurrency':>12}{'enqueue/s':>12}{'process/s':>12}{'peak MiB':>10}")
        results = {}
        for concurrency in (1, 10, 50):
            for name, run in (
                ("bootstrap", lambda c=concurrency: run_bootstrap(tmp, mongo, redis_server, n, c)),
                ("taskiq + taskiq-redis", lambda c=concurrency: run_baseline(tmp, redis_server, n, c)),
            ):
                result = run()
                results[(name, concurrency)] = result
                print(
                    f"{name:<26}{concurrency:>12}{result['enqueue']:>12.0f}{result['process']:>12.0f}"
                    f"{result['memory']:>10.1f}",
                    flush=True,
                )
        print()
        for concurrency in (1, 10, 50):
            ours, theirs = results[("bootstrap", concurrency)], results[("taskiq + taskiq-redis", concurrency)]
            print(
                f"concurrency {concurrency}: processing ratio bootstrap / baseline = "
                f"{ours['process'] / theirs['process']:.2f}, enqueue ratio = {ours['enqueue'] / theirs['enqueue']:.1f}"
            )
    finally:
        mongo.stop()
        redis_server.stop()


if __name__ == "__main__":
    main()
