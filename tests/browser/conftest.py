"""Browser tests: headless Chromium (Debian's `chromium`, driven by Playwright pointed at it; no
browser is downloaded) against a real stack: SecantusDB, Redis, a worker, and `bootstrap
dashboard` as its own process. Skipped, saying why, only where no chromium binary exists (CI
installs it).

Screenshots of each page go to the artifact folder (BOOTSTRAP_TEST_ARTIFACTS, else pytest's
temporary folder), and also to docs/screenshots when BOOTSTRAP_DOC_SCREENSHOTS=1 (for the README)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bootstrap.local.processes import Child
from bootstrap.local.servers import MongoServer, RedisServer, free_port
from tests.conftest import REPO
from tests.support.jobs_project import Project, open_project, redis_client, wait_for

CHROMIUM = os.environ.get("BOOTSTRAP_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
DASH_QUEUE = """
  dash-jobs:
    description: Jobs for the dashboard's browser tests.
    visibility_timeout: 5s
    concurrency: 2
    tasks:
      flaky:
        handler: "dash_handlers:flaky"
        retry: {attempts: 1}
"""

if not Path(CHROMIUM).is_file():
    pytest.skip(f"no chromium at {CHROMIUM}: `apt-get install -y chromium` (.ci/run does)", allow_module_level=True)
playwright = pytest.importorskip("playwright.sync_api", reason="playwright comes with the test extra (.[test])")


@dataclass
class Stack:
    project: Project
    url: str  # the dashboard, without token
    token: str
    artifacts: Path

    def shot(self, page: Any, name: str) -> None:
        """A full-page screenshot into the artifact folder (and docs/screenshots when asked)."""
        path = self.artifacts / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        if os.environ.get("BOOTSTRAP_DOC_SCREENSHOTS") == "1":
            docs = REPO / "docs" / "screenshots"
            docs.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, docs / path.name)


def _edit(project: Project) -> None:
    path = project.config / "queues.yaml"
    path.write_text(path.read_text().rstrip("\n") + "\n" + DASH_QUEUE)
    (project.root / "dash_handlers.py").write_text((Path(__file__).parent / "dash_handlers.py").read_text())


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, mongo_server: MongoServer, redis_server: RedisServer
) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("dash")
    mongo_uri = f"{mongo_server.uri}d_{uuid.uuid4().hex[:10]}"
    artifacts = Path(os.environ.get("BOOTSTRAP_TEST_ARTIFACTS") or tmp_path_factory.getbasetemp() / "artifacts")
    artifacts = artifacts / "screenshots"
    artifacts.mkdir(parents=True, exist_ok=True)
    with open_project(root, mongo_uri, redis_server.uri, _edit) as project:
        project.start_worker("dash-jobs", "dash-worker")
        port = free_port()
        log = root / "dashboard.log"
        paths = [str(REPO), os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, **project.env, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
        env.pop("BOOTSTRAP_DASHBOARD_TOKEN", None)  # a generated token: the one printed is the one to use
        command = [sys.executable, "-m", "bootstrap", "dashboard", "--config", str(project.config),
                   "--host", "0.0.0.0", "--port", str(port)]  # fmt: skip
        dashboard = Child("dashboard", command, env=env, log_path=log)
        dashboard.start()
        try:
            printed = wait_for(lambda: re.search(r"dashboard: (http://\S+)", log.read_text() if log.exists() else ""),
                               60, "the dashboard to print its URL")  # fmt: skip
            token = printed.group(1).split("?token=", 1)[1]
            print(f"screenshots: {artifacts}")
            yield Stack(project, f"http://127.0.0.1:{port}", token, artifacts)
            text = log.read_text()
            assert text.count(token) == 1, "the token is printed once, and never again (logs included)"
        finally:
            dashboard.stop(10)


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[Any]:
    profile = stack.artifacts.parent / f"chromium-profile-{uuid.uuid4().hex[:6]}"
    with playwright.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1280, "height": 860},
        )  # fmt: skip
        try:
            yield context
        finally:
            context.close()
    shutil.rmtree(profile, ignore_errors=True)


def enqueue(stack: Stack, **kwargs: Any) -> str:
    """As a user would: `bootstrap enqueue` (a process of its own: Playwright's loop runs in this one)."""
    job_id = f"dash-{uuid.uuid4().hex[:8]}"
    command = [sys.executable, "-m", "bootstrap", "enqueue", "dash-jobs", "flaky",
               "--config", str(stack.project.config), "--kwargs", json.dumps(kwargs), "--id", job_id]  # fmt: skip
    done = subprocess.run(command, env={**os.environ, **stack.project.env}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return job_id


def fixed_key(stack: Stack) -> str:
    return f"{stack.project.key_prefix}:test:fixed"


def now() -> float:
    return time.time()


__all__ = ["Stack", "enqueue", "fixed_key", "now", "redis_client", "wait_for"]
