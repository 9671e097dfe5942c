"""Every Redis key the tool and its workers use, in one place. All start with the key prefix.

Each queue's keys carry the queue name as a Redis Cluster hash tag (`P:queue:{Q}:...`): they all
hash to one slot, so every Lua script and transaction over one queue is single-slot, and different
queues spread over the cluster's nodes. A schedule's state lives with the queue it fires into (the
scheduler's claim touches the schedule's state and the queue's stream in one script); a small
index (schedule id -> queue) says where each schedule is kept. On a standalone Redis the braces
are only characters.

Before hash tags the keys were `P:queue:Q:...`, `P:schedules` and `P:schedules:last-slot` (the
LEGACY names below): `bootstrap plan` shows moving them and `apply` moves them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GROUP = "workers"  # the consumer group every worker of a queue reads in
PRIORITIES = ("high", "normal", "low")  # a job's priority levels, highest first
NORMAL = "normal"

# The per-queue keys of the layout before hash tags (suffixes after `P:queue:Q:`), moved by apply.
LEGACY_QUEUE_SUFFIXES = ("jobs", "delayed", "completed", "failed", "completed:data", "failed:data")


@dataclass(frozen=True)
class QueueKeys:
    prefix: str
    queue: str

    @property
    def base(self) -> str:
        """What every key of this queue starts with; `{queue}` is the cluster hash tag."""
        return f"{self.prefix}:queue:{{{self.queue}}}"

    @property
    def stream(self) -> str:
        """Jobs waiting or in flight (a stream read by the consumer group)."""
        return f"{self.base}:jobs"

    @property
    def delayed(self) -> str:
        """Jobs waiting for a delay (a retry's, or a delayed job's): sorted by due time."""
        return f"{self.base}:delayed"

    @property
    def paused(self) -> str:
        """String: exists while the queue is paused (`bootstrap jobs pause`); its value says who and when."""
        return f"{self.base}:paused"

    @property
    def marker(self) -> str:
        """String: the data marker of this queue's slot, written by apply as the global one is: on a
        Redis Cluster, a node that lost its data loses the markers of its queues only."""
        return f"{self.base}:marker"

    @property
    def rate(self) -> str:
        """Sorted set: the jobs workers took within the queue's rate-limit window (member -> time)."""
        return f"{self.base}:rate"

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
        if not any("/" in ref for ref in refs):  # all on the normal level (the common case): as they are
            return {self.stream: list(refs)} if refs else {}
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

    @property
    def schedules(self) -> str:
        """Hash: schedule id -> JSON definition, for the schedules firing into this queue (written by
        apply, read by schedulers)."""
        return f"{self.base}:schedules"

    @property
    def last_slot(self) -> str:
        """Hash: schedule id -> the last slot (epoch seconds) that was fired or deliberately skipped,
        for the schedules firing into this queue."""
        return f"{self.base}:schedules:last-slot"

    @property
    def legacy_base(self) -> str:
        """The queue's keys before hash tags (`P:queue:Q`)."""
        return f"{self.prefix}:queue:{self.queue}"

    def legacy_moves(self) -> list[tuple[str, str]]:
        """(old key, new key) for each key of the layout before hash tags."""
        return [(f"{self.legacy_base}:{s}", f"{self.base}:{s}") for s in LEGACY_QUEUE_SUFFIXES]


@dataclass(frozen=True)
class ScheduleKeys:
    prefix: str

    @property
    def index(self) -> str:
        """Hash: schedule id -> the queue whose keys hold its definition and last slot."""
        return f"{self.prefix}:schedules:index"

    def of(self, queue: str) -> QueueKeys:
        """The keys of the queue a schedule fires into (its `schedules` and `last_slot`)."""
        return QueueKeys(self.prefix, queue)

    @property
    def legacy_definitions(self) -> str:
        """Hash of every schedule's definition, before hash tags (moved by apply)."""
        return f"{self.prefix}:schedules"

    @property
    def legacy_last_slot(self) -> str:
        """Hash of every schedule's last slot, before hash tags (moved by apply)."""
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


def schedulers_key(prefix: str) -> str:
    """Hash: scheduler name -> JSON heartbeat {queues, wiring, host, pid, started, seen}."""
    return f"{prefix}:schedulers"


def as_text(value: Any) -> str:
    """A Redis reply (bytes unless the client decodes) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)
