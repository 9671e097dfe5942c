"""Options several commands declare (`--config`, the plan flags).

Only argparse and the standard library: `bootstrap.cli.main` builds its parser from here before it
knows which command runs, so nothing here may import a driver or the engine.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path


def default_config_dir() -> Path:
    return Path(os.environ.get("BOOTSTRAP_CONFIG", "config"))


def add_config_option(parser: argparse.ArgumentParser, *, nested: bool = False) -> None:
    """`--config DIR`. On an action of a command (`jobs failed`) it has no default of its own, so it
    can be given before or after the action without one overwriting the other."""
    parser.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS if nested else default_config_dir(),
        metavar="DIR",
        help="config folder (default: $BOOTSTRAP_CONFIG or ./config)",
    )


def port_number(text: str) -> int:
    """A TCP port (argparse type): 0-65535, 0 meaning a free one; anything else is a usage error."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0-65535)")
    return port


def add_plan_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-rebuild",
        action="store_true",
        help="drop and recreate indexes whose keys or options changed (otherwise blocked)",
    )
    parser.add_argument("--prune", action="store_true", help="drop indexes that exist but are not declared")
    parser.add_argument(
        "--allow-expire",
        action="store_true",
        help="let a new or shorter TTL delete the existing documents already past it (otherwise blocked)",
    )
    parser.add_argument(
        "--fix-redis", action="store_true", help="set Redis's maxmemory-policy to the declared one (otherwise blocked)"
    )
    parser.add_argument(
        "--check-timeout",
        type=_seconds,
        default=600.0,
        metavar="SECONDS",
        help="how long each read of a collection's documents that a change needs (a new validator's failures, "
        "duplicates under a unique index, what a TTL deletes) may take (default 600)",
    )


def _seconds(text: str) -> float:
    """A time budget: a finite number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return value
