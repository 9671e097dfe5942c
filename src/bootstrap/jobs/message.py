"""A job message as a worker reads it, without a pydantic model per job.

The worker's fast path (see `intake`, `receiver`) reads one message per job. Validating it into
taskiq's `TaskiqMessage` (a pydantic model) cost about a tenth of a no-op job's CPU, so a message of
the usual shape (the fields of the right JSON types, parsed by pydantic's own JSON parser) becomes a
plain `JobMessage` instead. Anything else goes through `TaskiqMessage` validation as before: the
same messages are accepted, with the same values, and the rest rejected with pydantic's reason.
`to_taskiq` gives the taskiq model where taskiq's own code needs one (user middlewares, the stock
receiver, a retry's serialisation).

Writing: `JobFormatter`, the brokers' formatter, is taskiq's JSON one that first refuses arguments
JSON has no number for (NaN, Infinity): pydantic would write them as null, and the handler would get
None for them (`json_arguments`, which `wiring.enqueue` uses too).

Pure: no I/O.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from pydantic_core import from_json
from taskiq import BrokerMessage, TaskiqMessage
from taskiq.formatters.json_formatter import JSONFormatter
from taskiq.labels import parse_label

from bootstrap.errors import BootstrapError


class Message(Protocol):
    """What the worker's code reads of a job message: a `JobMessage` or taskiq's `TaskiqMessage`."""

    task_id: str
    task_name: str
    labels: dict[str, Any]
    args: list[Any]
    kwargs: dict[str, Any]


class JobMessage:
    """A job message read from a stream: taskiq's fields, labels parsed (see `parse`)."""

    __slots__ = ("args", "kwargs", "labels", "labels_types", "task_id", "task_name")

    def __init__(
        self,
        task_id: str,
        task_name: str,
        labels: dict[str, Any],
        args: list[Any],
        kwargs: dict[str, Any],
        labels_types: dict[str, int] | None = None,
    ) -> None:
        self.task_id = task_id
        self.task_name = task_name
        self.labels = labels
        self.args = args
        self.kwargs = kwargs
        self.labels_types = labels_types

    def to_taskiq(self) -> TaskiqMessage:
        """The same job as taskiq's model (for code of taskiq's that needs one)."""
        return TaskiqMessage(
            task_id=self.task_id,
            task_name=self.task_name,
            labels=self.labels,
            labels_types=self.labels_types,
            args=self.args,
            kwargs=self.kwargs,
        )

    def __repr__(self) -> str:
        return f"JobMessage(task_id={self.task_id!r}, task_name={self.task_name!r}, labels={self.labels!r})"


def parse(raw: bytes) -> JobMessage:
    """The job in a message's JSON, its labels parsed as taskiq's `parse_labels` does. Raises
    pydantic's ValidationError (or ValueError, TypeError) for what `TaskiqMessage` refuses."""
    data = _plain(raw)
    if data is None:  # not the usual shape: pydantic decides, and says why when it refuses
        model = TaskiqMessage.model_validate_json(raw)
        data = (model.task_id, model.task_name, model.labels, model.args, model.kwargs, model.labels_types)
    message = JobMessage(*data)
    if message.labels_types:
        for label, label_type in message.labels_types.items():
            if label in message.labels:
                message.labels[label] = parse_label(message.labels[label], label_type)
    return message


def of(message: Message) -> TaskiqMessage:
    """`message` as taskiq's model."""
    if isinstance(message, JobMessage):
        return message.to_taskiq()
    assert isinstance(message, TaskiqMessage)  # the only other kind there is
    return message


_Fields = tuple[str, str, dict[str, Any], list[Any], dict[str, Any], dict[str, int] | None]


def _plain(raw: bytes) -> _Fields | None:
    """The fields of a message whose JSON has exactly the types `TaskiqMessage` asks for (so
    pydantic would take the values as they are); None for anything else."""
    try:
        data = from_json(raw)  # the JSON parser of pydantic's own validation: the same values
    except ValueError:
        return None
    if type(data) is not dict:
        return None
    task_id, task_name = data.get("task_id"), data.get("task_name")
    labels, args, kwargs = data.get("labels"), data.get("args"), data.get("kwargs")
    types = data.get("labels_types")
    if (
        type(task_id) is not str
        or type(task_name) is not str
        or type(labels) is not dict
        or type(args) is not list
        or type(kwargs) is not dict
    ):
        return None
    if types is not None and (type(types) is not dict or any(type(t) is not int for t in types.values())):
        return None
    return task_id, task_name, labels, args, kwargs, types


def json_arguments(args: list[Any], kwargs: dict[str, Any]) -> None:
    """Refuse job arguments with NaN or Infinity (BootstrapError): JSON has no number for them, and
    the handler would get None. Values of other types are pydantic's to write (a datetime as its ISO
    text), so they pass here."""
    try:
        json.dumps([args, kwargs], allow_nan=False, default=lambda value: None)
    except (ValueError, RecursionError) as exc:
        if "Out of range float" in str(exc):  # else (a value that contains itself) pydantic says why
            raise BootstrapError(f"job arguments must be JSON ({exc}: NaN and Infinity are not JSON numbers)") from None


def printable_id(job_id: str) -> None:
    """Refuse a job id with a control character (BootstrapError): a newline or an escape sequence in
    it would forge lines or drive the terminal wherever the id is printed (`jobs show`, logs)."""
    if not job_id.isprintable():
        raise BootstrapError(f"a job id is printable text, without newline, tab or control characters: {job_id!r}")


class JobFormatter(JSONFormatter):
    """taskiq's JSON formatter, refusing arguments with NaN or Infinity (see `json_arguments`) and
    job ids with control characters (see `printable_id`); taskiq's `kiq` raises SendTaskError with
    this as its cause, and nothing is sent."""

    def dumps(self, message: TaskiqMessage) -> BrokerMessage:
        json_arguments(message.args, message.kwargs)
        printable_id(message.task_id)
        return super().dumps(message)
