"""rev7 review: `Stack.restart_scheduler` (a schedule-only change) stops and starts the scheduler
child in place. A scheduler `up` had given up on (it kept crashing) runs again afterwards, but keeps
`gave_up`, so up.json, and `bootstrap status` from it, go on saying it "kept crashing: stopped"
while it runs (`restart_children`, which builds a new Supervisor, starts clean)."""

from __future__ import annotations

import sys
from pathlib import Path

from bootstrap.local.processes import Child, RestartPolicy
from bootstrap.local.up import Stack
from bootstrap.local.upstate import GAVE_UP, UpState, state_path
from bootstrap.spec.load import load_spec
from tests.conftest import copy_config


def test_a_given_up_scheduler_restarted_for_a_schedule_change_is_not_shown_given_up(tmp_path: Path) -> None:
    config = copy_config(tmp_path / "project" / "config", "t-rev7")
    spec = load_spec(config, env={})
    stack = Stack(config, embedded=False)
    stack.state.mkdir(parents=True)
    scheduler = Child("scheduler", [sys.executable, "-c", "import time; time.sleep(30)"],
                      log_path=stack.logs / "scheduler.log", restart=RestartPolicy())  # fmt: skip
    stack.supervisor.add(scheduler)
    # What Supervisor.watch leaves after the 5th crash in a minute: stopped, given up on.
    scheduler.gave_up = scheduler.reported = True
    try:
        stack.restart_scheduler(spec, "the generated wiring changed")
        assert scheduler.running
        state = UpState.from_json(state_path(stack.root).read_text())
        shown = {child.name: child.state for child in state.children}
        assert shown["scheduler"] != GAVE_UP, shown
    finally:
        scheduler.kill()
