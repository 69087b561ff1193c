"""Log lines an operator can search: the ids of what each line is about, and a JSON format.

Code that handles one request, device connection or Celery task binds the ids it knows with
``log_context(device_id=..., patient_id=...)``; every record logged inside carries them (the
``ContextFilter`` on the handler copies them onto the record). A single call can pass them
too: ``logger.info("...", extra=log_ids(alert=alert))``. ``LOG_FORMAT=json`` (settings.LOGGING)
writes each record as one JSON object per line with ``JsonFormatter``; the default text format
appends the ids to the line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _LibraryJsonFormatter

# The ids a log record may carry, in the order the text format shows them.
ID_FIELDS = ("request_id", "task_id", "device_id", "patient_id", "alert_id")

# Never mutated: binding sets a new mapping, so a task that inherited one cannot change its
# parent's.
_context: ContextVar[Mapping[str, Any]] = ContextVar("log_context", default=MappingProxyType({}))


def log_context_bind(**ids: Any) -> Token[Mapping[str, Any]]:
    """Add ``ids`` (None values left out) to the current context; undo with ``log_context_reset``."""
    return _context.set({**_context.get(), **{k: v for k, v in ids.items() if v is not None}})


def log_context_reset(token: Token[Mapping[str, Any]]) -> None:
    _context.reset(token)


@contextmanager
def log_context(**ids: Any) -> Iterator[None]:
    """Every record logged inside carries ``ids`` (an asyncio task inherits them too)."""
    token = log_context_bind(**ids)
    try:
        yield
    finally:
        log_context_reset(token)


def log_context_ids() -> dict[str, Any]:
    return dict(_context.get())


def log_ids(
    *, device: Any = None, patient: Any = None, alert: Any = None, **ids: Any
) -> dict[str, Any]:
    """The ``extra=`` of one log call: the ids of the given objects (or ids), None left out."""
    found: dict[str, Any] = {}
    if alert is not None:
        found["alert_id"] = getattr(alert, "pk", alert)
        patient = patient if patient is not None else getattr(alert, "patient_id", None)
        device = device if device is not None else getattr(alert, "device_id", None)
    if device is not None:
        found["device_id"] = getattr(device, "pk", device)
        patient = patient if patient is not None else getattr(device, "patient_id", None)
    if patient is not None:
        found["patient_id"] = getattr(patient, "pk", patient)
    found.update(ids)
    return {key: value for key, value in found.items() if value is not None}


class ContextFilter(logging.Filter):
    """Copies the context's ids onto each record (an id given with ``extra=`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(_LibraryJsonFormatter):
    """One JSON object per record: ``timestamp`` (ISO 8601, UTC), ``level``, ``logger``,
    ``message``, the ids it carries, any other ``extra=`` fields, and ``exc_info`` (the
    traceback) when there is one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", "%(levelname)s %(name)s %(message)s")
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", True)
        super().__init__(*args, **kwargs)

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        log_data["timestamp"] = datetime.fromtimestamp(record.created, tz=UTC).isoformat(
            timespec="milliseconds"
        )


class TextFormatter(logging.Formatter):
    """The readable default: the usual line, then the ids the record carries in brackets."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = " ".join(f"{key}={getattr(record, key)}" for key in ID_FIELDS if hasattr(record, key))
        if not ids:
            return line
        first, newline, rest = line.partition("\n")  # keep a traceback below the ids
        return f"{first} [{ids}]{newline}{rest}"
