"""What several commands share when they run: loading the spec, connecting, the plan options.

The option *definitions* live in `bootstrap.cli.options` (cheap to import, used to build the parser);
they are re-exported here for the command modules.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from pymongo.database import Database

from bootstrap.cli.options import add_config_option as add_config_option
from bootstrap.cli.options import add_plan_options as add_plan_options
from bootstrap.cli.options import default_config_dir as default_config_dir
from bootstrap.connect import retry
from bootstrap.connect.mongo import connect
from bootstrap.connect.redis import connect as connect_redis
from bootstrap.engine.ops import Options
from bootstrap.local.upstate import running_up
from bootstrap.redact import mask
from bootstrap.spec.load import load_spec
from bootstrap.spec.model import Spec

log = logging.getLogger("bootstrap.cli")

# Commands that connect to MongoDB or Redis, so may use the servers of a running `bootstrap up`.
CONNECTING = frozenset({"plan", "apply", "status", "health", "enqueue", "jobs", "dashboard"})
# Commands that connect to nothing: a variable they do not need (a password) may be unset.
OFFLINE = frozenset({"validate", "generate", "docs"})


def plan_options(args: argparse.Namespace) -> Options:
    return Options(
        allow_rebuild=args.allow_rebuild,
        prune=args.prune,
        allow_expire=args.allow_expire,
        fix_redis=args.fix_redis,
        check_timeout=args.check_timeout,
        lock_timeout=getattr(args, "lock_timeout", 600.0),
    )


def spec_from(args: argparse.Namespace) -> Spec:
    retry.HINTS.clear()  # this command's own (tests run several commands in one process)
    if getattr(args, "command", None) not in CONNECTING:
        return load_spec(args.config, offline=getattr(args, "command", None) in OFFLINE)
    up_runs = use_servers_of_up(args.config)
    spec = load_spec(args.config)
    if not up_runs:
        hint_defaults(spec)
    return spec


def use_servers_of_up(config_dir: Path) -> bool:
    """When MONGODB_URI or REDIS_URL is not set and a `bootstrap up` runs for this project (the
    folder holding `config_dir`), use the servers it started, and say so in one line. Set in this
    process's environment, where the spec's `${MONGODB_URI:-...}` and the job layer's URL templates
    are resolved from. True when such an `up` runs."""
    want_mongo = not os.environ.get("MONGODB_URI")
    want_redis = not (os.environ.get("REDIS_URL") or os.environ.get("REDIS_HOST"))
    if not (want_mongo or want_redis):
        return False
    try:
        root = config_dir.resolve().parent
    except (OSError, RuntimeError):  # a config folder that cannot be resolved: load_spec reports it
        return False
    up = running_up(root)
    if up is None:
        return False
    used = []
    if want_mongo and up.mongodb_uri:
        os.environ["MONGODB_URI"] = up.mongodb_uri
        used.append(f"MongoDB {mask(up.mongodb_uri)}")
    if want_redis and up.redis_url:
        os.environ["REDIS_URL"] = up.redis_url
        used.append(f"Redis {mask(up.redis_url)}")
    if used:
        log.info("using the servers of `bootstrap up` (pid %d): %s", up.pid, ", ".join(used))
    return True


def hint_defaults(spec: Spec) -> None:
    """With no `bootstrap up` running, a config that reads MONGODB_URI / REDIS_URL (as the shipped one
    does) and the variable not set: a failed connection says how to give one (see connect.retry)."""
    for kind, template, names in (
        ("MongoDB", spec.mongodb.uri_template, ("MONGODB_URI",)),
        ("Redis", spec.redis.url_template, ("REDIS_URL", "REDIS_HOST")),
    ):
        read = [name for name in names if "${" + name in template]
        if read and not any(os.environ.get(name) for name in names):
            retry.HINTS[kind] = (
                f"no `bootstrap up` runs for this project and {read[0]} is not set: "
                f"start `bootstrap up`, or set {read[0]}"
            )


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
