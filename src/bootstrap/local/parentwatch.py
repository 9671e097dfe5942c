"""Run a command and stop it when the process that started us is gone: the fallback for children
dying with their parent where the kernel cannot do it (no prctl PR_SET_PDEATHSIG outside Linux), or
where SIGTERM may not be enough (a server that hangs in its shutdown: the kernel sends one signal).

    python -I parentwatch.py PARENT_PID GRACE -- COMMAND [ARG ...]

Started as the leader of a session of its own, with the command in the same process group, so a
signal the supervisor sends to the group reaches the command directly (this watcher only waits for
it). When PARENT_PID is no longer our parent, the whole group gets SIGTERM, then SIGKILL after
GRACE seconds if it is still there. Our exit mirrors the command's: the same code, or death by the same signal.

Run as a script by path (standard library only), so it needs no import path set up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

EVERY = 0.5  # seconds between looks at the parent


def _ignore(signum: int, _frame: object) -> None:
    """Signals for the group reach the command; a handler (not SIG_IGN) is reset by exec, so the
    command still gets the default dispositions."""


def main(argv: list[str]) -> int:
    if len(argv) < 5 or argv[3] != "--":
        print("usage: parentwatch.py PARENT_PID GRACE -- COMMAND [ARG ...]", file=sys.stderr)
        return 2
    parent, grace = int(argv[1]), float(argv[2])
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _ignore)
    command = subprocess.Popen(argv[4:])
    gone_at: float | None = None
    while True:
        try:
            code = command.wait(EVERY)
            break
        except subprocess.TimeoutExpired:
            pass
        if gone_at is None and os.getppid() != parent:
            gone_at = time.monotonic()
            os.killpg(0, signal.SIGTERM)
        elif gone_at is not None and time.monotonic() - gone_at > grace:
            os.killpg(0, signal.SIGKILL)
    if code < 0:  # killed by a signal: die of it too, so our parent sees the same
        if -code not in (signal.SIGKILL, signal.SIGSTOP):  # those two cannot be handled, so need no reset
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
