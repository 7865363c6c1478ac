"""The text of the error behind a failure, for the operator: whole (every line: each broken rule of the data
contract with its rows), without a traceback and unwrapped from the orchestrator's own wrappers ("Error
occurred while executing op ...").

Pure, no Dagster: it reads any error record with a class name, a message and a cause (Dagster's
``SerializableErrorInfo`` is one; :func:`error_record` makes one from a Python exception chain), so the CLI's
summary and the failure alerts say the same thing.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Protocol

#: Errors of the project (``forex_assets.<module>.<Class>``) carry a message written for the operator.
PROJECT_PACKAGE = "forex_assets."
#: Class names of the orchestrator's wrappers around the error user code raised.
WRAPPER_PREFIXES = ("Dagster",)
#: The class name of ``dagster.Failure``: raised on purpose, its description is the whole message.
FAILURE = "Failure"


class ErrorInfo(Protocol):
    """An error as recorded: its class name, its message (``module.Class: text`` as Python prints it) and the
    error it was raised from."""

    @property
    def cls_name(self) -> str | None: ...

    @property
    def message(self) -> str: ...

    @property
    def cause(self) -> ErrorInfo | None: ...


@dataclass(frozen=True)
class ErrorRecord:
    """An :class:`ErrorInfo` made from a Python exception (see :func:`error_record`)."""

    cls_name: str
    message: str
    cause: ErrorRecord | None = None


def error_record(error: BaseException) -> ErrorRecord:
    """``error`` and the chain it was raised from (``raise ... from``, or raised while handling another), with
    messages as Python prints them (``forex_assets.core.x.SomeError: text``)."""
    seen: set[int] = set()

    def record(current: BaseException | None) -> ErrorRecord | None:
        if current is None or id(current) in seen:
            return None
        seen.add(id(current))
        below = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
        message = "".join(traceback.format_exception_only(type(current), current))
        return ErrorRecord(type(current).__name__, message, record(below))

    return record(error)  # type: ignore[return-value]  # never None for an exception


def user_error(error: ErrorInfo) -> ErrorInfo:
    """The error user code raised, under the orchestrator's wrappers ("Error occurred while executing op ...")."""
    while error.cause is not None and (error.cls_name or "").startswith(WRAPPER_PREFIXES):
        error = error.cause
    return error


def describe_error(error: ErrorInfo, run_id: str | None = None) -> str:
    """The whole message of the error behind a step failure, without a traceback. Errors of the project and
    ``dagster.Failure`` show their message alone; any other keeps its class name, with where to find its
    traceback (a bug is worth one)."""
    error = user_error(error)
    cls_name = error.cls_name or ""
    head, colon, rest = error.message.partition(": ")
    qualified = head if colon and head.rsplit(".", 1)[-1] == cls_name else ""
    text = (rest if qualified else error.message).strip()
    if cls_name == FAILURE or qualified.startswith(PROJECT_PACKAGE):
        return text
    where = f" (traceback in the event log of run {run_id})" if run_id else ""
    return f"{cls_name}: {text}{where}"
