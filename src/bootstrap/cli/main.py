"""Entry point: parse arguments, dispatch to a command module, turn errors into exit codes.

Exit codes: 0 success, 1 error (invalid config, failed operation), 2 usage error or, with
--detailed-exitcode, changes present.

Commands are imported lazily: the parser knows every command by name and one-line help (the table
below), and imports a command's module, which adds its arguments, only when that command is chosen
(`bootstrap plan ...`, `bootstrap plan --help`). So `validate` never loads the MongoDB and Redis
drivers, and `validate`, `plan` and `apply` never load taskiq, aiohttp, jinja2 or pydantic, which the
job commands need: about a quarter of a second per run.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import select
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, NoReturn

from bootstrap import __version__, console, logs
from bootstrap.cli.options import add_config_option
from bootstrap.errors import BootstrapError, ConfigError, Terminated


@dataclass(frozen=True)
class Command:
    """A command: the module holding its `add_arguments(parser)` and `run(args) -> int`, and its help.

    `ends_at_once`: when run as the program, the process ends as soon as the command returned and its
    output is flushed (see `entry`). Only for commands that release everything they hold before
    returning: no thread, child process or temporary file of theirs outlives `run`.
    """

    module: str
    help: str
    ends_at_once: bool = False


COMMANDS = {
    "validate": Command(
        "bootstrap.cli.validate",
        "check the config folder and report every problem as file:line:column: path: message",
        ends_at_once=True,
    ),
    "plan": Command(
        "bootstrap.cli.plan",
        "show what apply would change (+ create, ~ change in place, -/+ rebuild, - drop, ! blocked)",
        ends_at_once=True,
    ),
    "apply": Command(
        "bootstrap.cli.apply",
        "create and change collections, validators, indexes, queues and schedules to match the spec",
        ends_at_once=True,
    ),
    "generate": Command(
        "bootstrap.cli.generate", "write the generated Taskiq wiring (--check: exit 1 if it is stale)"
    ),
    "up": Command(
        "bootstrap.cli.up",
        "start everything: local MongoDB and Redis if none is configured, apply, workers and scheduler",
    ),
    "status": Command(
        "bootstrap.cli.status",
        "what is live and whether it matches the spec: collections, queues, schedules, workers",
        ends_at_once=True,
    ),
    "health": Command(
        "bootstrap.cli.health",
        "exit 0 only when MongoDB, Redis, schedules and workers are as declared and working (--json)",
        ends_at_once=True,
    ),
    "enqueue": Command("bootstrap.cli.enqueue", "put a job on a queue: bootstrap enqueue QUEUE TASK [--kwargs JSON]"),
    "jobs": Command(
        "bootstrap.cli.jobs",
        "failed jobs: jobs failed QUEUE | show QUEUE ID | retry QUEUE (ID... | --all) | purge QUEUE [--yes]; "
        "jobs pause QUEUE | resume QUEUE",
        ends_at_once=True,
    ),
    "dashboard": Command(
        "bootstrap.cli.dashboard",
        "the web dashboard: queues, failed jobs (retry, purge), schedules, collections, the spec as a picture",
    ),
    "docs": Command(
        "bootstrap.cli.docs",
        "write docs/collections.md: the collections and a Mermaid diagram of their references",
        ends_at_once=True,
    ),
    "schemas": Command(
        "bootstrap.cli.schemas",
        "write the config's JSON Schemas beside the config folder, for editors (--check: exit 1 if stale)",
        ends_at_once=True,
    ),
}


def command_module(name: str) -> ModuleType:
    return importlib.import_module(COMMANDS[name].module)


class _LazyCommands(argparse._SubParsersAction):  # type: ignore[type-arg]
    """Sub-commands whose arguments are added when the command is chosen, not before: adding them
    means importing the command's module."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loaded: set[str] = set()

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        name = values[0] if isinstance(values, list | tuple) and values else None
        if name in COMMANDS and name not in self._loaded:
            self._loaded.add(name)
            sub: argparse.ArgumentParser = self._name_parser_map[name]
            add_config_option(sub)
            command_module(name).add_arguments(sub)
        super().__call__(parser, namespace, values, option_string)


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
    commands = root.add_subparsers(dest="command", metavar="COMMAND", required=True, action=_LazyCommands)
    for name, command in COMMANDS.items():
        commands.add_parser(name, help=command.help, description=command.help)
    return root


def _driver_error(exc: BaseException) -> str | None:
    """The driver ("MongoDB" or "Redis") whose error `exc` is, if any. Looked up in sys.modules: a
    command that never loaded a driver cannot have raised its error, and importing one here would cost
    as much as the whole of `validate`."""
    mongo = sys.modules.get("pymongo.errors")
    if mongo is not None and isinstance(exc, mongo.PyMongoError):
        return "MongoDB"
    redis = sys.modules.get("redis.exceptions")
    if redis is not None and isinstance(exc, redis.RedisError):
        return "Redis"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run `bootstrap ARGV...` and return its exit code (tests and other Python code call this)."""
    return _dispatch(argv)[0]


def entry() -> NoReturn:
    """The program (`bootstrap`, `python -m bootstrap`): `main`, then the exit.

    A command marked `ends_at_once` ends the process with `os._exit` once its output is flushed.
    A normal interpreter exit would first run pymongo's exit hook, which joins the driver's
    background threads: they sleep in 0.5 s steps, so even after `MongoClient.close()` (which
    closed every connection: see `connect.mongo.client_options(short_lived=True)`) the process
    waited up to half a second for threads that hold nothing, then tore down some 500 modules one by
    one. Nothing is lost by skipping that: the command closed its clients, logging is shut down and
    both streams flushed here, and if any non-daemon thread is still running, or a stream cannot be
    flushed, the exit is the usual one instead."""
    code, command = _dispatch(None)
    try:
        sys.stdout.flush()  # what is still buffered: its reader may have left meanwhile
    except BrokenPipeError:
        gone = _reader_gone()
        code = code or gone  # a command that failed keeps its own code (its error went to stderr)
    if command is not None and COMMANDS[command].ends_at_once:
        _exit_at_once(code)
    sys.exit(code)


def _terminated(signum: int, frame: object) -> None:
    raise Terminated()


def _names_detailed_exitcode(arg: str) -> bool:
    """`--detailed-exitcode` or an abbreviation argparse takes for it (`--detailed`, `--d`)."""
    return arg.startswith("--d") and "--detailed-exitcode".startswith(arg.split("=")[0])


def _stdout_gone() -> bool:
    """Standard output is a pipe or socket whose reader closed it."""
    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poll.poll(0))
    except (OSError, ValueError, AttributeError):  # no descriptor (a test's captured stream), no poll
        return False


def _reader_gone() -> int:
    """Standard output's reader left before the output ended (`bootstrap jobs failed | head -1`):
    not an error of ours. The rest of the output goes nowhere (else the interpreter's last flush
    reports the broken pipe again), and the exit code is the one a shell gives a program that
    SIGPIPE ended, as `yes | head` does."""
    with contextlib.suppress(OSError, ValueError):  # no descriptor (a test's captured stream)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return 141  # 128 + SIGPIPE


def _exit_at_once(code: int) -> None:
    main_thread = threading.main_thread()
    if any(not thread.daemon for thread in threading.enumerate() if thread is not main_thread):
        return  # someone is still working: let the interpreter wait for it, as usual
    logging.shutdown()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return  # a closed pipe or stream: the usual exit reports it
    os._exit(code)


def _dispatch(argv: Sequence[str] | None) -> tuple[int, str | None]:
    """The exit code, and the command that ran (None when there was none to run)."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:
        # A usage error exits 2, which `plan --detailed-exitcode` says for "changes": there a typo
        # would read as a pending change to a CI script, so it is the plan's error code, 1.
        given = sys.argv[1:] if argv is None else argv
        if exc.code == 2 and any(_names_detailed_exitcode(arg) for arg in given):
            raise SystemExit(1) from None
        raise
    if args.log_format:
        os.environ["BOOTSTRAP_LOG_FORMAT"] = args.log_format  # child processes (up) inherit it
    if (wrong := logs.problem()) is not None:  # a setting that would be ignored, said before anything runs
        console.err(f"error: {wrong}")
        return 1, None
    logs.setup()
    command: str = args.command
    signal.signal(signal.SIGTERM, _terminated)  # a command that serves until stopped (up) sets its own
    try:
        code: int = command_module(command).run(args)
        return code, command
    except ConfigError as exc:
        for finding in exc.findings:
            console.err(str(finding))
        console.err(f"{len(exc.findings)} problem(s) found in {args.config}")
        return 1, command
    except BootstrapError as exc:
        console.err(f"error: {exc}")
        return 1, command
    except Terminated:
        console.err("terminated")
        return 128 + signal.SIGTERM, command
    except KeyboardInterrupt:
        console.err("interrupted")
        return 130, command
    except Exception as exc:
        if isinstance(exc, BrokenPipeError) and _stdout_gone():  # not another pipe or socket of ours
            return _reader_gone(), command
        driver = _driver_error(exc)
        if driver is not None:  # an operational problem (permissions, failover), not a bug of ours
            console.err(f"error: {driver}: {exc}")
            return 1, command
        # A bug in bootstrap, not bad input: say so, keep the trace out of sight.
        if os.environ.get("BOOTSTRAP_DEBUG"):
            traceback.print_exc()
        console.err(f"internal error: {type(exc).__name__}: {exc} (set BOOTSTRAP_DEBUG=1 for details)")
        return 1, command


if __name__ == "__main__":
    entry()
