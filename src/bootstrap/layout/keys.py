"""Every Redis key the tool and its workers use, in one place. All start with the key prefix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GROUP = "workers"  # the consumer group every worker of a queue reads in
PRIORITIES = ("high", "normal", "low")  # a job's priority levels, highest first
NORMAL = "normal"


@dataclass(frozen=True)
class QueueKeys:
    prefix: str
    queue: str

    @property
    def base(self) -> str:
        return f"{self.prefix}:queue:{self.queue}"

    @property
    def stream(self) -> str:
        """Jobs waiting or in flight (a stream read by the consumer group)."""
        return f"{self.base}:jobs"

    @property
    def delayed(self) -> str:
        """Jobs waiting for a delay (a retry's, or a delayed job's): sorted by due time."""
        return f"{self.base}:delayed"

    def stream_at(self, priority: str) -> str:
        """The stream of one priority level: `stream` for normal (the one every queue has), a
        stream of its own for each other level."""
        return self.stream if priority == NORMAL else f"{self.base}:jobs:{priority}"

    @property
    def streams(self) -> tuple[str, ...]:
        """Every level's stream, highest priority first."""
        return tuple(self.stream_at(level) for level in PRIORITIES)

    @property
    def ids(self) -> str:
        """Hash: id of a job enqueued to be deduplicated -> when it was enqueued, while it is waiting,
        delayed or running (removed when it finishes)."""
        return f"{self.base}:ids"

    def locate(self, ref: str) -> tuple[str, str]:
        """The stream and entry id an entry reference (`entry_ref`) names."""
        level, slash, entry_id = ref.rpartition("/")
        return (self.stream_at(level), entry_id) if slash else (self.stream, ref)

    def by_stream(self, refs: list[str]) -> dict[str, list[str]]:
        """Entry references grouped by the stream they are in: stream -> entry ids."""
        grouped: dict[str, list[str]] = {}
        for ref in refs:
            stream, entry_id = self.locate(ref)
            grouped.setdefault(stream, []).append(entry_id)
        return grouped

    def records(self, outcome: str) -> str:
        """Finished-job records by outcome ("completed" or "failed"): sorted set of ids by time."""
        return f"{self.base}:{outcome}"

    def record_data(self, outcome: str) -> str:
        """The records themselves: hash of id -> JSON."""
        return f"{self.base}:{outcome}:data"


@dataclass(frozen=True)
class ScheduleKeys:
    prefix: str

    @property
    def definitions(self) -> str:
        """Hash: schedule id -> JSON definition (written by apply, read by schedulers)."""
        return f"{self.prefix}:schedules"

    @property
    def last_slot(self) -> str:
        """Hash: schedule id -> the last slot (epoch seconds) that was fired or deliberately skipped."""
        return f"{self.prefix}:schedules:last-slot"


def entry_ref(priority: str, entry_id: str) -> str:
    """How a worker names an entry it holds: the entry id for the normal stream (as always), else
    `level/id` (entry ids are unique per stream only)."""
    return entry_id if priority == NORMAL else f"{priority}/{entry_id}"


def marker_key(prefix: str) -> str:
    """String: JSON note written by the first apply on this Redis ({"id", "at", "by"}). Redis never
    loses it alone: where it is missing, Redis lost its data (or apply never ran)."""
    return f"{prefix}:marker"


def workers_key(prefix: str) -> str:
    """Hash: worker (consumer) name -> JSON heartbeat {queue, host, pid, started, seen}."""
    return f"{prefix}:workers"


def as_text(value: Any) -> str:
    """A Redis reply (bytes unless the client decodes) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)
