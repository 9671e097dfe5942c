"""rev6 review: kiq() retries per redis.connect_retry (8ad8ae7)."""

from __future__ import annotations

import asyncio
import uuid

import redis
from taskiq import BrokerMessage

from bootstrap.errors import NotReplicated
from bootstrap.jobs.broker import StreamBroker
from bootstrap.layout.keys import QueueKeys
from bootstrap.spec.model import ConnectRetry
from tests.support.runtimes import in_process_runtime


def test_a_kiq_whose_wait_times_out_on_the_socket_is_not_added_again(redis_server) -> None:  # type: ignore[no-untyped-def]
    prefix = f"rev6kiq{uuid.uuid4().hex[:8]}"
    runtime = in_process_runtime(
        redis_server.uri,
        prefix,
        socket_timeout=0.3,
        connect_timeout=1.0,
        connect_retry=ConnectRetry(retries=3, delay=0.05, max_delay=0.1),
        wait_replicas=1,  # the test Redis has no replica: WAIT waits its whole timeout
        wait_timeout=0.6,  # longer than socket_timeout (nothing checks this)
    )
    broker = StreamBroker(runtime)

    async def go() -> None:
        try:
            await broker.kick(BrokerMessage(task_id="one", task_name="t", message=b"job-1", labels={}))
        except (NotReplicated, redis.RedisError, OSError):
            pass  # not acknowledged: fine; what matters is how many went in
        finally:
            await broker.connections.close()

    asyncio.run(go())
    client = redis.Redis.from_url(redis_server.uri)
    try:
        assert client.xlen(QueueKeys(prefix, "q").stream) == 1
    finally:
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()
