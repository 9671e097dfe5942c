"""Day 2: an operator changes only a schedule (`every: 15m` -> `every: 20m`), then `apply` and
`generate` as the README says.

The running scheduler picks the change up within its `--update-interval` (README: "A changed
schedule is picked up within the scheduler's --update-interval"), and workers never read schedules.
Yet `generate` rewrites `spec.py` (it holds the schedules), the wiring hash changes, and `bootstrap
health` fails `workers` ("1 worker(s) run wiring A, not the spec's B"; fix: restart the workers)
for every queue: each cron tweak makes every worker of the deployment unhealthy (compose's health
check) until all are restarted, though nothing they run changed."""

from __future__ import annotations

import uuid
from pathlib import Path

from bootstrap.cli.health import workers
from bootstrap.local.servers import MongoServer, RedisServer
from tests.integration.cli.test_health import ONE_QUEUE, ONE_SCHEDULE
from tests.support.jobs_project import Project, open_project, redis_client, wait_for


def _workers_ok(project: Project) -> bool:
    client = redis_client(project)
    try:
        return workers(project.spec(), client).ok
    finally:
        client.close()


def test_a_schedule_only_change_leaves_the_workers_healthy(
    tmp_path: Path, mongo_server: MongoServer, redis_server: RedisServer
) -> None:
    def edit(project: Project) -> None:
        (project.config / "queues.yaml").write_text(ONE_QUEUE)
        (project.config / "schedules.yaml").write_text(ONE_SCHEDULE)

    mongo_uri = f"{mongo_server.uri}d2_{uuid.uuid4().hex[:12]}"
    with open_project(tmp_path, mongo_uri, redis_server.uri, edit) as project:
        project.start_worker("delta-sync")
        wait_for(lambda: _workers_ok(project), 60, "the worker's heartbeat on the current wiring", interval=0.3)
        project.edit("schedules.yaml", "every: 15m", "every: 20m")
        project.apply_and_generate()  # the README's loop; the worker is not restarted: it runs no schedule
        client = redis_client(project)
        try:
            check = workers(project.spec(), client)
        finally:
            client.close()
        assert check.ok, check.detail
