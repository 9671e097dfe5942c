"""`bootstrap up`: the whole stack on this machine, until Ctrl-C."""

from __future__ import annotations

import argparse

from bootstrap.cli.options import add_plan_options
from bootstrap.engine.ops import Options
from bootstrap.local import up


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--embedded",
        action="store_true",
        help="start local MongoDB and Redis even when MONGODB_URI / REDIS_URL are set",
    )
    # As for apply: what up may do to resolve a blocked plan (on the local servers, say).
    add_plan_options(parser)


def run(args: argparse.Namespace) -> int:
    options = Options(allow_rebuild=args.allow_rebuild, prune=args.prune, allow_expire=args.allow_expire,
                      fix_redis=args.fix_redis, check_timeout=args.check_timeout)  # fmt: skip
    return up.run(args.config, args.embedded, options)
