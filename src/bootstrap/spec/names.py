"""Rules for names that become Python identifiers, Redis keys or MongoDB names."""

from __future__ import annotations

import difflib
import importlib.util
import keyword
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

# Per generated module that binds declared names (one attribute per queue, one per task), every other
# name its own code binds or reads once the first declared name is bound: a declared name equal to one
# of them would shadow it. The templates keep these private (`_x`) or capitalised, which a declared
# name (lowercase kebab) can never become; a unit test renders the templates and checks this list.
GENERATED_NAMES: Mapping[str, frozenset[str]] = {
    "brokers.py": frozenset({"StreamBroker", "_make_broker", "RUNTIME", "BROKERS"}),
    "tasks.py": frozenset({"_register_task", "BROKERS", "RUNTIME"}),
}


def python_identifier(name: str) -> str:
    """The identifier generated code uses for a kebab-case name: `delta-sync` -> `delta_sync`."""
    return name.replace("-", "_")


def identifier_problem(name: str) -> str | None:
    """Why `name` cannot become a Python identifier in generated code, or None."""
    ident = python_identifier(name)
    if not ident.isidentifier():
        return f"'{name}' cannot become a Python identifier"
    if keyword.iskeyword(ident) or keyword.issoftkeyword(ident):
        return f"'{name}' becomes the Python keyword '{ident}' in generated code (choose another name)"
    return None


def generated_name_clashes(module: str, names: Iterable[str]) -> list[tuple[str, str]]:
    """(name, problem) for each of `names` that cannot be a global of the generated `module`: it
    becomes a name the module uses itself, or the same identifier as an earlier name."""
    reserved = GENERATED_NAMES.get(module, frozenset())
    first: dict[str, str] = {}
    clashes = []
    for name in names:
        ident = python_identifier(name)
        if ident in reserved:
            clashes.append((name, f"'{name}' becomes '{ident}' in the generated {module}, which uses that name itself"))
        elif ident in first and first[ident] != name:
            clashes.append((name, f"'{name}' and '{first[ident]}' both become '{ident}' in the generated {module}"))
        first.setdefault(ident, name)
    return clashes


def package_name_problem(package: str, target: Path) -> str | None:
    """Why the generated package cannot be called `package`, or None: a keyword, or the name of a
    module it would shadow or be hidden by (the standard library, or any module Python finds on its
    path). `target` is the package folder `generate` writes (finding that one is no clash)."""
    unusable = f"'{package}' is not a usable package name"
    if keyword.iskeyword(package) or keyword.issoftkeyword(package):
        return f"{unusable}: it is a Python keyword"
    if not package.isidentifier():
        return unusable
    if package in sys.stdlib_module_names or package in sys.builtin_module_names:
        return (
            f"'{package}' is the name of a standard library module: the generated package would shadow it "
            "(choose another name)"
        )
    location = _module_location(package, target)
    if location is not None:
        return (
            f"'{package}' is the name of an importable module ({location}): the generated package would "
            "shadow it or be hidden by it (choose another name)"
        )
    return None


def _module_location(name: str, target: Path) -> str | None:
    """Where Python finds a top-level module `name`, or None when it finds none, or only the package
    generated into `target` before, or only folders without Python code (a namespace package such as
    config/ when the project folder is on the path). One lookup through the import system's cached
    finders: no import, no scan of installed distributions."""
    try:
        found = importlib.util.find_spec(name)
    except (ImportError, ValueError):  # a finder that fails, or a module without a spec: nothing to say
        return None
    if found is None:
        return None
    if found.origin is None:  # a namespace package: folders without __init__.py
        with_code = [p for p in found.submodule_search_locations or () if _holds_python(Path(p))]
        return with_code[0] if with_code else None
    if _inside(Path(found.origin), target):  # what `generate` wrote there, found on the path
        return None
    return found.origin


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (RuntimeError, OSError):
        return False


def _holds_python(folder: Path) -> bool:
    """A module or a package directly in `folder` (one listing, no recursion)."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return False
    return any(
        entry.suffix in (".py", ".pyc", ".so", ".pyd") or (entry / "__init__.py").is_file() for entry in entries
    )


def collection_name_problem(name: str) -> str | None:
    """Our own bookkeeping uses the `bootstrap_` prefix. (MongoDB reserves `system.`, which a name here
    cannot start with: it holds no dot; `systems` or `system_audit` are ordinary names.)"""
    if name.startswith("bootstrap_"):
        return f"'{name}' starts with 'bootstrap_', which this tool reserves for its own records"
    return None


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """ "; did you mean 'x'?" for the closest of `choices` (or a case-only difference), else ""."""
    if not isinstance(word, str):
        return ""
    options = list(choices)
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in options}
        close = [lowered[word.lower()]] if word.lower() in lowered else []
    return f"; did you mean '{close[0]}'?" if close else ""
