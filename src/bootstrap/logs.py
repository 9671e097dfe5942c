"""Logging setup for every bootstrap process (CLI, workers, scheduler): one line per record on
stderr, human-readable or JSON (`--log-format json` / BOOTSTRAP_LOG_FORMAT), level from
BOOTSTRAP_LOG_LEVEL, and every formatted line — tracebacks included — passed through the credential
mask, whatever logged it (our code, pymongo, redis, taskiq).

Per-job lines (a worker logs each job's start and completion) take a cheaper path, `job_info`: the
line is put together from the pieces (no LogRecord, no Formatter; the clock is formatted once a
second), kept in a buffer and written with the other buffered lines in one write by `flush`, which
the worker calls before each batch of acknowledgements and every 20 ms. So a job's lines are written
before its acknowledgement: a crash can lose only lines of jobs that are delivered again (and log
again). Every other record is written at once, after the buffered lines (order kept). The fast path
is taken only while bootstrap's own handler is the only one the record would reach; otherwise (a
test capturing logs, an application that configured logging itself) the ordinary `log.info` runs.
Which way a logger's lines go is looked up once per `flush` (the walk up the logger tree costs
about as much as the line), and at once when the root logger's handlers change or the job's logger
has handlers or filters of its own; other changes while a worker runs (a handler on a logger in
between, "bootstrap", or a filter on bootstrap's handler) take its lines from the next flush on.
"""

from __future__ import annotations

import atexit
import copy
import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from typing import TextIO

from bootstrap.redact import mask

FORMATS = ("text", "json")
TEXT_FORMAT, TEXT_DATE = "%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"
MAX_BUFFERED = 1000  # lines: a longer buffer is written at once, whoever asks


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT, TEXT_DATE)

    def format(self, record: logging.LogRecord) -> str:
        args = record.args
        if isinstance(args, tuple) and not all(type(a) is not str or a.isprintable() for a in args):
            record = copy.copy(record)  # the record other handlers see keeps its values
            # masked first: escaped, the newline that ends a URL is `\n`, which the mask does not see as its end
            record.args = tuple(printable(mask(a)) if type(a) is str else a for a in args)
        return mask(super().format(record))


def printable(text: str) -> str:
    """`text` with its control characters (newline, ESC, ...) written as escapes (`\\n`, `\\x1b`): a
    value from outside (a job id, a request path) logged as an argument can neither start a log line
    of its own nor drive the reader's terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the traceback, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask(record.getMessage()),
            "pid": record.process,
        }
        if record.exc_info:
            entry["traceback"] = mask(self.formatException(record.exc_info))
        # Masked before json.dumps, which turns the newline that may end a URL into `\n`.
        return json.dumps(entry, default=str)


class LineWriter(logging.Handler):
    """bootstrap's one log handler: formatted lines to `stream`, fast per-job lines buffered (see
    the module's docstring). Thread-safe: renewal and the watchdog log from threads of their own."""

    def __init__(self, fmt: str, stream: TextIO | None = None) -> None:
        super().__init__()
        self.json = fmt == "json"
        self.setFormatter(JsonFormatter() if self.json else TextFormatter())
        self.stream = stream if stream is not None else sys.stderr
        self._lines: list[str] = []
        self._heads: dict[tuple[str, str], str] = {}  # (level, logger) -> the text line's part after the time
        self._second = -1  # the second `_stamp` was formatted for
        self._stamp = ""
        self._pid = os.getpid()

    # --- every record -----------------------------------------------------------------------------

    def emit(self, record: logging.LogRecord) -> None:  # called with self.lock held (Handler.handle)
        try:
            self._lines.append(self.format(record) + "\n")
            self._write()
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        """Write the buffered lines (one write)."""
        with self.lock:  # type: ignore[union-attr]  # Handler.createLock made it
            if self._lines:
                try:
                    self._write()
                except Exception:  # as logging does: a broken stderr must not stop the worker
                    self._lines.clear()

    def _write(self) -> None:
        text, self._lines = "".join(self._lines), []
        self.stream.write(text)
        self.stream.flush()

    # --- the per-job fast path --------------------------------------------------------------------

    def line(self, level: str, name: str, message: str) -> None:
        """Buffer one line, formatted as the formatter would (the caller masked `message`)."""
        now = time.time()
        second = int(now)
        with self.lock:  # type: ignore[union-attr]
            if second != self._second:
                self._second, self._stamp = second, self._clock(now)
            if self.json:
                millis = int((now - second) * 1000)
                line = (
                    f'{{"time": "{self._stamp}.{millis:03d}+00:00", "level": "{level}", "logger": '
                    f'{json.dumps(name)}, "message": {json.dumps(message)}, "pid": {self._pid}}}\n'
                )
            else:
                head = self._heads.get((level, name))
                if head is None:
                    head = self._heads[level, name] = f" {level:<7} {name}: "
                line = f"{self._stamp}{head}{message}\n"
            self._lines.append(line)
            if len(self._lines) >= MAX_BUFFERED:
                self._write()

    def _clock(self, now: float) -> str:
        if self.json:
            return datetime.fromtimestamp(int(now), UTC).isoformat(timespec="seconds").removesuffix("+00:00")
        return time.strftime(TEXT_DATE, time.localtime(now))


_writer: LineWriter | None = None
_routes: dict[str, LineWriter] = {}  # logger name -> our handler, where `_fast_writer` found it, until the next flush


def _fast_writer(logger: logging.Logger) -> LineWriter | None:
    """Our handler, if a record of `logger` would reach it and nothing else (no other handler, no
    filter on the way); else None."""
    writer = _writer
    if writer is None or writer.filters or writer.level > logging.INFO:  # a level set on the handler itself
        return None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        if current.handlers:
            return writer if current.handlers == [writer] and current.parent is None else None
        if not current.propagate:
            return None
        current = current.parent
    return None


def job_info(logger: logging.Logger, message: str, outside: str) -> bool:
    """Log `message` at INFO through the fast path; False when it cannot be taken (the caller then
    logs the ordinary way). `outside` is the part of the message that comes from outside bootstrap
    (a job id): the line goes through the credential mask when it could hold a secret the mask
    recognises (a URL, or `name=` in `outside`); the rest of `message` is bootstrap's own words."""
    if not logger.isEnabledFor(logging.INFO):
        return True  # nothing to log, as log.info would have decided
    name, handlers = logger.name, logging.root.handlers
    # Looked up again at once when the root's handlers changed (a test capturing logs adds one) or
    # the logger has handlers or filters of its own.
    writer = _routes.get(name)
    if writer is None or len(handlers) != 1 or handlers[0] is not _writer or logger.handlers or logger.filters:
        writer = _fast_writer(logger)
        if writer is None:  # not remembered: the ordinary path costs more than the look-up anyway
            _routes.pop(name, None)
            return False
        _routes[name] = writer
    if "://" in message or "=" in outside:
        message = mask(message)
    if not outside.isprintable():  # a job id with a newline or ESC (see `printable`); after the mask, as above
        message = printable(message)
    writer.line("INFO", name, message)
    return True


def flush() -> None:
    """Write the buffered per-job lines now (and look up again where each logger's lines go)."""
    _routes.clear()
    if _writer is not None:
        _writer.flush()


LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")  # as said in messages; logging's aliases work too


def _level_known(level: str) -> bool:
    return level.upper() in logging.getLevelNamesMapping()


def problem() -> str | None:
    """What is wrong with BOOTSTRAP_LOG_LEVEL or BOOTSTRAP_LOG_FORMAT, if anything (the CLI refuses
    to run on it; a worker or the scheduler logs it and uses the default, see `setup`)."""
    level = os.environ.get("BOOTSTRAP_LOG_LEVEL")
    if level and not _level_known(level):
        return f"BOOTSTRAP_LOG_LEVEL={level!r} is not a log level (one of {', '.join(LEVELS)})"
    fmt = os.environ.get("BOOTSTRAP_LOG_FORMAT")
    if fmt and fmt.lower() not in FORMATS:
        return f"BOOTSTRAP_LOG_FORMAT={fmt!r} is not a log format (one of {', '.join(FORMATS)})"
    return None


def setup(level: str | None = None, fmt: str | None = None) -> None:
    global _writer
    chosen = (fmt or os.environ.get("BOOTSTRAP_LOG_FORMAT") or "text").lower()
    flush()  # lines buffered by a previous setup are not lost
    _writer = LineWriter(chosen if chosen in FORMATS else "text")
    root = logging.getLogger()
    root.handlers[:] = [_writer]
    wanted = (level or os.environ.get("BOOTSTRAP_LOG_LEVEL") or "INFO").upper()
    root.setLevel(wanted if _level_known(wanted) else "INFO")
    # The drivers' own debug chatter is not for operators; their warnings are.
    for noisy in ("pymongo", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if level is None and fmt is None and (wrong := problem()) is not None:
        logging.getLogger("bootstrap.logs").warning("%s; using the default", wrong)


atexit.register(flush)
