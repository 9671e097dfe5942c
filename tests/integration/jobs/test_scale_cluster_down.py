"""Workers on a Redis Cluster through the loss of a master (found by the scale walk on Redis 7).

- The workers of queues on the healthy masters exited 1 with `redis.exceptions.ClusterDownError: The
  cluster is down` from their XREADGROUP: a cluster answers CLUSTERDOWN on every node while a slot
  has no master (`cluster-require-full-coverage yes`, the default), for the node timeout and the
  election of a replica, or until a master without a replica is back. The launcher restarts such a
  worker, and stops every worker after 5 restarts a minute.
- With a replica per master, the master the URL names killed: its replica took over within 2 s and
  the cluster was ok again, but the worker of a queue on another (healthy) master kept failing its
  reads with "Error 111 connecting to <the URL's node>" and read nothing for 10 s and more: the
  client goes back to the node it was started from. docs/scaling.md says the URL "names any node".
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bootstrap.jobs.broker import StreamBroker
from bootstrap.jobs.runtime import QueueRuntime
from bootstrap.layout.keys import QueueKeys
from bootstrap.spec.model import ConnectRetry
from tests.support.redis_topologies import ClusterNode, RedisCluster, wait_until
from tests.support.runtimes import in_process_runtime

PREFIX = "down"


@pytest.fixture
def replicated(tmp_path: Path) -> Iterator[RedisCluster]:
    made = RedisCluster(tmp_path / "replicated", replicas=1, node_timeout_ms=1000)
    made.start()
    yield made
    made.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    made = RedisCluster(tmp_path / "cluster", node_timeout_ms=500)
    made.start()
    yield made
    made.stop()


def _serves(port: int, key: str) -> bool:
    """The node at `port` is the master of `key`'s slot (another answers MOVED)."""
    client = redis.Redis(port=port)
    try:
        client.type(key)
    except redis.ResponseError:
        return False
    finally:
        client.close()
    return True


def _queue_on(node: ClusterNode) -> str:
    return next(q for q in (f"q{i}" for i in range(100)) if _serves(node.port, QueueKeys(PREFIX, q).stream))


def _runtime(cluster: RedisCluster, queue: str) -> QueueRuntime:
    return in_process_runtime(
        cluster.uri, PREFIX, queue, mode="cluster", connect_timeout=1.0, socket_timeout=1.0,
        connect_retry=ConnectRetry(retries=3, delay=0.2, max_delay=1.0),
    )  # fmt: skip



def test_reading_goes_on_while_another_master_is_down(cluster: RedisCluster) -> None:
    _, owner, other = cluster.nodes  # the URL names the first; the queue lives on the second
    queue = _queue_on(owner)
    probe = redis.Redis(port=owner.port, decode_responses=True)  # alive throughout

    async def run() -> BaseException | None:
        broker = StreamBroker(_runtime(cluster, queue))
        await broker.startup()
        reading = asyncio.ensure_future(anext(broker.deliveries()))
        await asyncio.sleep(0.5)
        other.kill()
        try:
            await asyncio.to_thread(
                wait_until, lambda: probe.cluster("INFO")["cluster_state"] == "fail", 10, "the cluster to see it"
            )
            # redis-py retries CLUSTERDOWN a few times (reinitialising from the nodes it knows) before
            # raising it: here within about 5 s. Reads should go on failing and be retried meanwhile.
            for _ in range(80):
                if reading.done():
                    break
                await asyncio.sleep(0.1)
            return reading.exception() if reading.done() else None
        finally:
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
            await broker.shutdown()

    try:
        error = asyncio.run(run())
    finally:
        probe.close()
    assert error is None, f"the read loop ended: {error!r}"


def test_reading_goes_on_once_the_url_node_failed_over(replicated: RedisCluster) -> None:
    url_node, owner, _ = replicated.nodes
    queue = _queue_on(owner)
    stream = QueueKeys(PREFIX, queue).stream
    probe = redis.Redis(port=owner.port, decode_responses=True)  # alive throughout

    def read_up_to(entry: str) -> bool:
        [group] = probe.xinfo_groups(stream)
        return bool(group["last-delivered-id"] == entry)

    async def run() -> bool:
        broker = StreamBroker(_runtime(replicated, queue))
        await broker.startup()
        reading = asyncio.ensure_future(anext(broker.deliveries()))
        await asyncio.sleep(0.5)
        url_node.kill()
        try:
            await asyncio.to_thread(
                wait_until, lambda: probe.cluster("INFO")["cluster_state"] == "fail", 10, "the cluster to see it"
            )
            await asyncio.to_thread(
                wait_until, lambda: probe.cluster("INFO")["cluster_state"] == "ok", 20, "the replica to take over"
            )
            entry = probe.xadd(stream, {"data": "not a job"})  # read (then set aside as not a job)
            for _ in range(80):
                if read_up_to(entry):
                    return True
                await asyncio.sleep(0.1)
            return False
        finally:
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
            await broker.shutdown()

    try:
        read = asyncio.run(run())
    finally:
        probe.close()
    assert read, "the worker read nothing within 8 s of the cluster being ok again"
