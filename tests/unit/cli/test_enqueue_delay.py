"""`bootstrap enqueue --delay`: durations as in the spec, or a plain number of seconds."""

from __future__ import annotations

import pytest

from bootstrap.cli.enqueue import _delay
from bootstrap.errors import BootstrapError


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("30", 30.0), (" 30 ", 30.0), ("0", 0.0), ("1.5", 1.5), (".5", 0.5), ("1e3", 1000.0), ("30s", 30.0),
     ("1h30m", 5400.0)],
)  # fmt: skip
def test_delays_read(written: str, seconds: float) -> None:
    assert _delay(written, None) == seconds


@pytest.mark.parametrize(("written", "said"), [("-5", "negative"), ("nan", "not a duration"), ("inf", "not a duration"),
                                               ("soon", "not a duration")])  # fmt: skip
def test_delays_refused(written: str, said: str) -> None:
    with pytest.raises(BootstrapError, match=said):
        _delay(written, None)
