"""The whole exception tree, in one place. Every error a user can cause is a BootstrapError; the CLI
prints it without a traceback and exits 1.

    BootstrapError
    ├── ConfigError          the configuration is invalid (carries every Finding)
    ├── InterpolationError   a `${...}` expression is malformed or names an unset variable
    ├── Unavailable          a server cannot be reached within the connect-retry policy
    │   ├── MongoUnavailable
    │   └── RedisUnavailable
    ├── PlanBlocked          apply refused: the plan has blocked operations
    ├── ApplyFailed          an operation failed; says what completed before it
    ├── OperationFailed      one operation failed (an executor's report; apply turns it into ApplyFailed)
    ├── DuplicatesFound      a unique index cannot be built over the data as it is
    ├── LockTimeout          another apply held the lock for too long
    ├── ServerError          a local server (embedded default, tests) failed to start
    └── AlreadyRunning       `bootstrap up` runs already for this project
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bootstrap.engine.ops import Operation


@dataclass(frozen=True, order=True)
class Finding:
    """One problem in the configuration, located as precisely as the YAML allows."""

    file: str
    line: int  # 1-based; 0 when the file itself is the subject (missing, unreadable)
    column: int  # 1-based
    path: str  # dotted path to the offending key or value, "" for the whole document
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"

    def as_dict(self) -> dict[str, str | int]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
        }


class BootstrapError(Exception):
    """Base of every error the tool reports to users."""


class ConfigError(BootstrapError):
    """The configuration is invalid; carries every finding, not just the first."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = sorted(findings)
        super().__init__(f"{len(self.findings)} problem(s) in the configuration")


class InterpolationError(BootstrapError, ValueError):
    """A `${...}` expression is malformed or names an unset variable without default."""


class Unavailable(BootstrapError):
    """A server could not be reached (or refused us) within the connect-retry policy."""


class MongoUnavailable(Unavailable):
    pass


class RedisUnavailable(Unavailable):
    pass


class PlanBlocked(BootstrapError):
    """The plan holds blocked operations: apply refuses to start, nothing is changed."""


class ApplyFailed(BootstrapError):
    """An operation failed during apply. `done` lists the operations completed before it."""

    def __init__(self, message: str, done: Sequence[Operation], failed: Operation) -> None:
        self.done, self.failed = list(done), failed
        completed = "; ".join(line for op in done for line in op.describe()[:1]) or "none"
        super().__init__(f"{message}\ncompleted before the failure: {completed}")


class OperationFailed(BootstrapError):
    """One operation failed. Raised by a backend's executor, which knows only its own operation;
    apply, which knows everything done before it on both sides, turns it into ApplyFailed."""

    def __init__(self, message: str, operation: Operation) -> None:
        self.operation = operation
        super().__init__(message)


class DuplicatesFound(BootstrapError):
    """A unique index cannot be (re)built: the data holds duplicate keys."""


class LockTimeout(BootstrapError):
    """Another apply held the lease lock longer than --lock-timeout."""


class ServerError(BootstrapError):
    """A local server (embedded default or test fixture) could not be started."""


class AlreadyRunning(BootstrapError):
    """`bootstrap up` is already running for this project."""
