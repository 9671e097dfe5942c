"""`bootstrap dashboard`: the web dashboard in the foreground until Ctrl-C (queues, failed jobs,
schedules, collections, the spec as a picture). Binds 127.0.0.1 unless told otherwise; any other
address requires the token printed once at start."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from bootstrap import console
from bootstrap.cli.common import spec_from
from bootstrap.cli.options import port_number
from bootstrap.dashboard.auth import masked


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; any other requires a token)")  # fmt: skip
    parser.add_argument("--port", type=port_number, default=8765, help="port (default 8765; 0 picks a free one)")


async def serve(args: argparse.Namespace) -> int:
    from bootstrap.dashboard.app import make_app
    from bootstrap.dashboard.serve import Address, guard_for, open_sources, start

    spec = spec_from(args)
    sources, close = open_sources(lambda: spec)
    try:
        guard = guard_for(args.host)
        runner, port = await start(make_app(sources, guard), args.host, args.port)
        address = Address(args.host, port, guard.token)
        if guard.token:
            # The one place the token is shown whole (console.out masks `token=`): keep this line private.
            print(f"dashboard: {address.url(with_token=True)}", flush=True)
            console.out(f"  listening on {args.host}: the token ({masked(guard.token)}) is required; "
                        "it is not shown again")  # fmt: skip
        else:
            console.out(f"dashboard: {address.url(with_token=False)}")
        console.out("  Ctrl-C to stop")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()
        return 0
    finally:
        close()


def run(args: argparse.Namespace) -> int:
    code = asyncio.run(serve(args))
    sys.stdout.flush()
    return code
