"""`bootstrap validate`: check every config file and report all problems at once, including job
handlers that workers could not import (the only command that imports them)."""

from __future__ import annotations

import argparse

from bootstrap import console
from bootstrap.errors import ConfigError, Finding
from bootstrap.spec.load import load_spec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print findings as a JSON list")


def run(args: argparse.Namespace) -> int:
    warnings: list[Finding] = []
    try:
        spec = load_spec(args.config, warnings=warnings, import_handlers=True, offline=True)
    except ConfigError as exc:
        if not args.json:
            raise
        console.out_json([finding.as_dict() for finding in exc.findings])
        return 1
    if args.json:
        console.out_json([finding.as_dict() for finding in warnings])  # each with "severity": "warning"
    else:
        for finding in warnings:  # `file:line:column: warning: path: message`; still valid
            console.err(str(finding))
        console.out(
            f"{args.config}: valid ({len(spec.collections)} collections, "
            f"{sum(len(c.indexes) for c in spec.collections)} indexes, {len(spec.queues)} queues, "
            f"{len(spec.schedules)} schedules; spec hash {spec.hash()})"
        )
    return 0
