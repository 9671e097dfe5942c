"""`bootstrap schemas`: write the JSON Schemas the config files are checked against into a project
of its own, where the config's editor modelines (`# yaml-language-server: $schema=../schemas/...`)
find them: by default `schemas/` beside the config folder. They ship inside the package."""

from __future__ import annotations

import argparse
from pathlib import Path

from bootstrap import console
from bootstrap.files import write_atomic
from bootstrap.resources import schemas_dir
from bootstrap.spec.load import display_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", type=Path, default=None, metavar="DIR",
                        help="where to write them (default: schemas/ beside the config folder)")  # fmt: skip
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a schema is missing or stale")


def run(args: argparse.Namespace) -> int:
    target: Path = args.output or Path(args.config).resolve().parent / "schemas"
    shipped = {entry.name: entry.read_text(encoding="utf-8") for entry in schemas_dir().iterdir()
               if entry.name.endswith(".schema.json")}  # fmt: skip
    stale = [name for name, text in sorted(shipped.items()) if _read(target / name) != text]
    if args.check:
        for name in stale:
            console.err(f"{display_path(target / name)} is missing or not the shipped schema: run `bootstrap schemas`")
        if not stale:
            console.out(f"{display_path(target)}: the {len(shipped)} schemas are up to date")
        return 1 if stale else 0
    target.mkdir(parents=True, exist_ok=True)
    for name in stale:
        write_atomic(target / name, shipped[name])
    console.out(f"{display_path(target)}: wrote {len(stale)} of {len(shipped)} schemas" if stale
                else f"{display_path(target)}: the {len(shipped)} schemas are up to date")  # fmt: skip
    return 0


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None
