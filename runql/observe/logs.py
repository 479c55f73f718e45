"""Structured logs: one JSON object per line, with the request id on every line.

The HTTP view opens a :class:`RequestLog` per request (a context variable, so resolvers'
tasks see it too) and writes one ``request`` line when the answer is ready: request id,
operation name, status, duration and the number of SQL statements the request issued.
A masked error's traceback is logged with the same request id, so the id a client
reports finds the traceback.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from runql.db.engine import record_statements
from runql.observe import metrics
from runql.settings import Settings

LOGGER_NAME = "runql"
request_logger = logging.getLogger("runql.request")

#: Attributes of a ``LogRecord`` that are plumbing, not data worth a JSON key.
_RESERVED = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime"}
)


@dataclass
class RequestLog:
    """What the request line reports; filled in while the request runs."""

    request_id: str
    method: str = ""
    path: str = ""
    operation_name: str | None = None
    #: ``query``, ``mutation`` or ``subscription``; None when no operation ran.
    operation_type: str | None = None
    status: int = 0
    error_codes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)


_current: contextvars.ContextVar[RequestLog | None] = contextvars.ContextVar(
    "runql_request_log", default=None
)


def current_request() -> RequestLog | None:
    return _current.get()


def current_request_id() -> str | None:
    log = _current.get()
    return None if log is None else log.request_id


@contextlib.contextmanager
def request_scope(log: RequestLog) -> Iterator[RequestLog]:
    """Bind ``log`` to this request, count its SQL, and write its line at the end."""
    token = _current.set(log)
    try:
        with record_statements() as recorder:
            yield log
    finally:
        _current.reset(token)
        seconds = time.perf_counter() - log.started
        request_logger.info(
            "request",
            extra={
                "request_id": log.request_id,
                "method": log.method,
                "path": log.path,
                "operation_name": log.operation_name,
                "status": log.status,
                "duration_ms": round(seconds * 1000, 2),
                "sql_statements": recorder.count,
                "error_codes": log.error_codes,
            },
        )
        observed = metrics.current()
        if observed is not None:
            observed.observe_request(log, seconds, recorder.count)


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", "request_id", ...extra, "traceback"}``."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id:
            payload["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in payload:
                payload[key] = value
        if record.exc_info:
            payload["traceback"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None) or current_request_id()
        text = super().format(record)
        return f"{text} request_id={request_id}" if request_id else text


def configure_logging(settings: Settings) -> None:
    """Send the ``runql`` loggers to stderr as JSON (or text) lines, and what any library
    logs at WARNING or above (strawberry, asyncio, uvicorn when it is given no logging
    config of its own) in the same form: a server's stderr holds one format only.
    Idempotent: apps built again (tests) replace the handlers instead of stacking more."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(settings.log_level.upper())
    root = logging.getLogger()
    for owner in (logger, root):
        for handler in list(owner.handlers):
            if getattr(handler, "runql", False):
                owner.removeHandler(handler)
    logger.addHandler(_handler(settings))
    others = _handler(settings)
    others.setLevel(logging.WARNING)
    others.addFilter(_not_runql)  # runql's records have their own handler above
    root.addHandler(others)


def _handler(settings: Settings) -> logging.Handler:
    handler = logging.StreamHandler()
    handler.runql = True  # type: ignore[attr-defined]
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    return handler


def _not_runql(record: logging.LogRecord) -> bool:
    return not (record.name == LOGGER_NAME or record.name.startswith(LOGGER_NAME + "."))


__all__ = [
    "JsonFormatter",
    "RequestLog",
    "configure_logging",
    "current_request",
    "current_request_id",
    "request_scope",
]
