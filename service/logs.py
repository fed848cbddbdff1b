"""Structured logs: one JSON object per line, request id on every record."""

from __future__ import annotations

import asyncio
import logging
import os
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


class AccessLog:
    """One JSON line per request, written by the request context (endpoint.py).

    The request context already holds everything the line needs, so it
    writes the line itself rather than leaving it to aiohttp's access logger,
    which would need the request's details handed over through the request.
    The logger's level and handlers still decide whether and where it goes.
    Requests aiohttp's HTTP parser refuses never reach a handler: they get
    one warning line each (QuietProtocolErrors) instead.

    The line is one f-string, field for field what JsonFormatter writes for a
    record with these extras: about a fifth cheaper than a dict and a JSON
    encoder (counted with callgrind), on a path every request takes. Only text a client chose (the path)
    can need escaping, so only that is checked; the method is an HTTP token,
    request ids are checked against a safe pattern (endpoint.py), the peer is
    an IP address, routes are ours and token names are encoded once.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.token_names: dict[str | None, str] = {None: "null"}  # name -> its JSON

    def write(
        self,
        method: str,
        path: str,
        status: int,
        request_id: str,
        route: str,
        seconds: float,
        token: str | None,
        remote: str | None,
    ) -> None:
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        path_json = path if _plain(path) else orjson.dumps(path).decode()[1:-1]
        if (token_json := self.token_names.get(token)) is None:
            # Only configured token names get here, so the dict stays small.
            token_json = self.token_names[token] = orjson.dumps(token).decode()
        # The peer is an IP address from the socket (or None): nothing to escape.
        remote_json = "null" if remote is None else f'"{remote}"'
        line = (
            f'{{"time":"{_timestamp(time.time_ns())}","level":"INFO",'
            f'"logger":"service.access","message":"{method} {path_json} {status}",'
            f'"request_id":"{request_id}","method":"{method}","route":"{route}",'
            f'"path":"{path_json}","status":{status},"duration_ms":{seconds * 1000:.3f},'
            f'"token":{token_json},"remote":{remote_json}}}\n'
        ).encode()
        record = None
        for handler in _handlers(logger):
            if handler.level > logging.INFO:
                continue
            if isinstance(handler, LineHandler):
                handler.write_line(line)
                continue
            # Someone configured logging differently: a record with the same fields.
            if record is None:
                record = logger.makeRecord(
                    logger.name,
                    logging.INFO,
                    "",
                    0,
                    "%s %s %s",
                    (method, path, status),
                    None,
                    extra={
                        "request_id": request_id,
                        "method": method,
                        "route": route,
                        "path": path,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 3),
                        "token": token,
                        "remote": remote,
                    },
                )
            handler.handle(record)


def _plain(text: str) -> bool:
    """Whether `text` goes into a JSON string as it is (cheaper than a regex)."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


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
_millisecond: tuple[int, str] = (0, "")


def _timestamp(time_ns: int) -> str:
    """UTC time with milliseconds; strftime runs once a second, the rest once a millisecond."""
    global _second, _millisecond
    ms = time_ns // 1_000_000
    if _millisecond[0] != ms:
        whole, fraction = divmod(ms, 1000)
        if _second[0] != whole:
            _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
        _millisecond = (ms, f"{_second[1]}.{fraction:03d}Z")
    return _millisecond[1]
