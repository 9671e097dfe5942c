"""Security review: two retries of the same failed jobs at once put some of them on the queue twice.

`admin.retry_failed` says it re-enqueues each failed job and takes it out of the failed store
"atomically per job", but it reads the record (HGET) and then writes XADD + ZREM + HDEL in a
MULTI without WATCH: two callers that read the record before either removes it both enqueue it.
The dashboard's "retry" button sent twice (a double click, or the form re-posted), or the dashboard
and `bootstrap jobs retry --all` at once, make a failed job run twice. Seen: 304 failed jobs, two
threads retrying them all -> 431 jobs on the stream (127 twice).
"""

from __future__ import annotations

import json
import threading

import redis

from bootstrap.jobs import admin
from bootstrap.layout.keys import QueueKeys
from bootstrap.local.servers import RedisServer

JOBS = 200


def test_concurrent_retries_enqueue_each_failed_job_once(redis_server: RedisServer, key_prefix: str) -> None:
    keys = QueueKeys(key_prefix, "delta-sync")
    client = redis.Redis.from_url(redis_server.uri)
    ids = [f"job-{i}" for i in range(JOBS)]
    for n, job_id in enumerate(ids):
        record = {"id": job_id, "task": "run-delta-sync", "args": [], "kwargs": {}, "labels": {"attempt": 3}}
        client.hset(keys.record_data("failed"), job_id, json.dumps(record))
        client.zadd(keys.records("failed"), {job_id: n})
    done: list[list[str]] = []
    start = threading.Barrier(2)

    def retry() -> None:
        own = redis.Redis.from_url(redis_server.uri)
        start.wait()
        done.append(admin.retry_failed(own, keys, ids))
        own.close()

    threads = [threading.Thread(target=retry) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    try:
        assert client.zcard(keys.records("failed")) == 0
        enqueued = client.xlen(keys.stream_at("normal"))
        assert sum(len(d) for d in done) == JOBS, "a job was reported re-enqueued by both callers"
        assert enqueued == JOBS, f"{enqueued} jobs on the stream for {JOBS} failed ones"
    finally:
        for key in client.scan_iter(f"{key_prefix}*"):
            client.delete(key)
        client.close()
