"""Logging setup for every bootstrap process (CLI, workers, scheduler): one line per record on
stderr, human-readable or JSON (`--log-format json` / BOOTSTRAP_LOG_FORMAT), level from
BOOTSTRAP_LOG_LEVEL, and every formatted line — tracebacks included — passed through the credential
mask, whatever logged it (our code, pymongo, redis, taskiq)."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

from bootstrap.redact import mask

FORMATS = ("text", "json")


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the traceback, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return mask(json.dumps(entry, default=str))


def setup(level: str | None = None, fmt: str | None = None) -> None:
    chosen = (fmt or os.environ.get("BOOTSTRAP_LOG_FORMAT") or "text").lower()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel((level or os.environ.get("BOOTSTRAP_LOG_LEVEL") or "INFO").upper())
    # The drivers' own debug chatter is not for operators; their warnings are.
    for noisy in ("pymongo", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
