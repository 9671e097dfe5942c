"""`bootstrap docs`: Markdown describing the spec's collections, with a Mermaid entity-relationship
diagram of their references (renders on any code host), written to docs/collections.md."""

from __future__ import annotations

import argparse
from pathlib import Path

from bootstrap import console
from bootstrap.dashboard.erd import markdown
from bootstrap.files import write_atomic
from bootstrap.spec.load import display_path, load_spec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", type=Path, default=None, metavar="FILE",
                        help="where to write (default: docs/collections.md beside config/)")  # fmt: skip
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the file is not up to date")


def run(args: argparse.Namespace) -> int:
    spec = load_spec(args.config, offline=True)  # no connection: docs describe the spec, not what is live
    target: Path = args.output or spec.root / "docs" / "collections.md"
    text = markdown(spec)
    current = target.read_text(encoding="utf-8") if target.is_file() else None
    if args.check:
        if current != text:
            console.err(f"{display_path(target)} is not up to date: run `bootstrap docs`")
            return 1
        console.out(f"{display_path(target)} is up to date")
        return 0
    if current == text:
        console.out(f"{display_path(target)} is up to date")
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, text)
    console.out(f"wrote {display_path(target)}: {len(spec.collections)} collection(s)")
    return 0
