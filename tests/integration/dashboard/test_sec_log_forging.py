"""Security review: anyone who can reach the dashboard writes lines of their choosing into its log.

The refusals are logged with `request.path`, which aiohttp has already percent-decoded: a request
for `/x%0A<a fake line>%1B[2K` with a wrong token (token mode) or a foreign Host header (loopback
mode) needs no credential and writes a newline, the attacker's text and raw ESC sequences into the
log (and the terminal of `bootstrap dashboard` / `bootstrap up`). The README says every retry and
purge is logged with who asked: such lines can be forged ("127.0.0.1 purged 0 failed job record(s)")
or hidden with escape sequences. Seen with curl against `bootstrap dashboard --host 0.0.0.0`.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bootstrap.dashboard.app import Sources, make_app
from bootstrap.dashboard.auth import Guard
from bootstrap.logs import TextFormatter

FORGED = "10:00:00 INFO    bootstrap.dashboard: dashboard: 10.0.0.9 purged 3 failed job record(s) of delta-sync"
PATH = "/x%0A" + FORGED.replace(" ", "%20") + "%1B%5B2K"


@pytest.mark.parametrize("mode", ["token", "loopback"])
def test_an_unauthenticated_request_forges_no_log_line(mode: str, caplog: pytest.LogCaptureFixture) -> None:
    sources = Sources(spec=lambda: None, db=None, redis=None)  # type: ignore[arg-type,return-value]  # not reached
    guard = Guard("a-token-of-32-characters-for-test" if mode == "token" else None)

    async def go() -> None:
        async with TestClient(TestServer(make_app(sources, guard))) as client:
            if mode == "token":
                response = await client.get(PATH + "?token=wrong-token-wrong-token")
            else:
                response = await client.get(PATH, headers={"Host": "rebound.example:80"})
            assert response.status == 403

    with caplog.at_level(logging.WARNING, logger="bootstrap.dashboard"):
        asyncio.run(go())
    lines = "\n".join(TextFormatter().format(r) for r in caplog.records if r.name == "bootstrap.dashboard")
    assert "refused" in lines
    assert "\x1b" not in lines, "an ESC sequence reached the log"
    assert not any(line.startswith(FORGED) for line in lines.splitlines()), "a forged log line"
