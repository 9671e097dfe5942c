"""Entry point: parse arguments, dispatch to a command module, turn errors into exit codes.

Exit codes: 0 success, 1 error (invalid config, failed operation), 2 usage error or, with
--detailed-exitcode, changes present.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from pymongo.errors import PyMongoError
from redis.exceptions import RedisError

from bootstrap import __version__, console, logs
from bootstrap.cli import apply, enqueue, generate, jobs, plan, status, up, validate
from bootstrap.cli.common import add_config_option
from bootstrap.errors import BootstrapError, ConfigError

COMMANDS = {
    "validate": validate,
    "plan": plan,
    "apply": apply,
    "generate": generate,
    "up": up,
    "status": status,
    "enqueue": enqueue,
    "jobs": jobs,
}


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="bootstrap",
        description="Declare MongoDB collections, Redis queues and schedules in YAML; validate, plan, "
        "apply and generate the Taskiq wiring.",
    )
    root.add_argument("--version", action="version", version=f"bootstrap {__version__}")
    root.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        default=None,
        help="log lines as text (default) or one JSON object per line; also BOOTSTRAP_LOG_FORMAT",
    )
    commands = root.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in COMMANDS.items():
        sub = commands.add_parser(name, help=module.HELP, description=module.HELP)
        add_config_option(sub)
        module.add_arguments(sub)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.log_format:
        os.environ["BOOTSTRAP_LOG_FORMAT"] = args.log_format  # child processes (up) inherit it
    logs.setup()
    module = COMMANDS[args.command]
    try:
        code: int = module.run(args)
        return code
    except ConfigError as exc:
        for finding in exc.findings:
            console.err(str(finding))
        console.err(f"{len(exc.findings)} problem(s) found in {args.config}")
        return 1
    except BootstrapError as exc:
        console.err(f"error: {exc}")
        return 1
    except PyMongoError as exc:  # an operational problem (permissions, failover), not a bug of ours
        console.err(f"error: MongoDB: {exc}")
        return 1
    except RedisError as exc:
        console.err(f"error: Redis: {exc}")
        return 1
    except KeyboardInterrupt:
        console.err("interrupted")
        return 130
    except Exception as exc:  # a bug in bootstrap, not bad input: say so, keep the trace out of sight
        if os.environ.get("BOOTSTRAP_DEBUG"):
            traceback.print_exc()
        console.err(f"internal error: {type(exc).__name__}: {exc} (set BOOTSTRAP_DEBUG=1 for details)")
        return 1


if __name__ == "__main__":
    sys.exit(main())
