"""Who may use the dashboard: the loopback address needs no token, any other one does; wrong and
missing tokens are told apart; CSRF tokens are bound to the session."""

from __future__ import annotations

import pytest

from bootstrap.dashboard.auth import Guard, loopback_host, masked, needs_token, same_origin


@pytest.mark.parametrize(("host", "needed"), [("127.0.0.1", False), ("localhost", False), ("::1", False),
                                               ("127.0.0.2", False), ("0.0.0.0", True), ("10.1.2.3", True),
                                               ("::", True), ("dashboard.example", True)])  # fmt: skip
def test_only_loopback_goes_without_a_token(host: str, needed: bool) -> None:
    assert needs_token(host) is needed


def test_token_check() -> None:
    guard = Guard("a-long-secret-token")
    assert guard.check("a-long-secret-token") == 200
    assert guard.check(None) == 401
    assert guard.check("") == 401
    assert guard.check("a-long-secret-tokeN") == 403
    assert Guard(None).check(None) == 200


def test_csrf_is_per_session_and_per_process() -> None:
    guard = Guard("t")
    token = guard.csrf("t")
    assert guard.csrf_ok("t", token)
    assert not guard.csrf_ok("other", token)
    assert not guard.csrf_ok("t", None)
    assert not guard.csrf_ok("t", "")
    assert not Guard("t").csrf_ok("t", token)  # another process (restarted dashboard): another secret


def test_masked_token_shows_little() -> None:
    assert masked("abcdefghijklmnop") == "abcd****"
    assert "efgh" not in masked("abcdefghijklmnop")
    assert masked("short") == "****"


def test_origin_check() -> None:
    assert same_origin(None, "127.0.0.1:8765")
    assert same_origin("http://127.0.0.1:8765", "127.0.0.1:8765")
    assert not same_origin("http://evil.example", "127.0.0.1:8765")
    assert not same_origin("null", "127.0.0.1:8765")


@pytest.mark.parametrize(("header", "local"), [("127.0.0.1:8765", True), ("localhost:8765", True), ("localhost", True),
                                               ("[::1]:8765", True), ("evil.example:8765", False),
                                               ("10.0.0.5:8765", False), ("", False), (None, False)])  # fmt: skip
def test_without_a_token_only_loopback_host_headers_are_answered(header: str | None, local: bool) -> None:
    assert loopback_host(header) is local
