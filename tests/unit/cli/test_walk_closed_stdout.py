"""Found walking through the README as a new user: `bootstrap jobs show ... | head -1` (or any
command's output piped to a reader that stops early) printed "internal error: BrokenPipeError"."""

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
        main(["validate", "--config", str(SHIPPED_CONFIG)])
    finally:
        monkeypatch.undo()
        with contextlib.suppress(BrokenPipeError):
            closed.close()
    err = capsys.readouterr().err
    assert "internal error" not in err, err
