"""A hook run when the in-process CLI starts a given MongoDB command (to stop the server of the
`own_mongo` fixture in the middle of a plan). pymongo's listeners are global: the one listener is
registered once, here, and armed per test (disarmed by `own_mongo`)."""

from __future__ import annotations

from collections.abc import Callable

from pymongo import monitoring


class OnCommand(monitoring.CommandListener):
    """Runs `hook` once when a command named `name` starts (`OnCommand.armed = (name, hook)`)."""

    armed: tuple[str, Callable[[], None]] | None = None

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if OnCommand.armed is not None and event.command_name == OnCommand.armed[0]:
            hook = OnCommand.armed[1]
            OnCommand.armed = None
            hook()

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


monitoring.register(OnCommand())
