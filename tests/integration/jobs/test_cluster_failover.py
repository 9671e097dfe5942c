"""Redis Cluster failover on Redis 7 (three masters, a replica each): enqueues the cluster
acknowledged survive a manual failover of the queue's master, and then the SIGKILL of the new master
(its replica, the old master, takes over). Redis 6.2.5 stalled replication after the first failover
and lost acknowledged writes in the second step, so these run on Redis 7 (BOOTSTRAP_TEST_REDIS7,
prepared by .ci/redis7)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
import redis
from redis.cluster import RedisCluster as ClusterClient
from redis.crc import key_slot
from taskiq import BrokerMessage

from bootstrap.jobs.broker import StreamBroker
from bootstrap.jobs.runtime import QueueRuntime
from bootstrap.layout.keys import QueueKeys
from bootstrap.spec.model import ConnectRetry
from tests.support.redis_topologies import ClusterNode, RedisCluster, redis7_server

REDIS7 = redis7_server()
PREFIX, QUEUE = "failover", "q"
STEP = 150  # enqueues acknowledged between one event and the next


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    if REDIS7 is None:
        pytest.skip("no redis-server 7: run .ci/redis7 and set BOOTSTRAP_TEST_REDIS7 to what it prints")
    made = RedisCluster(tmp_path / "cluster", replicas=1, binary=REDIS7, node_timeout_ms=1000)
    made.start()
    yield made
    made.stop()


def runtime(cluster: RedisCluster) -> QueueRuntime:
    return QueueRuntime(
        prefix=PREFIX, queue=QUEUE, redis_url=cluster.uri, visibility_timeout=30, concurrency=1,
        completed_max_age=3600, completed_max_count=100, failed_max_age=3600, failed_max_count=100,
        connect_timeout=1.0, socket_timeout=1.0, connect_retry=ConnectRetry(retries=3, delay=0.2, max_delay=1.0),
        mode="cluster",
    )  # fmt: skip


def owner(cluster: RedisCluster, key: str) -> tuple[ClusterNode, ClusterNode]:
    """(master, its replica) for `key`'s slot, as a live node says now."""
    nodes = {node.port: node for node in [*cluster.nodes, *cluster.replicas]}
    slot = key_slot(key.encode())
    for node in nodes.values():
        if node.child is None:  # killed
            continue
        client = redis.Redis(port=node.port)
        try:
            slots = client.execute_command("CLUSTER SLOTS")
        finally:
            client.close()
        for start, end, master, *replicas in slots:
            if start <= slot <= end:
                return nodes[int(master[1])], nodes[int(replicas[0][1])] if replicas else node
    raise AssertionError(f"no node answered for {key}")


async def enqueue_until(broker: StreamBroker, acknowledged: list[str], more: int, counter: list[int]) -> int:
    """Enqueue until `more` further enqueues were acknowledged; returns how many raised."""
    target, refused, deadline = len(acknowledged) + more, 0, time.monotonic() + 60
    while len(acknowledged) < target:
        assert time.monotonic() < deadline, f"{len(acknowledged)} of {target} acknowledged after 60 s"
        counter[0] += 1
        data = f"job-{counter[0]}"
        try:
            await broker.kick(BrokerMessage(task_id=data, task_name="t", message=data.encode(), labels={}))
            acknowledged.append(data)
        except (redis.RedisError, OSError):
            refused += 1
            await asyncio.sleep(0.05)
    return refused


def test_acknowledged_enqueues_survive_a_failover_then_the_loss_of_the_new_master(cluster: RedisCluster) -> None:
    stream = QueueKeys(PREFIX, QUEUE).stream
    first_master, first_replica = owner(cluster, stream)
    broker = StreamBroker(runtime(cluster))
    acknowledged: list[str] = []
    counter = [0]

    async def run() -> int:
        await broker.startup()
        try:
            refused = await enqueue_until(broker, acknowledged, STEP, counter)
            # A manual failover: the replica takes over with the master's agreement.
            promote = redis.Redis(port=first_replica.port)
            promote.cluster("FAILOVER")
            promote.close()
            refused += await enqueue_until(broker, acknowledged, STEP, counter)
            assert owner(cluster, stream)[0] is first_replica
            # The new master dies: its replica (the first master) is elected after the node timeout.
            assert first_replica.child is not None
            first_replica.kill()
            refused += await enqueue_until(broker, acknowledged, STEP, counter)
            return refused
        finally:
            await broker.shutdown()

    refused = asyncio.run(run())
    client = cast(redis.Redis, ClusterClient.from_url(first_master.uri, decode_responses=True))
    stored = {fields["data"] for _, fields in client.xrange(stream)}
    client.close()
    lost = [job for job in acknowledged if job not in stored]
    assert not lost, f"{len(lost)} of {len(acknowledged)} acknowledged enqueues lost ({refused} refused)"
