"""Day 2: a team adds its first handler in the project folder, as the README shows
(`handler: "app.jobs:sync"` for `app/jobs.py` beside `config/`), and runs the workers the way the
README and compose.yaml do: `cd generated && python -m msedb_jobs.worker`.

`bootstrap validate` imports the handler (it puts the project folder on the path) and says the config
is valid; `bootstrap up` puts it on its workers' path too. The generated launcher does not
(`jobs.launcher.run_workers` calls `child_env(package_dir)` without the project folder), so the
queue's worker exits with "No module named ...", is restarted 5 times, and then the launcher stops
the workers of every other queue as well."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from bootstrap.local.processes import Child
from bootstrap.local.servers import RedisServer
from tests.conftest import subprocess_env
from tests.support.jobs_project import Project, open_project


def _handler_in_project_folder(project: Project) -> None:
    project.edit(
        "queues.yaml",
        "run-delta-sync: {timeout: 10m}",
        'run-delta-sync: {timeout: 10m, handler: "handlers_for_tests:noop"}',
    )


def test_launcher_started_as_the_readme_says_imports_handlers_from_the_project_folder(
    tmp_path: Path, mongo_uri: str, redis_server: RedisServer
) -> None:
    with open_project(tmp_path, mongo_uri, redis_server.uri, _handler_in_project_folder) as project:
        assert (project.root / "handlers_for_tests.py").exists()  # in the project folder, beside config/
        assert project.bootstrap("validate") == 0  # validate finds it
        env = subprocess_env(**project.env)
        env.pop("PYTHONPATH", None)  # as in compose.yaml: nothing but `cd generated`
        log = tmp_path / "launcher.log"
        launcher = Child(
            "launcher",
            [sys.executable, "-m", f"{project.package}.worker", "delta-sync"],
            env=env,
            cwd=project.root / "generated",
            log_path=log,
        )
        launcher.start()
        try:
            deadline = time.monotonic() + 60
            text = ""
            while time.monotonic() < deadline:
                text = log.read_text() if log.exists() else ""
                if "listening" in text or "cannot be used" in text or not launcher.running:
                    break
                time.sleep(0.2)
        finally:
            launcher.stop(15)
        assert "No module named" not in text, text[-2000:]
        assert "queue delta-sync: listening" in text, text[-2000:]
