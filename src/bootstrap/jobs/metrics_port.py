"""Which port a worker or the scheduler serves its Prometheus metrics on (see `jobs.metrics`).
Pure and cheap: a process whose metrics are off imports nothing more."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

log = logging.getLogger("bootstrap.jobs.metrics")

PORT_ENV = "BOOTSTRAP_METRICS_PORT"


def base_port(declared: int, env: Mapping[str, str] | None = None) -> int:
    """The scheduler's port: BOOTSTRAP_METRICS_PORT when set (an integer), else the declared one."""
    env = os.environ if env is None else env
    raw = env.get(PORT_ENV, "").strip()
    if not raw:
        return declared
    try:
        port = int(raw)
    except ValueError:
        log.warning("%s=%r is not a port number; using the declared metrics port %d", PORT_ENV, raw, declared)
        return declared
    if not 0 <= port <= 65535:
        log.warning("%s=%d is not a port number; using the declared metrics port %d", PORT_ENV, port, declared)
        return declared
    return port


def worker_port(base: int, index: int) -> int:
    """The port of the worker of the queue declared `index`-th; 0 (off) when the base is 0."""
    return 0 if base == 0 else base + 1 + index
