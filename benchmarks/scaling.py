"""Scaling numbers for docs/scaling.md: jobs/s of one worker process, and what a Redis node spends
per job, on a standalone Redis and on a 3-master Redis Cluster (all on this machine).

Run: .venv/bin/python benchmarks/scaling.py [N]   (default N = 5000 jobs per queue)

For each mode it enqueues N no-op jobs into each of three queues (whose hash tags fall on three
different masters of the cluster), then runs one worker process per queue (concurrency 50), one
queue at a time and then all three together. It prints jobs/s from the first job taken to the last
acknowledgement, and the Redis CPU time (user + sys, from INFO cpu, over every node) spent per job:
1 s / that is how many jobs/s one Redis core carries when Redis, not the workers, is the limit.
On a machine with few cores the workers and the servers share them: the per-node figure is the one
that carries over to bigger machines.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from redis.cluster import RedisCluster as ClusterClient  # noqa: E402

from bootstrap.jobs.contract import Runtime  # noqa: E402
from bootstrap.jobs.launcher import worker_command  # noqa: E402
from bootstrap.jobs.wiring import enqueue  # noqa: E402
from bootstrap.local.servers import MongoServer, RedisServer  # noqa: E402
from tests.support.jobs_project import Project, make_project  # noqa: E402
from tests.support.redis_topologies import RedisCluster  # noqa: E402

QUEUE = """
  {name}:
    visibility_timeout: 5m
    concurrency: 50
    retention:
      completed: {{max_age: 1h, max_count: 200}}
      failed: {{max_age: 24h, max_count: 1000}}
    tasks:
      noop-{name}: {{handler: "handlers_for_tests:noop"}}
"""
QUEUES = ("bench-a", "bench-b", "bench-d")  # their hash tags fall on masters 2, 1 and 3


def add_queues(project: Project) -> None:
    path = project.config / "queues.yaml"
    path.write_text(path.read_text().rstrip("\n") + "\n" + "".join(QUEUE.format(name=q) for q in QUEUES))


def redis_cpu(ports: list[int]) -> float:
    total = 0.0
    for port in ports:
        client = redis.Redis(port=port)
        info: Any = client.info("cpu")
        client.close()
        total += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    return total


def run(
    project: Project, client: redis.Redis, ports: list[int], queues: tuple[str, ...], n: int
) -> tuple[float, float]:
    """jobs/s for `queues` worked together (one worker process each), and Redis CPU seconds per job."""
    os.environ.update(project.env)
    runtime = Runtime.from_spec(project.spec())
    for queue in queues:
        asyncio.run(enqueue(runtime, queue, f"noop-{queue}", {"n": 1}, count=n))
    env = {**os.environ, **project.env, "BOOTSTRAP_LOG_LEVEL": "WARNING",
           "PYTHONPATH": os.pathsep.join([str(project.root), str(project.root / "generated")])}  # fmt: skip
    cpu_before = redis_cpu(ports)
    workers = [
        subprocess.Popen(worker_command(runtime, project.package, queue), env=env, cwd=project.root,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        for queue in queues
    ]  # fmt: skip
    streams = [project.queue_keys(queue).stream for queue in queues]
    first, deadline = None, time.monotonic() + 600
    while time.monotonic() < deadline:
        left = sum(int(client.xlen(stream)) for stream in streams)
        if first is None and left < n * len(queues):
            first = time.monotonic()
        if left == 0:
            break
        time.sleep(0.005)
    else:
        raise RuntimeError("not drained in 600 s")
    last = time.monotonic()
    cpu = redis_cpu(ports) - cpu_before
    for worker in workers:
        os.killpg(worker.pid, 9)
        worker.wait(30)
    for queue in queues:
        keys = project.queue_keys(queue)
        assert int(client.zcard(keys.records("failed"))) == 0
    assert first is not None
    jobs = n * len(queues)
    return jobs / (last - first), cpu / jobs


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    tmp = Path(tempfile.mkdtemp(prefix="bench-scaling-"))
    mongo, standalone = MongoServer(tmp / "mongo"), RedisServer(tmp / "redis", appendonly=False)
    cluster = RedisCluster(tmp / "cluster")
    mongo.start()
    standalone.start()
    cluster.start()
    try:
        print(f"scaling benchmark: {n} no-op jobs per queue, one worker process per queue (concurrency 50), "
              f"{os.cpu_count()} cores shared by workers and servers")  # fmt: skip
        print(f"{'mode':<12}{'queues':>8}{'jobs/s':>10}{'Redis CPU/job':>15}{'=> jobs/s per Redis core':>26}")
        for mode, url, ports in (
            ("standalone", standalone.uri, [standalone.port]),
            ("cluster", cluster.uri, [node.port for node in cluster.nodes]),
        ):
            for queues in ((QUEUES[0],), QUEUES):
                generator = make_project(tmp / f"{mode}-{len(queues)}", mongo.uri + "bench", url, add_queues, mode)
                project = next(generator)
                client = (cast(redis.Redis, ClusterClient.from_url(url)) if mode == "cluster"
                          else redis.Redis.from_url(url))  # fmt: skip
                try:
                    rate, cpu = run(project, client, ports, queues, n)
                finally:
                    client.close()
                    generator.close()
                print(f"{mode:<12}{len(queues):>8}{rate:>10.0f}{cpu * 1e6:>13.1f}us{1 / cpu:>26.0f}", flush=True)
        check = cast(redis.Redis, ClusterClient.from_url(cluster.uri))
        homes = {q: check.keyslot(f"x:queue:{{{q}}}:jobs") for q in QUEUES}  # type: ignore[attr-defined]
        check.close()
        print(f"cluster slots of the queues: {homes} (16384 slots split evenly over 3 masters)")
    finally:
        cluster.stop()
        standalone.stop()
        mongo.stop()


if __name__ == "__main__":
    main()
