"""Spec -> the files of the generated package (name -> text). Deterministic: the same spec always
gives the same bytes, so `generate --check` can compare."""

from __future__ import annotations

from typing import Any

import jinja2

from bootstrap import __version__, resources
from bootstrap.codegen.pyliteral import literal
from bootstrap.layout.schedules import retry_json
from bootstrap.spec.model import Spec
from bootstrap.spec.names import python_identifier

TEMPLATES = ("__init__.py", "spec.py", "brokers.py", "tasks.py", "scheduler.py", "worker.py")


def runtime_spec(spec: Spec) -> dict[str, Any]:
    """What the generated code needs at run time. Connection URLs stay templates (`${VAR:-...}`):
    they are resolved from the environment when a process starts, never baked in."""
    mongo, redis = spec.mongodb, spec.redis
    return {
        "project": spec.project,
        "spec_hash": spec.hash(),
        "mongodb": {
            "uri": mongo.uri_template,
            "database": mongo.database_declared,
            "app_name": mongo.app_name,
            "pool_max": mongo.pool_max,
            "pool_min": mongo.pool_min,
            "server_selection_timeout": mongo.server_selection_timeout,
            "socket_timeout": mongo.socket_timeout,
            "connect_timeout": mongo.connect_timeout,
            "ipv4_only": mongo.ipv4_only,
            "connect_retry": mongo.connect_retry.to_json(),
        },
        "redis": {
            "url": redis.url_template,
            "key_prefix": redis.key_prefix,
            "connect_timeout": redis.connect_timeout,
            "socket_timeout": redis.socket_timeout,
            "connect_retry": redis.connect_retry.to_json(),
        },
        "queues": {
            queue.name: {
                "visibility_timeout": queue.visibility_timeout,
                "concurrency": queue.concurrency,
                "shutdown_timeout": queue.shutdown_timeout,
                "completed": {"max_age": queue.completed.max_age, "max_count": queue.completed.max_count},
                "failed": {"max_age": queue.failed.max_age, "max_count": queue.failed.max_count},
                "tasks": {
                    task.name: {
                        "handler": task.handler,
                        "timeout": task.timeout,
                        "retry": retry_json(task.retry) if task.retry else None,
                    }
                    for task in queue.tasks
                },
            }
            for queue in spec.queues
        },
    }


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
        "runtime": runtime_spec(spec),
        "queues": spec.queues,
        "hash": spec.hash(),
        "version": __version__,
    }
    return {name: env.get_template(f"{name}.j2").render(context) for name in TEMPLATES}
