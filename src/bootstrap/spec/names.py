"""Rules for names that become Python identifiers, Redis keys or MongoDB names."""

from __future__ import annotations

import difflib
import keyword
from collections.abc import Iterable, Mapping

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


def collection_name_problem(name: str) -> str | None:
    """MongoDB reserves `system.*`; our own bookkeeping uses the `bootstrap_` prefix."""
    if name.startswith("system"):
        return f"'{name}' starts with 'system', which MongoDB reserves"
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
