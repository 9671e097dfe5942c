"""What several commands share when they run: loading the spec, connecting, the plan options.

The option *definitions* live in `bootstrap.cli.options` (cheap to import, used to build the parser);
they are re-exported here for the command modules.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from pymongo.database import Database

from bootstrap.cli.options import add_config_option as add_config_option
from bootstrap.cli.options import add_plan_options as add_plan_options
from bootstrap.cli.options import default_config_dir as default_config_dir
from bootstrap.connect.mongo import connect
from bootstrap.connect.redis import connect as connect_redis
from bootstrap.engine.ops import Options
from bootstrap.spec.load import load_spec
from bootstrap.spec.model import Spec


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
    """The spec's database for one command. The client is `short_lived`: when it is closed, no
    connection of it is left open and no thread of it holds one (see `client_options`)."""
    client = connect(spec.mongodb, short_lived=True)
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
