"""Spec -> the files of the generated package (name -> text). Deterministic: the same spec always
gives the same bytes, so `generate --check` can compare."""

from __future__ import annotations

import jinja2

from bootstrap import __version__, resources
from bootstrap.codegen.pyliteral import literal
from bootstrap.jobs.contract import Runtime
from bootstrap.spec.model import Spec
from bootstrap.spec.names import python_identifier

TEMPLATES = ("__init__.py", "spec.py", "brokers.py", "tasks.py", "scheduler.py", "worker.py")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: (resources.templates_dir() / name).read_text(encoding="utf-8")),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # Python source, not HTML: values go through the `py` filter instead
    )
    env.filters["py"] = literal
    env.filters["ident"] = _identifier
    return env


def _identifier(name: str) -> str:
    """A declared name as a Python identifier; validation already guaranteed it is one."""
    ident = python_identifier(name)
    if not ident.isidentifier():
        raise ValueError(f"{name!r} is not usable as a Python identifier")
    return ident


def render(spec: Spec) -> dict[str, str]:
    env = _environment()
    context = {
        "spec": spec,
        "package": spec.codegen.package,
        "contract": Runtime.from_spec(spec).to_literal(),
        "queues": spec.queues,
        "hash": spec.hash(),
        "version": __version__,
    }
    return {name: env.get_template(f"{name}.j2").render(context) for name in TEMPLATES}
