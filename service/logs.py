"""Structured logs: one JSON object per line, request id on every record."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
import time

import orjson
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web import BaseRequest, StreamResponse

from .keys import REQUEST_INFO
from .models import RequestInfo

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
        # Records logged while answering a request pass it with `extra=`.
        if rid := getattr(record, "request_id", None):
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
        self.name = orjson.dumps(logger.name)
        self.remote: bytes | None = None  # the connection's peer, looked up once

    def log(self, request: BaseRequest, response: StreamResponse, time_: float) -> None:
        info = request.get(REQUEST_INFO)
        # Requests aiohttp's HTTP parser refused never reached a handler.
        if info is None:
            info = _REFUSED
        method, status = request.method, response.status
        # The path is the only client-chosen text here: it goes through the
        # JSON encoder. The method is an HTTP token, the request id was
        # checked against a safe pattern, routes and token names are ours.
        path = orjson.dumps(request.path)
        if self.remote is None:
            self.remote = orjson.dumps(request.remote)
        line = _ACCESS_LINE % (
            _now_bytes(),
            self.name,
            method.encode(),
            path[1:-1],
            status,
            b"null" if info.request_id is None else b'"%s"' % info.request_id.encode(),
            method.encode(),
            info.route.encode(),
            path,
            status,
            time_ * 1000,
            _token_name(info.token),
            self.remote,
        )
        for handler in self.handlers:
            if isinstance(handler, LineHandler):
                handler.write_line(line)
            else:  # someone configured logging differently: go the long way
                record = self.logger.makeRecord(
                    self.logger.name,
                    logging.INFO,
                    "",
                    0,
                    f"{method} {request.path} {status}",
                    (),
                    None,
                )
                handler.handle(record)


# The access line, field for field what JsonFormatter writes for a record
# with those extras; built with one %-format instead of a dict and a dump.
_ACCESS_LINE = (
    b'{"time":"%s","level":"INFO","logger":%s,"message":"%s %s %d","request_id":%s,'
    b'"method":"%s","route":"%s","path":%s,"status":%d,"duration_ms":%.3f,'
    b'"token":%s,"remote":%s}\n'
)
_REFUSED = RequestInfo(None, "unmatched")  # type: ignore[arg-type]


@functools.cache
def _token_name(name: str | None) -> bytes:
    return orjson.dumps(name)


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
_millisecond: tuple[int, bytes] = (0, b"")


def _now_bytes() -> bytes:
    """UTC time with milliseconds, as bytes.

    strftime runs once a second and the rest once a millisecond, not per line.
    """
    global _second, _millisecond
    ms = time.time_ns() // 1_000_000
    if _millisecond[0] != ms:
        whole, fraction = divmod(ms, 1000)
        if _second[0] != whole:
            _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
        _millisecond = (ms, f"{_second[1]}.{fraction:03d}Z".encode())
    return _millisecond[1]
