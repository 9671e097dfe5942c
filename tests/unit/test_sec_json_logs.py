"""Security review: with BOOTSTRAP_LOG_FORMAT=json, a password in a URL that ends a line is logged
in clear.

The JSON formatter masks the line after `json.dumps`, where a newline or a tab is the two
characters `\\n` / `\\t`. `redact.mask` only recognises the `@host` that ends the userinfo when a
separator (`/`, `?`, a space, a quote ...) or the end of the text follows the host, and `\\` is not
one of them: `redis://:S3cretPw@redis:6379` followed by a newline (a multi-line message, a chained
traceback, a handler's `log.exception`) keeps its password. The same record in text format is
masked (the real newline is a separator). A REDIS_URL with no `/0` is what docker-compose users
commonly write.
"""

from __future__ import annotations

import io
import logging

import pytest

from bootstrap import logs

SECRET = "S3cretPw77"


def emit(out: io.StringIO, fmt: str) -> str:
    logs.setup(level="INFO", fmt=fmt)
    assert logs._writer is not None
    logs._writer.stream = out
    log = logging.getLogger("app.handlers")  # a user's handler logging an error
    log.warning("sync failed: cannot reach redis://:%s@redis:6379\nwill retry", SECRET)
    try:
        try:
            raise ConnectionError(f"Error 111 connecting to mongodb://app:{SECRET}@db.internal")
        except ConnectionError as exc:
            raise RuntimeError("delta sync failed") from exc
    except RuntimeError:
        log.exception("job gave up")
    logs.flush()
    return out.getvalue()


def test_text_logs_mask_it(stream: io.StringIO) -> None:
    assert SECRET not in emit(stream, "text")


def test_json_logs_mask_a_url_that_ends_a_line(stream: io.StringIO) -> None:
    printed = emit(stream, "json")
    assert "****" in printed
    assert SECRET not in printed


def test_console_json_lines_mask_a_url_that_ends_a_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bootstrap import console

    monkeypatch.setenv("BOOTSTRAP_LOG_FORMAT", "json")
    console.err(f"cannot reach redis://:{SECRET}@redis:6379\nsecond line")
    console.out_json({"checks": [{"detail": f"Redis redis://:{SECRET}@redis:6379\ndoes not answer"}]})
    printed = capsys.readouterr()
    assert SECRET not in printed.err and "****" in printed.err
    assert SECRET not in printed.out and "****" in printed.out
