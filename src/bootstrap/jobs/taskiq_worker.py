"""A queue's worker as one process: taskiq's worker loop (`start_listen`, the very code `taskiq
worker` runs in the process it forks) run in this process, without taskiq's process manager.

`taskiq worker --workers 1` is two processes: a manager that only forks, watches and restarts the
worker, and the worker; the manager alone costs about 46 MiB. Restarting a worker that died is
done by bootstrap's own supervisor (`bootstrap.local.processes`, used by the generated launcher and
`bootstrap up`), so the manager is not needed. Arguments are `taskiq worker`'s.

Run: python -m bootstrap.jobs.taskiq_worker BROKER MODULE... [taskiq worker options]
"""

from __future__ import annotations

import logging
import sys


def main(argv: list[str]) -> int:
    from taskiq.cli.worker.args import WorkerArgs
    from taskiq.cli.worker.run import start_listen

    args = WorkerArgs.from_cli(argv)
    logging.getLogger("taskiq").setLevel(args.log_level)  # as taskiq's manager sets it
    start_listen(args)  # returns after a requested stop (SIGTERM/SIGINT), once the worker shut down
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
