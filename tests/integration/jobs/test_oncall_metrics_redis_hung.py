"""On call: Redis hangs (a stopped process, a network partition that drops packets). A scrape of a
worker's metrics then reads the queue depths from Redis and waits for its socket timeout, twice:
10 s per scrape, measured by the on-call drill (`curl` of a worker's /metrics with the Redis of
`bootstrap up` stopped by SIGSTOP). That is Prometheus's default `scrape_timeout` (10s): the scrape
fails, the worker's target shows as down (as if the worker had died) and
`bootstrap_queue_read_ok 0`, the metric the README offers for exactly this case, is never stored.
A scrape should answer well within the default scrape timeout, saying `read_ok 0`."""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from pathlib import Path

from bootstrap.local.servers import RedisServer, free_port
from tests.support.jobs_project import Project, add_test_queue, open_project, wait_for


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        return str(response.read().decode())


def _listening(port: int) -> bool:
    try:
        _scrape(port)
    except OSError:
        return False
    return True


def test_a_scrape_answers_quickly_when_redis_hangs(tmp_path: Path, mongo_uri: str) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        with open_project(tmp_path, mongo_uri, server.uri, add_test_queue) as project:
            port = _worker_on_a_free_port(project)
            wait_for(lambda: _listening(port), 60, "the worker's metrics")
            assert server.pid is not None
            os.killpg(server.pid, signal.SIGSTOP)  # its group: the server runs under a watcher
            try:
                time.sleep(2.5)  # past the depths' 2 s cache: the next scrape reads Redis
                started = time.monotonic()
                text = _scrape(port)
                took = time.monotonic() - started
            finally:
                os.killpg(server.pid, signal.SIGCONT)
    finally:
        server.stop()
    assert "bootstrap_queue_read_ok 0.0" in text
    assert took < 5, f"a scrape took {took:.1f}s with Redis hung (Prometheus's default scrape_timeout: 10s)"


def _worker_on_a_free_port(project: Project) -> int:
    index = project.spec().queues.index(project.spec().queue("test-jobs"))
    port = free_port()
    project.env["BOOTSTRAP_METRICS_PORT"] = str(port - 1 - index)  # the test-jobs worker gets `port`
    project.start_worker("test-jobs")
    return port
