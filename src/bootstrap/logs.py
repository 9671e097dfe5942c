"""Logging setup: human-readable lines on stderr, level from BOOTSTRAP_LOG_LEVEL, and every record
passed through the credential mask, whatever logged it (our code, pymongo, redis, taskiq)."""

from __future__ import annotations

import logging
import os
import sys

from bootstrap.redact import mask


class MaskingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def setup(level: str | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    handler.addFilter(MaskingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel((level or os.environ.get("BOOTSTRAP_LOG_LEVEL") or "INFO").upper())
    # The drivers' own debug chatter is not for operators; their warnings are.
    for noisy in ("pymongo", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
