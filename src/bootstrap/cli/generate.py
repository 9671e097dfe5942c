"""`bootstrap generate`: render the Taskiq wiring (brokers, tasks, scheduler, worker) from the spec."""

from __future__ import annotations

import argparse

from bootstrap import console
from bootstrap.cli.common import spec_from
from bootstrap.codegen import write as codegen
from bootstrap.codegen.render import wiring_hash
from bootstrap.spec.load import display_path
from bootstrap.spec.model import Spec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when the files are stale")


def run(args: argparse.Namespace) -> int:
    spec = spec_from(args)
    target = display_path(codegen.package_dir(spec))
    if args.check:
        drift = codegen.check(spec)
        if drift.clean:
            console.out(f"{target}: up to date ({_hashes(spec)})")
            return 0
        for label, names in (("stale", drift.stale), ("missing", drift.missing), ("not generated", drift.extra)):
            for name in names:
                console.err(f"{target}/{name}: {label}")
        console.err(f"{target}: out of date with the spec; run `bootstrap generate`")
        return 1
    written = codegen.write(spec)
    if written:
        console.out(f"{target}: wrote {', '.join(written)} ({_hashes(spec)})")
    else:
        console.out(f"{target}: up to date ({_hashes(spec)})")
    return 0


def _hashes(spec: Spec) -> str:
    """What the package's processes carry in their heartbeats, as `status` and `health` compare them:
    the workers' wiring hash (of the files they run) and the scheduler's (all the wiring)."""
    return f"workers' wiring hash {wiring_hash(spec, workers=True)}, scheduler's {wiring_hash(spec)}"
