"""Structured logs: one JSON object per line, request id on every record."""

from __future__ import annotations

import logging
import sys
import time
from contextvars import ContextVar

import orjson
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web import BaseRequest, StreamResponse

from .keys import REQUEST_ID, TOKEN_NAME

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# Fields passed with `extra=` that belong in the JSON line.
_EXTRA = ("method", "route", "path", "status", "duration_ms", "token", "remote")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid:
            entry["request_id"] = rid
        for key in _EXTRA:
            if (value := getattr(record, key, None)) is not None:
                entry[key] = value
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class QuietProtocolErrors(logging.Filter):
    """Malformed HTTP is the client's fault: one warning line, no traceback.

    aiohttp logs every request its parser rejects at ERROR with a traceback;
    a scanner could fill the logs that way.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg = f"{record.getMessage()}: {type(exc).__name__}: {exc.message}"
            record.args = ()
            record.exc_info = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def setup(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, QuietProtocolErrors) for f in server_log.filters):
        server_log.addFilter(QuietProtocolErrors())


def route_of(request: BaseRequest) -> str:
    """The route template (/students/{student_id}), never the raw path."""
    try:
        match_info = request.match_info  # type: ignore[attr-defined]
    except (AttributeError, AssertionError):
        # A request the HTTP parser refused never reached the router.
        match_info = None
    resource = match_info.route.resource if match_info is not None else None
    return resource.canonical if resource is not None else "unmatched"


class AccessLogger(AbstractAccessLogger):
    """One line per request, after the response is sent."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status,
            extra={
                "request_id": request.get(REQUEST_ID),
                "method": request.method,
                "route": route_of(request),
                "path": request.path,
                "status": response.status,
                "duration_ms": round(time * 1000, 3),
                "token": request.get(TOKEN_NAME),
                "remote": request.remote,
            },
        )
