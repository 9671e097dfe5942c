"""Data-loss detection on a Redis Cluster (found by the scale walk): the marker `apply` writes is one
key on one master. A master that came back without its data (no append-only file, no replica) while
the marker's master kept its own lost the stored schedules of the queues in its slots; the scheduler
falls back to the declared schedules only when the marker is gone too, so those schedules stopped
firing, with no line in its log, until the next `bootstrap apply`. Here the loss of delta-sync's
master is played by deleting the keys of that queue's slot (its stream, stored schedules, last
slots and the queue's own data marker, which apply writes in each queue's slot), the marker left in
place: the scheduler fires that queue's declared schedules until `bootstrap apply` stores them again."""

from __future__ import annotations

from pathlib import Path

from tests.support.jobs_project import Project, open_project, redis_client, wait_for
from tests.support.redis_topologies import RedisCluster

STARTUP = 40.0


def every_second(project: Project) -> None:
    project.edit("schedules.yaml", "every: 15m", "every: 1s")


def fired(project: Project) -> int:
    client = redis_client(project)
    try:
        return int(client.xlen(project.queue_keys("delta-sync").stream))
    finally:
        client.close()


def test_a_schedule_whose_master_lost_its_data_still_fires(
    tmp_path: Path, mongo_uri: str, redis_cluster: RedisCluster
) -> None:
    with open_project(tmp_path, mongo_uri, redis_cluster.uri, every_second, redis_mode="cluster") as project:
        project.start_scheduler(update_interval=1)
        wait_for(lambda: fired(project) >= 2, STARTUP, "delta-sync-schedule to fire twice")
        keys = project.queue_keys("delta-sync")
        client = redis_client(project)
        try:
            # delta-sync's master lost its data: every key of the queue's slot, its data marker too
            client.delete(keys.stream, keys.schedules, keys.last_slot, keys.marker)
            assert client.exists(f"{project.key_prefix}:marker")  # another master's key: kept
        finally:
            client.close()
        wait_for(lambda: fired(project) >= 2, 10, "delta-sync-schedule to fire again after the loss")
