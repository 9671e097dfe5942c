"""The dashboard against real servers (SecantusDB, redis-server) through aiohttp's test client:
every page renders what is live; failed jobs page on the server; retry and purge are POSTs that
need the page's CSRF token (purge a confirmation too); a token is required off loopback."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from aiohttp.test_utils import TestClient, TestServer
from pymongo import MongoClient

from bootstrap.dashboard.app import Sources, make_app
from bootstrap.dashboard.auth import COOKIE, Guard
from bootstrap.layout.keys import QueueKeys
from bootstrap.local.servers import free_port
from bootstrap.spec.load import load_spec
from bootstrap.spec.model import Spec
from tests.support.failed_records import COMPLETED, FAILED, add_records

Check = Callable[[TestClient[Any, Any]], Awaitable[None]]


@pytest.fixture
def stack(config_dir: Path, cli: Any) -> Iterator[tuple[Spec, Sources]]:
    assert cli("apply", "--config", str(config_dir)).code == 0
    spec = load_spec(config_dir)
    mongo: MongoClient[dict[str, Any]] = MongoClient(spec.mongodb.uri)
    client = redis.Redis.from_url(spec.redis.url)
    yield spec, Sources(lambda: spec, mongo[spec.mongodb.database], client)
    client.close()
    mongo.close()


def run(sources: Sources, check: Check, guard: Guard | None = None) -> None:
    async def go() -> None:
        async with TestClient(TestServer(make_app(sources, guard or Guard(None)))) as client:
            await check(client)

    asyncio.run(go())


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def test_every_page_renders_what_is_live(stack: tuple[Spec, Sources]) -> None:
    spec, sources = stack
    keys = QueueKeys(spec.redis.key_prefix, "delta-sync")
    sources.redis.set(keys.paused, 1)
    add_records(sources.redis, keys, "run-delta-sync", 7, outcome=COMPLETED, step=60)
    add_records(sources.redis, keys, "run-delta-sync", 2, outcome=FAILED, step=60)
    add_records(sources.redis, keys, "run-delta-sync", 5, outcome=COMPLETED, newest=time.time() - 7200, prefix="old")

    async def check(client: TestClient[Any, Any]) -> None:
        response = await client.get("/", allow_redirects=False)
        assert response.status == 302 and response.headers["Location"] == "/queues"
        html = await (await client.get("/queues")).text()
        for queue in spec.queues:
            assert f'data-queue="{queue.name}"' in html
        row = html.split('data-queue="delta-sync"', 1)[1].split("</tr>", 1)[0]
        assert "paused" in row and '<td class="n completed">12</td>' in row
        assert "7 completed, 2 failed" in row  # the last hour only: the 5 older records are not counted
        other = html.split('data-queue="webhook-renewal"', 1)[1].split("</tr>", 1)[0]
        assert "active" in other

        html = await (await client.get("/schedules")).text()
        for schedule in spec.schedules:
            assert f'data-schedule="{schedule.id}"' in html
        every_15m = re.search(r'data-schedule="delta-sync-schedule" data-count="(\d+)"', html)
        assert every_15m and int(every_15m.group(1)) == 96
        assert "No live scheduler (none seen within 30s): the schedules do not fire." in html
        beat = {"queues": ["delta-sync"], "wiring": "0ld", "host": "h", "pid": 7, "started": time.time() - 90}
        sources.redis.hset(f"{spec.redis.key_prefix}:schedulers", "h:7", json.dumps({**beat, "seen": time.time()}))
        html = await (await client.get("/schedules")).text()
        shown = html.split('<p id="schedulers">', 1)[1].split("</p>", 1)[0]
        assert "h:7 · up 1m30s · wiring 0ld" in shown and "(not the spec's " in shown

        html = await (await client.get("/collections")).text()
        for collection in spec.collections:
            assert f'data-collection="{collection.name}"' in html
        assert "everything matches the spec" in html
        assert re.search(r'data-index="userId_1_timestamp_-1"|data-index="[^"]+_1', html)
        last = html.split('id="last-apply"', 1)[1].split("</p>", 1)[0]
        assert ": success, spec " + spec.hash() in last

        html = await (await client.get("/spec")).text()
        assert html.count('class="entity"') == len(spec.collections)
        assert "erDiagram" in html and "<script src" not in html

        rebound = await client.get("/queues", headers={"Host": f"attacker.example:{client.port}"})
        assert rebound.status == 403  # DNS rebinding: a page of another site pointed at 127.0.0.1

    run(sources, check)


def test_collections_page_shows_drift_and_what_the_server_cannot_tell(stack: tuple[Spec, Sources]) -> None:
    spec, sources = stack
    collection = next(c for c in spec.collections if c.indexes)
    dropped = collection.indexes[0].name
    sources.db[collection.name].drop_index(dropped)

    async def check(client: TestClient[Any, Any]) -> None:
        html = await (await client.get("/collections")).text()
        assert 'id="sync"' in html and "drift" in html.split('id="sync"', 1)[1][:40]
        row = html.split(f'data-collection="{collection.name}"', 1)[1].split('data-collection="', 1)[0]
        assert f'data-index="{dropped}"' in row and "(missing)" in row
        assert dropped in row.split("(missing)", 1)[1]  # the drift column names it too (+ create)
        # SecantusDB answers $indexStats without counting uses: the page says so rather than "unused".
        if "index use counts" in html:
            assert "does not report index use counts" in html and "unused" not in row

    run(sources, check)


def test_failed_jobs_page_by_page_then_retry_and_purge(stack: tuple[Spec, Sources]) -> None:
    spec, sources = stack
    keys = QueueKeys(spec.redis.key_prefix, "delta-sync")
    ids = add_records(sources.redis, keys, "run-delta-sync", 120)

    async def check(client: TestClient[Any, Any]) -> None:
        html = await (await client.get("/queues/delta-sync/failed")).text()
        rows = re.findall(r'<tr data-job="([^"]+)"', html)
        assert rows == ids[::-1][:50]  # newest first
        assert "page 1 of 3" in html and 'rel="next"' in html
        last = await (await client.get("/queues/delta-sync/failed?page=3")).text()
        assert re.findall(r'<tr data-job="([^"]+)"', last) == ids[::-1][100:]
        assert "RuntimeError: job job-00000 failed" in last and "Traceback" in last

        token = csrf_of(html)
        refused = await client.post("/queues/delta-sync/failed/retry", data={"id": ids[-1]})
        assert refused.status == 403
        refused = await client.post("/queues/delta-sync/failed/retry", data={"id": ids[-1], "csrf": "0" * 64})
        assert refused.status == 403
        assert sources.redis.zcard(keys.records(FAILED)) == 120

        done = await client.post("/queues/delta-sync/failed/retry", data={"id": ids[-1], "csrf": token},
                                 allow_redirects=False)  # fmt: skip
        assert done.status == 303 and done.headers["Location"].endswith("retried=1")
        assert sources.redis.zcard(keys.records(FAILED)) == 119
        assert sources.redis.xlen(keys.stream) == 1
        html = await (await client.get(done.headers["Location"])).text()
        assert "re-enqueued 1 job(s)" in html and ids[-1] not in html

        confirm = await client.post("/queues/delta-sync/failed/purge", data={"csrf": token}, allow_redirects=False)
        assert confirm.status == 303 and confirm.headers["Location"].endswith("/failed/purge")
        assert sources.redis.zcard(keys.records(FAILED)) == 119  # not without the confirmation
        page = await (await client.get("/queues/delta-sync/failed/purge")).text()
        assert "Delete all 119 failed job record(s)" in page
        gone = await client.post("/queues/delta-sync/failed/purge", data={"csrf": csrf_of(page), "confirm": "yes"},
                                 allow_redirects=False)  # fmt: skip
        assert gone.status == 303 and gone.headers["Location"].endswith("purged=119")
        assert sources.redis.zcard(keys.records(FAILED)) == 0

        cross = await client.post("/queues/delta-sync/failed/purge", data={"csrf": token, "confirm": "yes"},
                                  headers={"Origin": "http://evil.example"})  # fmt: skip
        assert cross.status == 403
        assert (await client.get("/queues/nope/failed")).status == 404

    run(sources, check)


def test_a_token_is_required_when_one_is_set(stack: tuple[Spec, Sources]) -> None:
    _, sources = stack
    secret = "a-token-for-this-test-only"

    async def check(client: TestClient[Any, Any]) -> None:
        missing = await client.get("/queues")
        assert missing.status == 401 and secret not in await missing.text()
        wrong = await client.get("/queues?token=nope", allow_redirects=False)
        assert wrong.status == 403
        wrong = await client.get("/queues", headers={"Authorization": "Bearer nope"})
        assert wrong.status == 403
        assert (await client.get("/queues", headers={"Authorization": f"Bearer {secret}"})).status == 200
        opened = await client.get(f"/schedules?token={secret}", allow_redirects=False)
        assert opened.status == 303 and opened.headers["Location"] == "/schedules"  # token out of the URL
        cookie = opened.cookies[COOKIE]
        assert cookie.value == secret and cookie["httponly"] and cookie["samesite"] == "Strict"
        page = await client.get("/schedules")  # the client keeps the cookie
        assert page.status == 200 and secret not in await page.text()

    run(sources, check, Guard(secret))


def test_a_server_that_does_not_answer_gets_a_page_saying_so(stack: tuple[Spec, Sources]) -> None:
    _, sources = stack
    gone = Sources(sources.spec, sources.db, redis.Redis(port=free_port(), socket_connect_timeout=2))

    async def check(client: TestClient[Any, Any]) -> None:
        response = await client.get("/queues")
        html = await response.text()
        assert response.status == 503 and "Redis did not answer" in html and "Traceback" not in html
        assert 'data-refresh="5"' in html  # it comes back by itself once Redis does

    run(gone, check)


def test_the_command_says_when_it_cannot_listen(config_dir: Path, cli: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("dashboard", "--config", str(config_dir), "--port", str(port))
    assert result.code == 1
    assert f"the dashboard cannot listen on 127.0.0.1:{port}" in result.err and "Traceback" not in result.err
