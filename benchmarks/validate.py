"""Time `bootstrap validate` (load_spec, in process) on the shipped config, on a generated config
with many collections, and on every corpus case.

Usage: python benchmarks/validate.py [--repeat N] [--collections N]

Prints one line per config: name, number of files, total milliseconds, milliseconds per file (the best of
N runs each), then the same for the whole corpus. The generated config (`generate_config`, also used by
benchmarks/cli.py) is the shipped bootstrap.yaml, queues.yaml and schedules.yaml plus N collection files
(default 500) shaped like benchmarks/apply.py's: 9 fields of varied types and 5 indexes each. Its line
also shows milliseconds per collection, the number the spec-loading target (under 1 ms per collection
at 500 collections) is about.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import tempfile
import time
from pathlib import Path

from bootstrap.errors import ConfigError
from bootstrap.spec.load import load_spec

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "config"
CORPUS = ROOT / "tests" / "corpus"


def materialise(case: Path, project: Path) -> Path:
    """The shipped config with the case's overlay applied (see tests/unit/cli/test_corpus.py)."""
    config = project / "config"
    shutil.copytree(SHIPPED, config)
    overlay = case / "overlay"
    for source in sorted(overlay.rglob("*")):
        if source.is_file():
            relative = source.relative_to(overlay)
            if source.name.endswith(".delete"):
                (config / relative.parent / source.name.removesuffix(".delete")).unlink()
            else:
                (config / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, config / relative)
    return config


def best_time(config: Path, env: dict[str, str], repeat: int) -> float:
    """Seconds of the fastest of `repeat` validations."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        with contextlib.suppress(ConfigError):
            load_spec(config, env)
        best = min(best, time.perf_counter() - started)
    return best


STATUSES = ("new", "active", "paused", "done", "failed")


def collection_yaml(i: int) -> str:
    """Collection number `i` of a generated config, shaped like benchmarks/apply.py's (the workload the
    issue's 2.3 ms per collection was measured on): 9 fields of varied types, 5 indexes."""
    name = f"c{i:03d}"
    statuses = ", ".join(STATUSES[: 2 + i % 4])
    ttl = f"{1 + i % 30}d" if i % 3 else f"{1 + i % 12}h"
    timestamps = "timestamps: true\n" if i % 2 else ""
    return (
        "# yaml-language-server: $schema=../../schemas/collection.schema.json\n"
        f"name: {name}\n"
        f"model: C{i:03d}\n"
        f"description: Generated collection number {i} for the apply benchmark.\n"
        f"{timestamps}"
        "validation: {level: strict, action: error}\n"
        "\n"
        "fields:\n"
        "  ownerId: {type: objectId, ref: c000, required: true}\n"
        f"  code: {{type: string, required: true, max_length: {32 + i}}}\n"
        "  externalRef: string\n"
        f"  status: {{type: string, enum: [{statuses}], default: {STATUSES[0]}}}\n"
        f"  score: {{type: number, min: 0, max: {100 + i}}}\n"
        "  isActive: {type: bool, default: true}\n"
        "  expiresAt: {type: date, required: true}\n"
        "  tags: {type: array, items: string}\n"
        "  details:\n"
        "    type: object\n"
        "    fields: {label: string, count: int, ratio: double}\n"
        "\n"
        "indexes:\n"
        "  - keys: {ownerId: 1, status: 1, expiresAt: -1}\n"
        "  - keys: {ownerId: 1, code: 1}\n"
        "    unique: true\n"
        "  - keys: {externalRef: 1}\n"
        "    unique: true\n"
        "    sparse: true\n"
        "  - keys: {details.label: 1, score: -1}\n"
        "    sparse: true\n"
        "  - keys: {expiresAt: 1}\n"
        f"    ttl: {ttl}\n"
    )


def generate_config(target: Path, collections: int) -> Path:
    """The shipped settings, queues and schedules with `collections` generated collection files."""
    (target / "collections").mkdir(parents=True)
    for name in ("bootstrap.yaml", "queues.yaml", "schedules.yaml"):
        shutil.copyfile(SHIPPED / name, target / name)
    for i in range(collections):
        (target / "collections" / f"c{i:03d}.yaml").write_text(collection_yaml(i))
    return target


def count_files(config: Path) -> int:
    return sum(1 for path in config.rglob("*") if path.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per config; the best is kept (default 5)")
    parser.add_argument("--collections", type=int, default=500, help="collections in the generated config")
    args = parser.parse_args()

    load_spec(SHIPPED, {})  # warm up: imports, compiled schemas
    print(f"{'config':48} {'files':>5} {'total_ms':>9} {'per_file_ms':>11}")
    files = count_files(SHIPPED)
    seconds = best_time(SHIPPED, {}, args.repeat)
    print(f"{'shipped':48} {files:5d} {seconds * 1000:9.2f} {seconds * 1000 / files:11.3f}")
    with tempfile.TemporaryDirectory() as scratch:
        generated = generate_config(Path(scratch) / "config", args.collections)
        load_spec(generated, {})  # it must be valid: ConfigError otherwise
        seconds = best_time(generated, {}, args.repeat)
        label = f"generated ({args.collections} collections)"
        print(f"{label:48} {count_files(generated):5d} {seconds * 1000:9.2f} "
              f"{seconds * 1000 / count_files(generated):11.3f}  "
              f"({seconds * 1000 / args.collections:.3f} ms per collection)")

    total_seconds, total_files = 0.0, 0
    cases = sorted(path for path in CORPUS.iterdir() if path.is_dir())
    with tempfile.TemporaryDirectory() as scratch:
        for case in cases:
            config = materialise(case, Path(scratch) / case.name)
            env_file = case / "env.json"
            env = json.loads(env_file.read_text()) if env_file.exists() else {}
            files = count_files(config)
            seconds = best_time(config, env, args.repeat)
            total_seconds += seconds
            total_files += files
            print(f"{case.name:48} {files:5d} {seconds * 1000:9.2f} {seconds * 1000 / files:11.3f}")
    print(f"{f'corpus ({len(cases)} cases)':48} {total_files:5d} {total_seconds * 1000:9.2f} "
          f"{total_seconds * 1000 / total_files:11.3f}")


if __name__ == "__main__":
    main()
