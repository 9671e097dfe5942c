"""The order a worker reads its queue's priority levels in: higher first, lower never starved.

Each level has a stream of its own (`QueueKeys.stream_at`). While several levels are busy (see
`StreamBroker._read`; with at most one busy a plain read over all levels is enough), every read of a
worker takes jobs from the levels in an order that starts at the level whose turn it is, in a fixed
weighted rotation (high 4 reads in 7, normal 2, low 1), then goes on from the highest level down,
until the worker's room is filled. With all levels busy, high gets about 4/7 of the reads,
normal 2/7 and low 1/7; a level with nothing waiting gives its turn to the others.

Pure: no I/O.
"""

from __future__ import annotations

from bootstrap.layout.keys import PRIORITIES

# Whose turn each read in a cycle of seven is: high 4, normal 2, low 1, spread out.
ROTATION = ("high", "normal", "high", "low", "high", "normal", "high")


class ReadOrder:
    """The levels in the order the next read takes them."""

    def __init__(self) -> None:
        self._turn = 0

    def next(self) -> tuple[str, ...]:
        first = ROTATION[self._turn % len(ROTATION)]
        self._turn += 1
        return (first, *(level for level in PRIORITIES if level != first))
