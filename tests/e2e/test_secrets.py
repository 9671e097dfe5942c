"""Credentials never appear in any output: a full run with password-protected MongoDB and Redis,
then every line printed and every file written is searched for the passwords."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from pymongo import MongoClient

from bootstrap.local.servers import MongoServer, RedisServer
from tests.conftest import copy_config
from tests.e2e.test_up import DONE, env_without_servers, fast_schedule, interrupt, start_up

MONGO_PASSWORD = "Mongo'Pa55 \"q7<x>"  # quotes, a space, <>: legal in a URL, and once printed in clear
REDIS_PASSWORD = "R3d'isS3c Qw<E>"


def test_a_full_run_never_shows_a_password(tmp_path: Path) -> None:
    mongo = MongoServer(tmp_path / "mongo")
    mongo.start()
    client: MongoClient[dict[str, object]] = MongoClient(mongo.uri)
    client.admin.command("createUser", "app", pwd=MONGO_PASSWORD, roles=["root"])
    client.close()
    mongo.stop()
    mongo = MongoServer(tmp_path / "mongo", mongo.port, auth=True)
    mongo.start()
    redis_server = RedisServer(tmp_path / "redis", password=REDIS_PASSWORD)
    redis_server.start()
    project = tmp_path / "project"
    fast_schedule(copy_config(project / "config", "secret"))
    env = {
        **env_without_servers(),
        "MONGODB_URI": f"mongodb://app:{MONGO_PASSWORD}@127.0.0.1:{mongo.port}/secretdb?authSource=admin",
        "REDIS_URL": redis_server.uri,
    }
    printed = ""

    def bootstrap(*args: str, code: int = 0) -> None:
        nonlocal printed
        result = subprocess.run(
            [sys.executable, "-m", "bootstrap", *args, "--config", str(project / "config")],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        printed += result.stdout + result.stderr
        assert result.returncode == code, result.stdout + result.stderr

    try:
        bootstrap("validate")
        bootstrap("plan")
        with start_up(project, env) as up:
            up.wait_for(DONE, 120)
            bootstrap("status")
            bootstrap("enqueue", "delta-sync", "run-delta-sync")
            bootstrap("jobs", "failed", "delta-sync")
            printed += interrupt(up)
            assert up.process.returncode == 0
        env["REDIS_URL"] = redis_server.uri.replace(REDIS_PASSWORD, "wrong-" + REDIS_PASSWORD[::-1])
        bootstrap("plan", code=1)  # a refused password is reported, and masked
        assert re.search(r"redis://:\*\*\*\*@", printed)
        assert "app:****@" in printed
        written = "".join(
            p.read_text(errors="replace")
            for p in project.rglob("*")
            if p.is_file() and p.suffix in (".log", ".py", ".json", ".yaml")
        )
        for secret in (MONGO_PASSWORD, REDIS_PASSWORD, REDIS_PASSWORD[::-1]):
            assert secret not in printed, f"{secret} printed"
            assert secret not in written, f"{secret} written to a file"
        assert (
            "job completed: queue=delta-sync" in (project / ".bootstrap" / "logs" / "worker-delta-sync.log").read_text()
        )
    finally:
        redis_server.stop()
        mongo.stop()
