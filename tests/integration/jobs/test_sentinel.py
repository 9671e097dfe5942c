"""Sentinel mode on a real Sentinel set (a master, a replica, three sentinels): enqueues declared
to wait for a replica (`redis.wait`) lose nothing they acknowledged across a failover.

Without WAIT, a failover here lost 45-95 % of acknowledged enqueues (the client kept writing to the
old master for seconds, and replication is asynchronous): see docs/scaling.md."""

from __future__ import annotations

import asyncio
import time

import redis
from taskiq import BrokerMessage

from bootstrap.errors import NotReplicated
from bootstrap.jobs.broker import StreamBroker
from bootstrap.jobs.runtime import QueueRuntime
from bootstrap.layout.keys import QueueKeys
from bootstrap.spec.model import ConnectRetry
from tests.support.redis_topologies import SentinelSet
from tests.support.runtimes import in_process_runtime

BEFORE_FAILOVER = 200  # enqueues acknowledged before the failover is started
AFTER_FAILOVER = 200  # and acknowledged by the new master before the test stops


def runtime(sentinels: SentinelSet, prefix: str, wait: int) -> QueueRuntime:
    return in_process_runtime(
        sentinels.uri,
        prefix,
        connect_timeout=1.0,
        socket_timeout=1.0,
        connect_retry=ConnectRetry(retries=3, delay=0.2, max_delay=1.0),
        mode="sentinel",
        sentinel_master=sentinels.service,
        sentinel_hosts=sentinels.hosts,
        wait_replicas=wait,
        wait_timeout=0.5,
    )


async def enqueue_through_a_failover(sentinels: SentinelSet, broker: StreamBroker) -> tuple[list[str], int]:
    """Enqueue one job after another; start a failover after BEFORE_FAILOVER, stop once the new master
    acknowledged AFTER_FAILOVER more. The jobs whose enqueue returned, and how many raised."""
    acknowledged: list[str] = []
    refused = 0
    first = sentinels.master_port()
    switched_at: int | None = None
    deadline = time.monotonic() + 60
    n = 0
    while switched_at is None or len(acknowledged) < switched_at + AFTER_FAILOVER:
        assert time.monotonic() < deadline, f"no failover within 60s ({len(acknowledged)} acknowledged)"
        n += 1
        data = f"job-{n}".encode()
        try:
            await broker.kick(BrokerMessage(task_id=str(n), task_name="t", message=data, labels={}))
            acknowledged.append(data.decode())
        except (NotReplicated, redis.RedisError, OSError):
            refused += 1  # not acknowledged: the producer knows to enqueue it again
            await asyncio.sleep(0.05)
        if n == BEFORE_FAILOVER:
            client = redis.Redis(port=sentinels.sentinels[0].port)
            client.sentinel_failover(sentinels.service)
            client.close()
        if n > BEFORE_FAILOVER and switched_at is None and n % 20 == 0 and sentinels.master_port() != first:
            switched_at = len(acknowledged)
    return acknowledged, refused


def test_enqueues_that_waited_for_a_replica_survive_a_sentinel_failover(sentinels: SentinelSet) -> None:
    prefix = "sentinel-wait"
    broker = StreamBroker(runtime(sentinels, prefix, wait=1))

    async def run() -> tuple[list[str], int]:
        await broker.startup()
        try:
            return await enqueue_through_a_failover(sentinels, broker)
        finally:
            await broker.shutdown()

    acknowledged, refused = asyncio.run(run())
    new_master = sentinels.master_port()
    assert new_master == sentinels.replica.port  # the replica took over
    client = redis.Redis(port=new_master, decode_responses=True)
    stored = {fields["data"] for _, fields in client.xrange(QueueKeys(prefix, "q").stream)}
    client.close()
    lost = [job for job in acknowledged if job not in stored]
    assert not lost, f"{len(lost)} of {len(acknowledged)} acknowledged enqueues lost ({refused} refused)"
    assert len(acknowledged) >= BEFORE_FAILOVER + AFTER_FAILOVER - 1
