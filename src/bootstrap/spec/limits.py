"""How long a duration may be, by where it is written: one table, read by the checks of a loaded
spec (`checks`) and of a value a process resolves from its environment when it starts
(`envvalues`), so both refuse the same values."""

from __future__ import annotations

from bootstrap.spec.yamlload import PathKey

DAY = 86400.0


def duration_limits(path: PathKey) -> tuple[float, float] | None:
    """(shortest, longest) in seconds for the duration at `path` of a bootstrap, queues or schedules
    file; None where the table says nothing (a check of its own, or none)."""
    last = path[-1] if path else None
    if path[-2:] == ("rate_limit", "per"):
        return 0.001, DAY
    if len(path) >= 2 and path[-2] == "timeouts":  # connection timeouts of mongodb and redis
        return 0.001, DAY
    if last == "timeout" and "tasks" in path:
        return 0.001, 7 * DAY
    return _BY_KEY.get(last) if isinstance(last, str) else None


_BY_KEY: dict[str, tuple[float, float]] = {
    "visibility_timeout": (1, DAY),
    "shutdown_timeout": (0, 3600),
    "max_age": (1, 365 * DAY),  # retention
    "every": (1, 366 * DAY),  # a schedule's interval
    "delay": (0, DAY),  # retries and connect retries
    "max_delay": (0, 7 * DAY),
}


def range_problem(seconds: float, low: float, high: float) -> str | None:
    if seconds < low:
        return f"{seconds:g}s is too short (expected at least {low:g}s)"
    if seconds > high:
        return f"{seconds:g}s is too long (expected at most {high:g}s)"
    return None
