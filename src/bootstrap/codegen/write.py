"""Write the generated package, or check that what is on disk is what would be written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bootstrap.codegen.render import render
from bootstrap.files import write_atomic
from bootstrap.spec.model import Spec


@dataclass(frozen=True)
class Drift:
    stale: tuple[str, ...]  # differ from what would be generated
    missing: tuple[str, ...]
    extra: tuple[str, ...]  # generated-looking files no template produces any more

    @property
    def clean(self) -> bool:
        return not (self.stale or self.missing or self.extra)


def package_dir(spec: Spec) -> Path:
    return spec.codegen.output / spec.codegen.package


def check(spec: Spec) -> Drift:
    target = package_dir(spec)
    files = render(spec)
    stale, missing = [], []
    for name, text in files.items():
        path = target / name
        if not path.exists():
            missing.append(name)
        elif _read(path) != text:
            stale.append(name)
    extra = sorted(p.name for p in target.glob("*.py") if p.name not in files) if target.is_dir() else []
    return Drift(tuple(stale), tuple(missing), tuple(extra))


def _read(path: Path) -> str | None:
    """The file's text; None when it cannot be read as UTF-8 (then it is not what would be written)."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def write(spec: Spec) -> list[str]:
    """Write every file that differs; return the names written."""
    target = package_dir(spec)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render(spec).items():
        path = target / name
        if not path.exists() or _read(path) != text:
            write_atomic(path, text)  # a worker starting now never imports half a file
            written.append(name)
    return written


def stale_note(spec: Spec) -> str | None:
    """A line for `apply` and `status` when the generated package exists and no longer follows the
    spec (models.py after a schema change: the application's models refuse what the server now
    accepts); None when it is current or was never generated here."""
    if not package_dir(spec).is_dir():
        return None
    drift = check(spec)
    names = drift.stale + drift.missing
    if not names:
        return None
    return (f"the generated package {package_dir(spec)} does not follow this spec ({', '.join(names)}): run "
            "`bootstrap generate`, then deploy the application and restart the workers")  # fmt: skip
