"""The per-job log fast path: the same lines the formatters write, buffered until `flush`, masked
when they could hold a secret, kept in order with ordinary records, and not taken when anything
else would see the record."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from bootstrap import logs


def install(out: io.StringIO, fmt: str = "text", level: str = "INFO") -> logging.Logger:
    logs.setup(level=level, fmt=fmt)
    assert logs._writer is not None
    logs._writer.stream = out
    return logging.getLogger("bootstrap.jobs")


def test_fast_lines_match_the_formatter_and_wait_for_flush(stream: io.StringIO) -> None:
    log = install(stream)
    assert logs.job_info(log, "job started: queue=q task=t id=abc attempt=1", "abc")
    assert stream.getvalue() == ""  # buffered
    logs.flush()
    line = stream.getvalue()
    assert re.fullmatch(r"\d\d:\d\d:\d\d INFO    bootstrap\.jobs: job started: queue=q task=t id=abc attempt=1\n", line)
    log.info("job started: queue=q task=t id=abc attempt=1")  # the ordinary path writes the same
    assert stream.getvalue().splitlines()[1][8:] == line.rstrip("\n")[8:]


def test_json_fast_lines_match_the_json_formatter(stream: io.StringIO) -> None:
    log = install(stream, "json")
    assert logs.job_info(log, 'job completed: id="x" in 0.001s', '"x"')
    logs.flush()
    log.info('job completed: id="x" in 0.001s')
    fast, slow = (json.loads(line) for line in stream.getvalue().splitlines())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", fast["time"])
    assert fast.keys() == slow.keys() and {k: fast[k] for k in ("level", "logger", "message", "pid")} == {
        k: slow[k] for k in ("level", "logger", "message", "pid")
    }


def test_ordinary_records_are_written_at_once_after_the_buffered_lines(stream: io.StringIO) -> None:
    log = install(stream)
    logs.job_info(log, "job started: id=1", "1")
    log.warning("something else")
    written = [line.split(": ", 1)[1] for line in stream.getvalue().splitlines()]
    assert written == ["job started: id=1", "something else"]


def test_a_secret_in_a_job_id_is_masked(stream: io.StringIO) -> None:
    log = install(stream)
    logs.job_info(log, "job started: id=redis://u:hunter2@host:6379/0 attempt=1", "redis://u:hunter2@host:6379/0")
    logs.job_info(log, "job started: id=token=hunter2 attempt=1", "token=hunter2")
    logs.flush()
    assert "hunter2" not in stream.getvalue() and stream.getvalue().count("****") == 2


def test_level_above_info_logs_nothing(stream: io.StringIO) -> None:
    log = install(stream, level="WARNING")
    assert logs.job_info(log, "job started: id=1", "1")  # handled: nothing to write
    logs.flush()
    assert stream.getvalue() == ""


def test_fast_path_is_not_taken_when_another_handler_or_a_filter_would_see_the_record(stream: io.StringIO) -> None:
    log = install(stream)
    extra = logging.NullHandler()
    log.addHandler(extra)
    try:
        assert not logs.job_info(log, "job started: id=1", "1")
    finally:
        log.removeHandler(extra)
    log.addFilter(lambda record: True)
    try:
        assert not logs.job_info(log, "job started: id=1", "1")
    finally:
        log.filters.clear()
    assert logs.job_info(log, "job started: id=1", "1")


def test_where_lines_go_is_looked_up_again_at_each_flush_and_at_once_for_the_root(stream: io.StringIO) -> None:
    log = install(stream)
    assert logs.job_info(log, "job started: id=1", "1")  # the fast path, now remembered
    between, seen = logging.getLogger("bootstrap"), logging.NullHandler()
    between.addHandler(seen)
    root = logging.getLogger()
    try:
        assert logs.job_info(log, "job started: id=2", "2")  # a logger in between: from the next flush
        logs.flush()
        assert not logs.job_info(log, "job started: id=3", "3")
    finally:
        between.removeHandler(seen)
    logs.flush()
    assert logs.job_info(log, "job started: id=4", "4")
    root.addHandler(seen)  # what a test capturing logs does: seen at once
    try:
        assert not logs.job_info(log, "job started: id=5", "5")
    finally:
        root.removeHandler(seen)
    assert logs.job_info(log, "job started: id=6", "6")


def test_a_level_set_on_bootstraps_handler_keeps_job_lines_out(stream: io.StringIO) -> None:
    log = install(stream)
    assert logs._writer is not None
    logs._writer.setLevel(logging.WARNING)
    assert not logs.job_info(log, "job started: id=1", "1")  # the ordinary path, which the level stops
    log.info("job started: id=1")
    logs.flush()
    assert stream.getvalue() == ""


def test_a_full_buffer_is_written_without_waiting(stream: io.StringIO) -> None:
    log = install(stream)
    for n in range(logs.MAX_BUFFERED):
        logs.job_info(log, f"job started: id={n}", str(n))
    assert len(stream.getvalue().splitlines()) == logs.MAX_BUFFERED


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("BOOTSTRAP_LOG_LEVEL", "verbose", "BOOTSTRAP_LOG_LEVEL='verbose' is not a log level"),
        ("BOOTSTRAP_LOG_FORMAT", "xml", "BOOTSTRAP_LOG_FORMAT='xml' is not a log format (one of text, json)"),
    ],
)
def test_a_worker_with_an_unknown_log_setting_logs_it_and_uses_the_default(
    stream: io.StringIO, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    variable: str, value: str, said: str,
) -> None:  # fmt: skip
    """The CLI refuses to run on it (tests/e2e); a worker or the scheduler (which call `setup()` with
    no arguments) must not die of it: INFO, text, and a warning naming the variable."""
    monkeypatch.setenv(variable, value)
    assert logs.problem() is not None and said in logs.problem()  # type: ignore[operator]
    logs.setup()
    assert logging.getLogger().level == logging.INFO
    assert logs._writer is not None and not logs._writer.json
    assert said in capsys.readouterr().err


def test_logging_s_own_level_aliases_are_levels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOTSTRAP_LOG_LEVEL", "warn")
    monkeypatch.delenv("BOOTSTRAP_LOG_FORMAT", raising=False)
    assert logs.problem() is None
