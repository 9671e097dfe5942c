"""The Redis side of plan/apply: read the live state, compare it with the spec (pure), and the
Backend that apply drives (this plan, then the executors of redis/execute.py)."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import redis

from bootstrap.engine.ops import Backend, Operation, Options
from bootstrap.engine.redis.compare import compare
from bootstrap.engine.redis.execute import Target, execute
from bootstrap.engine.redis.leftovers import read_leftovers
from bootstrap.engine.redis.live import read_live_state
from bootstrap.layout.keys import ScheduleKeys
from bootstrap.spec.model import Spec


def make_plan(spec: Spec, client: redis.Redis, options: Options) -> tuple[Operation, ...]:
    live = read_live_state(client, spec.redis.key_prefix, [q.name for q in spec.queues])
    live = replace(live, leftovers=read_leftovers(client, spec))
    return compare(spec, live, fix_redis=options.fix_redis)


def backend(spec: Spec, client: redis.Redis) -> Backend:
    return Backend(
        plan=lambda options: make_plan(spec, client, options),
        execute=partial(execute, Target(client, ScheduleKeys(spec.redis.key_prefix))),
    )
