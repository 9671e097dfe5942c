"""The dashboard in a real browser against a real stack: a wrong or missing token refused, each
page loads (and is photographed), a failing job appears by itself, is retried from the page and
completes, failed records are purged after a confirmation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import MongoClient

from bootstrap.jobs.records import COMPLETED, FAILED
from tests.browser.conftest import Stack, enqueue, fixed_key, redis_client, wait_for
from tests.support.failed_records import add_records

LONG = 60_000  # ms: the machine is shared; conditions are awaited, never slept for


def test_a_missing_or_wrong_token_is_refused(stack: Stack, browser: Any) -> None:
    page = browser.new_page()
    try:
        response = page.goto(f"{stack.url}/queues")
        assert response.status == 401
        assert "requires a token" in page.content()
        response = page.goto(f"{stack.url}/queues?token=not-{stack.token}")
        assert response.status == 403
        response = page.goto(f"{stack.url}/queues?token={stack.token}")
        assert response.status == 200
        assert page.url == f"{stack.url}/queues"  # the token left the address bar for a cookie
        assert stack.token not in page.content()
    finally:
        page.close()


@pytest.fixture
def page(stack: Stack, browser: Any) -> Iterator[Any]:
    """A tab that has opened the dashboard with its token (then kept as a cookie)."""
    tab = browser.new_page()
    tab.goto(f"{stack.url}/?token={stack.token}")
    yield tab
    tab.close()


def test_each_page_loads(stack: Stack, page: Any) -> None:
    client = redis_client(stack.project)
    try:  # some history, so the throughput bars have something to show
        for queue, task in (("delta-sync", "run-delta-sync"), ("webhook-renewal", "renew-webhooks")):
            keys = stack.project.queue_keys(queue)
            add_records(client, keys, task, 40, outcome=COMPLETED, step=80, prefix=f"{queue}-done")
        add_records(client, stack.project.queue_keys("delta-sync"), "run-delta-sync", 3, step=700,
                    prefix="delta-sync-failed")  # fmt: skip
    finally:
        client.close()
    page.goto(f"{stack.url}/queues")
    page.wait_for_selector('tr[data-queue="dash-jobs"] td.workers div', timeout=LONG)  # the worker's heartbeat
    assert page.locator('tr[data-queue="delta-sync"] td.completed').inner_text() == "40"
    assert page.locator('tr[data-queue="delta-sync"] svg.chart rect.completed').count() == 12
    stack.shot(page, "queues")

    page.goto(f"{stack.url}/schedules")
    for schedule in stack.project.spec().schedules:
        assert page.locator(f'tr[data-schedule="{schedule.id}"]').count() == 1
    assert page.locator("svg.timeline g.slots rect").count() > 96
    stack.shot(page, "schedules")

    spec = stack.project.spec()
    mongo: MongoClient[dict[str, Any]] = MongoClient(spec.mongodb.uri)
    try:  # some documents, so sizes and counts show something
        stamp = datetime.now(UTC)
        mongo[spec.mongodb.database]["users"].insert_many(
            [{"email": f"user{i}@example.com", "createdAt": stamp, "updatedAt": stamp} for i in range(200)],
            bypass_document_validation=True,
        )
    finally:
        mongo.close()
    page.goto(f"{stack.url}/collections")
    for collection in spec.collections:
        assert page.locator(f'tr[data-collection="{collection.name}"]').count() == 1
    assert page.locator('tr[data-collection="users"] > td.n').first.inner_text() == "200"
    assert "everything matches the spec" in page.locator("#sync").inner_text()
    stack.shot(page, "collections")

    page.goto(f"{stack.url}/spec")
    assert page.locator("svg.erd g.entity").count() == len(stack.project.spec().collections)
    stack.shot(page, "spec")

    page.goto(f"{stack.url}/queues/delta-sync/failed")
    page.locator('tr[data-job] details').first.click()  # open one: traceback and arguments
    stack.shot(page, "failed")


def test_a_failing_job_appears_and_completes_when_retried(stack: Stack, page: Any) -> None:
    keys = stack.project.queue_keys("dash-jobs")
    page.goto(f"{stack.url}/queues/dash-jobs/failed")
    job = enqueue(stack, fixed_key=fixed_key(stack))
    # No reload: the page refreshes itself, and the failed job shows up.
    row = page.wait_for_selector(f'tr[data-job="{job}"]', timeout=LONG)
    assert "the upstream service is down" in row.inner_text()

    client = redis_client(stack.project)
    try:
        client.set(fixed_key(stack), 1)  # the upstream service is back
        page.locator(f'tr[data-job="{job}"] button.retry').click()
        page.wait_for_selector("#flash", timeout=LONG)
        assert "re-enqueued 1 job(s)" in page.locator("#flash").inner_text()
        wait_for(lambda: client.hexists(keys.record_data(COMPLETED), job), 60, f"job {job} to complete")
        assert not client.hexists(keys.record_data(FAILED), job)
    finally:
        client.close()
    page.goto(f"{stack.url}/queues")
    page.wait_for_function(
        "() => Number(document.querySelector('tr[data-queue=\"dash-jobs\"] td.completed').innerText) >= 1",
        timeout=LONG,
    )


def test_purge_asks_first(stack: Stack, page: Any) -> None:
    keys = stack.project.queue_keys("dash-jobs")
    client = redis_client(stack.project)
    try:
        add_records(client, keys, "flaky", 3, prefix="to-purge")
        page.goto(f"{stack.url}/queues/dash-jobs/failed")
        count = client.zcard(keys.records(FAILED))
        page.locator("#purge").click()
        page.wait_for_selector("#confirm-purge")
        assert f"Delete all {count} failed job record(s)" in page.content()
        assert client.zcard(keys.records(FAILED)) == count  # nothing gone before the confirmation
        stack.shot(page, "purge-confirmation")
        page.locator("#confirm-purge").click()
        page.wait_for_selector("#flash")
        assert f"deleted {count} failed job record(s)" in page.locator("#flash").inner_text()
        assert client.zcard(keys.records(FAILED)) == 0
    finally:
        client.close()
