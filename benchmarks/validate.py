"""Time `bootstrap validate` (load_spec, in process) on the shipped config, on a generated config
with many collections, and on every corpus case.

Usage: python benchmarks/validate.py [--repeat N] [--collections N]

Prints one line per config: name, number of files, total milliseconds, milliseconds per file (the best of
N runs each), then the same for the whole corpus. The generated config (benchmarks/generated_config.py):
the shipped settings, queues and schedules plus N collection files (default 500), 9 fields and 5 indexes
each. Its line also shows milliseconds per collection, the number the spec-loading target (under 1 ms
per collection at 500 collections) is about.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import tempfile
import time
from pathlib import Path

from generated_config import generate_config  # a sibling script, not a package

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
