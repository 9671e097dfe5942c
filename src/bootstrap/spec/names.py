"""Rules for names that become Python identifiers, Redis keys or MongoDB names."""

from __future__ import annotations

import difflib
import keyword
from collections.abc import Iterable


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
