"""Durations: parsing what users write, formatting back, and what is refused."""

from __future__ import annotations

import pytest

from bootstrap.spec.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        (0, 0.0),
        (45, 45.0),
        (2.5, 2.5),
        ("0s", 0.0),
        ("500ms", 0.5),
        ("30s", 30.0),
        ("15m", 900.0),
        ("2h", 7200.0),
        ("24h", 86400.0),
        ("90d", 7776000.0),
        ("30d", 2592000.0),
        ("1w", 604800.0),
        ("1h30m", 5400.0),
        ("1d2h3m4s", 93784.0),
        ("1.5s", 1.5),
        ("0.5h", 1800.0),
        ("1m1m", 120.0),  # parts add up
        (" 5m ", 300.0),
        ("0ms", 0.0),
    ],
)
def test_parse(written: int | float | str, seconds: float) -> None:
    assert parse_duration(written) == seconds


@pytest.mark.parametrize(
    "written",
    ["", " ", "3x", "-5s", "15 minutes", "15 m", "5M", "1H", "m", "s5", "1.s", ".5s", "1h 30m", "1h-30m", "10", "1e3s"],
)
def test_parse_refuses(written: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(written)


@pytest.mark.parametrize("written", [-1, -0.5])
def test_parse_refuses_negative_numbers(written: float) -> None:
    with pytest.raises(ValueError, match="negative"):
        parse_duration(written)


@pytest.mark.parametrize("written", [True, False])
def test_parse_refuses_booleans(written: bool) -> None:
    with pytest.raises(ValueError):
        parse_duration(written)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (1, "1s"),
        (59, "59s"),
        (60, "1m"),
        (90, "1m30s"),
        (900, "15m"),
        (3600, "1h"),
        (5400, "1h30m"),
        (86400, "1d"),
        (90061, "1d1h1m1s"),
        (2592000, "30d"),
        (7776000, "90d"),  # days, not 12w6d
        (0.5, "500ms"),
        (1.5, "1500ms"),
    ],
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [0, 1, 7, 59, 60, 61, 3599, 3600, 3601, 86399, 86400, 604800, 7776000, 2**31 - 1])
def test_round_trip_whole_seconds(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("millis", [1, 250, 500, 999, 1001, 1500, 61001])
def test_round_trip_milliseconds(millis: int) -> None:
    assert parse_duration(format_duration(millis / 1000)) == pytest.approx(millis / 1000)


@pytest.mark.parametrize("text", ["30s", "15m", "2h", "90d", "1h30m", "500ms", "1d1h1m1s"])
def test_round_trip_canonical_text(text: str) -> None:
    assert format_duration(parse_duration(text)) == text
