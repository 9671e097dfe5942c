"""A reader that stops early (`bootstrap jobs show ... | head -1`) is no error of bootstrap's: it
printed "internal error: BrokenPipeError" (found walking through the README as a new user)."""

from __future__ import annotations

import contextlib
import os
import sys

import pytest

from bootstrap.cli.main import main
from tests.conftest import SHIPPED_CONFIG


def test_a_closed_stdout_is_not_an_internal_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone, as after `| head -1`: a write raises BrokenPipeError
    closed = open(write_end, "w")  # noqa: SIM115 (closed below, its error suppressed)
    monkeypatch.setattr(sys, "stdout", closed)
    try:
        code = main(["validate", "--config", str(SHIPPED_CONFIG)])
    finally:
        monkeypatch.undo()
        with contextlib.suppress(BrokenPipeError):
            closed.close()
    err = capsys.readouterr().err
    assert "internal error" not in err, err
    assert code == 141  # as a shell shows a program that SIGPIPE ended (`yes | head`)


def test_a_broken_pipe_elsewhere_is_still_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only standard output's reader leaving is quiet: a broken pipe or socket of the command's own
    is an error like any other."""
    read_end, write_end = os.pipe()  # a healthy stdout: its reader is still there
    healthy = open(write_end, "w")  # noqa: SIM115 (closed below)

    def broken(*_: object) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("bootstrap.cli.validate.run", broken)
    monkeypatch.setattr(sys, "stdout", healthy)
    try:
        code = main(["validate", "--config", str(SHIPPED_CONFIG)])
    finally:
        monkeypatch.undo()
        healthy.close()
        os.close(read_end)
    assert code == 1
    assert "internal error: BrokenPipeError" in capsys.readouterr().err
