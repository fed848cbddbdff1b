"""Structured logs: one JSON line per request, request ids, errors kept server side."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from service.app import create_app
from service.endpoint import endpoint
from service.logs import JsonFormatter, LineHandler

from .api import problem
from .test_shutdown import HOST, Server, serving

ACCESS_FIELDS = {"method", "route", "path", "status", "duration_ms", "request_id", "remote"}
GENERATED_ID = re.compile(r"[0-9a-f]{12}-[0-9a-f]+")


def log_lines(server: Server) -> list[dict]:
    """Every line the server wrote to stderr, each of which must be one JSON object."""
    entries = []
    for line in server.log().splitlines():
        entry = json.loads(line)  # fails on any stray text
        assert isinstance(entry, dict), line
        entries.append(entry)
    return entries


def access_lines(entries: list[dict]) -> list[dict]:
    return [e for e in entries if e.get("logger") == "service.access"]


async def stop(server: Server) -> None:
    """SIGTERM, then wait (bounded) for a clean exit, so every buffered line is written."""
    server.process.send_signal(signal.SIGTERM)
    assert await server.exited(within=15) == 0


def session(server: Server) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(server.url, timeout=aiohttp.ClientTimeout(total=10))


# -- access lines and request ids --------------------------------------------------------


async def test_each_request_logs_one_json_line_with_its_request_id(database_url, tmp_path: Path):
    sent: list[tuple[str, str | None, str]] = []  # (path, X-Request-ID sent, id echoed)
    valid = ["abc-123", "A.b_c:d-9", "x" * 128]  # plain, every allowed class, the longest
    invalid = [
        "x" * 129,  # one over the limit
        "y" * 300,  # far over
        "abc 123",  # a space
        "abc\t123",  # a tab, legal in a header value but not in an id
        'x"}{"level":"ERROR","message":"forged',  # quotes: an attempt to forge a log line
        "../../etc/passwd",  # slashes
        "id;drop",  # other punctuation
    ]
    async with serving(database_url, tmp_path, LOG_LEVEL="INFO") as server:
        async with session(server) as client:

            async def get(path: str, request_id: str | None) -> str:
                headers = {"X-Request-ID": request_id} if request_id is not None else {}
                async with client.get(path, headers=headers) as response:
                    assert response.status == 404, await response.text()
                    echoed = response.headers["X-Request-ID"]
                sent.append((path, request_id, echoed))
                return echoed

            for n, request_id in enumerate(valid):
                assert await get(f"/students/{100 + n}", request_id) == request_id
            for n, request_id in enumerate(invalid):
                echoed = await get(f"/students/{200 + n}", request_id)
                assert echoed != request_id
                assert GENERATED_ID.fullmatch(echoed), echoed
            generated = [await get(f"/courses/{1000 + n}", None) for n in range(100)]
            assert all(GENERATED_ID.fullmatch(rid) for rid in generated), generated
            assert len(set(generated)) == 100
        await stop(server)
        entries = log_lines(server)

    access = [e for e in access_lines(entries) if e["path"] != "/healthz"]
    assert len(access) == len(sent)  # exactly one line per request
    by_id = Counter(e["request_id"] for e in access)
    assert len(by_id) == len(sent)
    by_path = {e["path"]: e for e in access}
    for path, _, echoed in sent:
        entry = by_path[path]
        assert ACCESS_FIELDS <= entry.keys(), entry
        assert entry["request_id"] == echoed
        assert entry["method"] == "GET"
        assert entry["status"] == 404
        assert entry["route"] in ("/students/{student_id}", "/courses/{course_id}")
        assert isinstance(entry["duration_ms"], int | float) and entry["duration_ms"] >= 0
        assert entry["remote"] == HOST
        assert entry["level"] == "INFO"
    log = json.dumps(entries)
    for request_id in invalid:
        assert json.dumps(request_id)[1:-1] not in log  # a refused id is never written


async def test_access_lines_reach_other_handlers_with_the_same_fields(client, caplog):
    # An operator may configure logging with handlers of their own (pytest's
    # caplog is one): the access line reaches them as a record whose extras
    # carry the fields the JSON line has, escaped only when formatted.
    caplog.handler.setFormatter(JsonFormatter())
    path = '/students/"quoted"'
    with caplog.at_level(logging.INFO, logger="service.access"):
        response = await client.get(path, headers={"X-Request-ID": "other-7"})
        assert response.status == 404

    records = [r for r in caplog.records if r.name == "service.access"]
    assert len(records) == 1, caplog.records
    record = records[0]
    assert record.getMessage() == f"GET {path} 404"
    assert (record.request_id, record.route, record.path) == (
        "other-7",
        "/students/{student_id}",
        path,
    )
    entry = json.loads(caplog.text.splitlines()[-1])
    assert ACCESS_FIELDS <= entry.keys(), entry
    assert entry["path"] == path and entry["status"] == 404 and entry["method"] == "GET"
    assert entry["duration_ms"] >= 0


# -- unexpected errors -------------------------------------------------------------------


async def test_unexpected_error_is_logged_with_request_id_and_traceback_only(
    config, aiohttp_client, caplog
):
    app = create_app(config)

    async def fail(request: web.Request) -> web.Response:
        raise RuntimeError("internal detail 5f3a: connection string and all")

    # The real app plus one route that fails: nothing outside can make it fail by design.
    app.router.add_get("/test-failure", endpoint(app, "GET", "/test-failure", fail, None))
    client = await aiohttp_client(app)
    caplog.handler.setFormatter(JsonFormatter())  # formats while the request is running

    with caplog.at_level(logging.INFO):
        response = await client.get("/test-failure", headers={"X-Request-ID": "fail-42"})

        assert response.status == 500
        assert response.headers["X-Request-ID"] == "fail-42"
        body = await problem(response)
        assert body["type"] == "about:blank"
        text = await response.text()
        for leak in ("Traceback", "RuntimeError", "5f3a", "test_logs.py"):
            assert leak not in text

    records = [r for r in caplog.records if r.exc_info and r.levelno >= logging.ERROR]
    assert len(records) == 1, caplog.records
    assert records[0].exc_info[0] is RuntimeError
    lines = [json.loads(line) for line in caplog.text.splitlines() if line.strip()]
    errors = [e for e in lines if "traceback" in e]
    assert len(errors) == 1, lines
    error = errors[0]
    assert error["request_id"] == "fail-42"
    assert error["level"] == "ERROR"
    assert "/test-failure" in error["message"]
    assert "RuntimeError: internal detail 5f3a" in error["traceback"]
    assert "Traceback" in error["traceback"]


# -- levels ------------------------------------------------------------------------------


async def test_warning_level_writes_no_access_lines(database_url, tmp_path: Path):
    async with serving(database_url, tmp_path, LOG_LEVEL="WARNING") as server:
        async with session(server) as client:
            for path in ("/students", "/courses", "/students/1", "/nope"):
                async with client.get(path) as response:
                    await response.read()
                    assert response.status in (200, 404)
        await stop(server)
        entries = log_lines(server)

    assert access_lines(entries) == [], access_lines(entries)
    assert all(e["level"] in ("WARNING", "ERROR") for e in entries), entries
    # Logging still works at this level: the open-service warning is there.
    assert any("NO API TOKENS" in e["message"] for e in entries), entries


# -- malformed HTTP ----------------------------------------------------------------------


async def raw_request(server: Server, data: bytes) -> bytes:
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection(HOST, server.port)
        try:
            writer.write(data)
            await writer.drain()
            return await reader.read(65536)
        finally:
            writer.close()
            await writer.wait_closed()


async def test_malformed_request_is_one_warning_line(database_url, tmp_path):
    async with serving(database_url, tmp_path, LOG_LEVEL="INFO") as server:
        answer = await raw_request(server, b"GET /students/\xff HTTP/1.1\r\nHost: test\r\n\r\n")
        # aiohttp answers a request it could not parse as HTTP/1.0.
        assert re.match(rb"HTTP/1\.[01] 400 ", answer), answer
        assert b"Traceback" not in answer

        # And the server keeps serving.
        async with session(server) as client, client.get("/students") as response:
            assert response.status == 200
        await stop(server)
        log = server.log()
        entries = log_lines(server)

    assert "Traceback" not in log
    warnings = [e for e in entries if e["logger"] == "aiohttp.server"]
    assert len(warnings) == 1, warnings
    assert warnings[0]["level"] == "WARNING"
    assert "traceback" not in warnings[0]
    # It names the client and what was wrong with the request.
    assert "127.0.0.1" in warnings[0]["message"], warnings[0]
    assert "InvalidURLError" in warnings[0]["message"], warnings[0]
    # The app never saw it, so it has no access line; the good request has one.
    assert [e["status"] for e in access_lines(entries) if e["path"] == "/students"] == [200]
    assert all(e["status"] != 400 for e in access_lines(entries))


# -- LineHandler -------------------------------------------------------------------------


@pytest.fixture
def pipe():
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    try:
        yield read_fd, write_fd
    finally:
        os.close(read_fd)
        os.close(write_fd)


@pytest.fixture
def line_logger(pipe):
    handler = LineHandler(pipe[1])
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.line_handler")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        yield logger
    finally:
        logger.handlers[:] = []
        handler.close()


def read_now(fd: int) -> bytes:
    try:
        return os.read(fd, 1 << 20)
    except BlockingIOError:
        return b""


def test_lines_logged_outside_an_event_loop_are_written_at_once(pipe, line_logger):
    line_logger.info("starting %s", "up")

    data = read_now(pipe[0])
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    assert json.loads(data)["message"] == "starting up"


async def test_lines_logged_in_a_running_loop_are_batched(pipe, line_logger):
    for n in range(10):
        line_logger.info("line %d", n)

    # Nothing is written until the loop gets control back...
    assert read_now(pipe[0]) == b""
    # ...then every line arrives, in order, shortly after.
    data = b""
    deadline = time.monotonic() + 0.2
    while data.count(b"\n") < 10 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
        data += read_now(pipe[0])
    assert [json.loads(line)["message"] for line in data.splitlines()] == [
        f"line {n}" for n in range(10)
    ]


def test_bursts_from_two_writers_never_split_or_interleave_lines():
    """Two handlers on one pipe, like two workers on one stderr, each logging a burst."""
    read_fd, write_fd = os.pipe()
    received = bytearray()

    def drain() -> None:
        while chunk := os.read(read_fd, 1000):  # a slow reader keeps the pipe full
            received.extend(chunk)

    def burst(writer: int) -> None:
        handler = LineHandler(write_fd)
        handler.setFormatter(JsonFormatter())
        logger = logging.getLogger(f"test.line_handler.burst{writer}")
        logger.handlers[:] = [handler]
        logger.propagate = False
        logger.setLevel(logging.INFO)

        async def main() -> None:
            for n in range(2000):
                # Lines of varying length, none a divisor of the chunk size.
                logger.info("writer %d line %d %s", writer, n, "z" * (n % 97 + 40))
            await asyncio.sleep(0.1)  # the scheduled flush of the remainder

        try:
            asyncio.run(main())
        finally:
            logger.handlers[:] = []
            handler.close()

    reader = threading.Thread(target=drain)
    writers = [threading.Thread(target=burst, args=(w,)) for w in (1, 2)]
    try:
        reader.start()
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join(timeout=20)
            assert not thread.is_alive()
    finally:
        os.close(write_fd)  # EOF for the reader
        reader.join(timeout=20)
        os.close(read_fd)
    assert not reader.is_alive()

    assert len(received) > 2 * LineHandler.CHUNK * 10  # many chunks' worth
    seen: dict[int, list[int]] = {1: [], 2: []}
    for line in bytes(received).splitlines():
        entry = json.loads(line)  # a split or interleaved line would not parse
        writer, n = map(int, entry["message"].split()[1:4:2])
        seen[writer].append(n)
    assert seen == {1: list(range(2000)), 2: list(range(2000))}
