"""Structured logs: one JSON object per line, request id on every record."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from contextvars import ContextVar

import orjson
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web import BaseRequest, StreamResponse

from .keys import REQUEST_INFO

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


class LineHandler(logging.Handler):
    """Writes JSON lines to a file descriptor, batched while the loop is busy.

    Writing and flushing one line per request costs a system call each; at a
    few thousand requests a second that is a visible share of a worker's CPU.
    Inside a running event loop, lines are collected and written at most
    FLUSH_DELAY later, in chunks of whole lines no larger than PIPE_BUF, so
    lines from several worker processes sharing one pipe never interleave.
    Outside a loop (start-up, CLI) every line is written at once.
    """

    FLUSH_DELAY = 0.05
    CHUNK = 4096  # PIPE_BUF on Linux: writes up to this size are atomic

    def __init__(self, fd: int = 2) -> None:
        super().__init__()
        self.fd = fd
        self.pending: list[bytes] = []
        self.pending_size = 0
        self.scheduled = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record).encode("utf-8", "replace") + b"\n"
        except Exception:
            self.handleError(record)
            return
        self.write_line(line)

    def write_line(self, line: bytes) -> None:
        self.pending.append(line)
        self.pending_size += len(line)
        if self.pending_size >= self.CHUNK:
            self.flush()
        elif not self.scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self.scheduled = True
            loop.call_later(self.FLUSH_DELAY, self.flush)

    def flush(self) -> None:
        self.scheduled = False
        lines, self.pending, self.pending_size = self.pending, [], 0
        chunk: list[bytes] = []
        size = 0
        for line in lines:
            if chunk and size + len(line) > self.CHUNK:
                self._write(b"".join(chunk))
                chunk, size = [], 0
            chunk.append(line)
            size += len(line)
        if chunk:
            self._write(b"".join(chunk))

    def _write(self, data: bytes) -> None:
        try:
            while data:
                data = data[os.write(self.fd, data) :]
        except OSError:
            pass  # nowhere left to log to; never fail a request over it

    def close(self) -> None:
        self.flush()
        super().close()


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
    handler = LineHandler(sys.stderr.fileno())
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
    """One JSON line per request, after the response is sent.

    Built straight to bytes and handed to the LineHandler, skipping the
    logging module's record machinery on the hot path; the logger's level and
    handlers still decide whether and where it goes.
    """

    @property
    def enabled(self) -> bool:
        """aiohttp calls log() only when this is true: honour LOG_LEVEL."""
        return self.logger.isEnabledFor(logging.INFO)

    def __init__(self, logger: logging.Logger, log_format: str) -> None:
        super().__init__(logger, log_format)
        # One instance per connection; logging is configured before serving.
        self.handlers = _handlers(logger)

    def log(self, request: BaseRequest, response: StreamResponse, time_: float) -> None:
        method, path, status = request.method, request.path, response.status
        info = request.get(REQUEST_INFO)
        entry = {
            "time": _now(),
            "level": "INFO",
            "logger": self.logger.name,
            "message": f"{method} {path} {status}",
            "request_id": info.request_id if info else None,
            "method": method,
            "route": info.route if info else route_of(request),
            "path": path,
            "status": status,
            "duration_ms": round(time_ * 1000, 3),
            "token": info.token if info else None,
            "remote": request.remote,
        }
        line = orjson.dumps(entry) + b"\n"
        for handler in self.handlers:
            if isinstance(handler, LineHandler):
                handler.write_line(line)
            else:  # someone configured logging differently: go the long way
                record = self.logger.makeRecord(
                    self.logger.name, logging.INFO, "", 0, entry["message"], (), None
                )
                handler.handle(record)


def _handlers(logger: logging.Logger) -> list[logging.Handler]:
    found: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        found += current.handlers
        if not current.propagate:
            break
        current = current.parent
    return found


_second: tuple[int, str] = (0, "")


def _now() -> str:
    """UTC time with milliseconds; strftime runs once a second, not per line."""
    global _second
    now = time.time()
    whole = int(now)
    if _second[0] != whole:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{int(now * 1000) % 1000:03d}Z"
