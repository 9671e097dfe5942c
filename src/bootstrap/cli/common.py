"""What several commands share: loading the spec, connecting, the plan options."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from pymongo.database import Database

from bootstrap.connect.mongo import connect
from bootstrap.connect.redis import connect as connect_redis
from bootstrap.engine.ops import Options
from bootstrap.spec.load import load_spec
from bootstrap.spec.model import Spec


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


def add_plan_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-rebuild",
        action="store_true",
        help="drop and recreate indexes whose keys or options changed (otherwise blocked)",
    )
    parser.add_argument("--prune", action="store_true", help="drop indexes that exist but are not declared")
    parser.add_argument(
        "--fix-redis", action="store_true", help="set Redis's maxmemory-policy to the declared one (otherwise blocked)"
    )


def plan_options(args: argparse.Namespace) -> Options:
    return Options(
        allow_rebuild=args.allow_rebuild,
        prune=args.prune,
        fix_redis=args.fix_redis,
        lock_timeout=getattr(args, "lock_timeout", 600.0),
    )


def spec_from(args: argparse.Namespace) -> Spec:
    return load_spec(args.config)


@contextmanager
def database(spec: Spec) -> Iterator[Database[Any]]:
    client = connect(spec.mongodb)
    try:
        yield client[spec.mongodb.database]
    finally:
        client.close()


@contextmanager
def redis_client(spec: Spec) -> Iterator[redis.Redis]:
    client = connect_redis(spec.redis)
    try:
        yield client
    finally:
        client.close()
