"""The exception tree. Every error a user can cause is a BootstrapError; the CLI prints it without a
traceback and exits 1."""

from __future__ import annotations

from dataclasses import dataclass


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
