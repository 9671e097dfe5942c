"""Hashes of generated files, without Jinja2: a running worker can hash its own package's files and
compare the result with `codegen.render.wiring_hash(spec)`."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping


def files_hash(files: Mapping[str, str]) -> str:
    """A short hash of file names and texts, independent of the order they are given in."""
    digest = hashlib.sha256()
    for name in sorted(files):
        data = files[name].encode()
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()[:16]
