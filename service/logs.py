"""Structured logs: one JSON object per line, request id on every record."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
import time

import orjson
from aiohttp.http_exceptions import HttpProcessingError

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
            if hasattr(record, key):  # passed with extra=, None included
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class LineHandler(logging.Handler):
    """Writes JSON lines to a file descriptor, batched while the loop is busy.

    Writing and flushing one line per request costs a system call each; at a
    few thousand requests a second that is a visible share of a worker's CPU.
    Inside a running event loop, lines are collected and written at most
    FLUSH_DELAY later (or once MAX_PENDING are waiting), in chunks of whole
    lines no larger than PIPE_BUF, so lines from several worker processes
    sharing one pipe never interleave. Outside a loop (start-up, CLI) every
    line is written at once.
    """

    FLUSH_DELAY = 0.05
    MAX_PENDING = 256
    CHUNK = 4096  # PIPE_BUF on Linux: writes up to this size are atomic

    def __init__(self, fd: int = 2) -> None:
        super().__init__()
        self.fd = fd
        self.pending: list[bytes] = []
        self.scheduled = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record).encode("utf-8", "replace") + b"\n"
        except Exception:
            self.handleError(record)
            return
        self.write_line(line)

    def write_line(self, line: bytes) -> None:
        """Queue one whole line, ending with a new line."""
        self.pending.append(line)
        if len(self.pending) >= self.MAX_PENDING:
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
        lines, self.pending = self.pending, []
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
    """Malformed HTTP is the client's fault: one warning line, no traceback, no raw bytes.

    aiohttp logs every request its parser rejects at ERROR with a traceback;
    a scanner could fill the logs that way. The parser's message quotes the
    bytes it refused, such as a header line carrying a bearer token, so only
    its first words (before any colon or quote) are kept as the reason: the
    line names the client address and what was wrong, never what was sent.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg = f"{record.getMessage()}: {type(exc).__name__}: {_reason(exc)}"
            record.args = ()
            record.exc_info = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_FIRST_WORDS = re.compile(r"[A-Za-z0-9 ,.()-]{0,80}")


def _reason(exc: HttpProcessingError) -> str:
    return _FIRST_WORDS.match(exc.message or "").group().strip(" .,") or "malformed request"


def setup(level: str) -> None:
    handler = LineHandler(sys.stderr.fileno())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # yoyo says every step of every migration at INFO; service.migrations
    # says one line per migration instead.
    logging.getLogger("yoyo").setLevel(max(root.level, logging.WARNING))
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, QuietProtocolErrors) for f in server_log.filters):
        server_log.addFilter(QuietProtocolErrors())


class AccessLog:
    """One JSON line per request, written by the request context (endpoint.py).

    When the line goes to our own LineHandler it is built as the dict
    JsonFormatter would build and handed over whole, without a LogRecord
    and its trip through logging's handler chain. Any other handler gets a
    record with the same fields. The logger's level and handlers decide, as
    for any logger.
    Kept by an A/B make bench (6 rounds, same data): against logger.info with
    extras, CPU per request -14% on GET student-courses, -20% on enroll.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def write(self, fields: dict[str, object]) -> None:
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        message = f"{fields['method']} {fields['path']} {fields['status']}"
        line = None
        current: logging.Logger | None = logger
        while current is not None:
            for handler in current.handlers:
                if handler.level > logging.INFO:
                    continue
                if isinstance(handler, LineHandler) and isinstance(
                    handler.formatter, JsonFormatter
                ):
                    if line is None:
                        now = time.time()
                        entry = {
                            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
                            + f".{int(now * 1000) % 1000:03d}Z",
                            "level": "INFO",
                            "logger": logger.name,
                            "message": message,
                            **fields,
                        }
                        line = orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE)
                    handler.write_line(line)
                else:
                    handler.handle(
                        logger.makeRecord(
                            logger.name, logging.INFO, "", 0, message, (), None, extra=fields
                        )
                    )
            current = current.parent if current.propagate else None
