"""Every Redis key the tool and its workers use, in one place. All start with the key prefix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GROUP = "workers"  # the consumer group every worker of a queue reads in


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
        """Jobs waiting for a retry delay (sorted by due time)."""
        return f"{self.base}:delayed"

    @property
    def paused(self) -> str:
        """String: exists while the queue is paused (`bootstrap jobs pause`); its value says who and when."""
        return f"{self.base}:paused"

    @property
    def rate(self) -> str:
        """Sorted set: the jobs workers took within the queue's rate-limit window (member -> time)."""
        return f"{self.base}:rate"

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
