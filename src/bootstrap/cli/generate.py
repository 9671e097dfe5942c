"""`bootstrap generate`: render the Taskiq wiring (brokers, tasks, scheduler, worker) from the spec."""

from __future__ import annotations

import argparse

from bootstrap import console
from bootstrap.cli.common import spec_from
from bootstrap.codegen import write as codegen
from bootstrap.codegen.render import wiring_hash
from bootstrap.spec.load import display_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when the files are stale")


def run(args: argparse.Namespace) -> int:
    spec = spec_from(args)
    target = display_path(codegen.package_dir(spec))
    if args.check:
        drift = codegen.check(spec)
        if drift.clean:
            console.out(f"{target}: up to date (wiring hash {wiring_hash(spec)})")
            return 0
        for label, names in (("stale", drift.stale), ("missing", drift.missing), ("not generated", drift.extra)):
            for name in names:
                console.err(f"{target}/{name}: {label}")
        console.err(f"{target}: out of date with the spec; run `bootstrap generate`")
        return 1
    written = codegen.write(spec)
    if written:
        console.out(f"{target}: wrote {', '.join(written)} (wiring hash {wiring_hash(spec)})")
    else:
        console.out(f"{target}: up to date (wiring hash {wiring_hash(spec)})")
    return 0
