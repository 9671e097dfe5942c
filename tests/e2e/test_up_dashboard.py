"""`bootstrap up` runs the dashboard and prints its URL; its pages show the stack that `up` runs
(password-protected local servers) without ever showing a password."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

from tests.conftest import copy_config
from tests.e2e.test_up import DONE, env_without_servers, fast_schedule, interrupt, start_up

PAGES = ("/queues", "/queues/delta-sync/failed", "/schedules", "/collections", "/spec")


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.status, response.read().decode()


def test_up_serves_the_dashboard_without_secrets(tmp_path: Path) -> None:
    project = tmp_path / "project"
    fast_schedule(copy_config(project / "config", "msedb"))
    with start_up(project, env_without_servers()) as up:
        seen = up.wait_for(DONE, 120)  # a scheduled job ran: workers and scheduler are up
        found = re.search(r"dashboard (http://127\.0\.0\.1:(\d+)/)", seen)
        assert found, seen
        url = found.group(1).rstrip("/")
        credentials = json.loads((project / ".bootstrap" / "credentials.json").read_text())
        secrets = [credentials["mongodb"]["password"], credentials["redis"]["password"]]
        pages = {}
        for path in PAGES:
            status, html = get(url + path)
            assert status == 200, path
            pages[path] = html
        for path, html in pages.items():
            for secret in secrets:
                assert secret not in html, f"a password on {path}"
        assert "mongodb://bootstrap:****@127.0.0.1" in pages["/collections"]
        assert re.search(r'data-queue="delta-sync".*?<td class="n completed">[1-9]', pages["/queues"], re.S)
        assert "wiring" in pages["/queues"] and "(not the spec" not in pages["/queues"]
        out = interrupt(up)
        assert up.process.returncode == 0, out
