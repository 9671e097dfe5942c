"""A generated config with many collections, for the benchmarks: the shipped bootstrap.yaml, queues.yaml and
schedules.yaml plus N collection files in the format of config/collections/*.yaml, 9 fields of varied
types and 5 indexes each (the workload the issue's 2.3 ms per collection was measured on)."""

from __future__ import annotations

import shutil
from pathlib import Path

SHIPPED = Path(__file__).resolve().parent.parent / "config"

STATUSES = ("new", "active", "paused", "done", "failed")


def collection_yaml(i: int) -> str:
    """Collection number `i`: 9 fields of varied types, 5 indexes, a reference to c000."""
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
