"""`bootstrap up`: the whole stack on this machine, until Ctrl-C."""

from __future__ import annotations

import argparse

from bootstrap.local import up


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--embedded",
        action="store_true",
        help="start local MongoDB and Redis even when MONGODB_URI / REDIS_URL are set",
    )


def run(args: argparse.Namespace) -> int:
    return up.run(args.config, args.embedded)
