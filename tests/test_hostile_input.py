"""Hostile clients: oversized, deeply nested, malformed, injected, slow and bursty input.

Whatever a client sends, the answer is a 4xx (never a 5xx), nothing invalid is
stored, and the server keeps answering other clients. Requests the aiohttp
client would refuse to send, or would clean up, go over a raw TCP connection.
"""

from __future__ import annotations

import asyncio
import base64
import io
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from service.app import create_app
from service.config import Config

from .api import create_course, create_student, problem

MIB = 1024 * 1024
JSON = {"Content-Type": "application/json"}
# Every wait below is bounded by this, so no test can hang on a misbehaving server.
DEADLINE = 10


async def count(db, table: str) -> int:
    return await db.fetchval(f"select count(*) from {table}")  # noqa: S608 - fixed names


async def assert_healthy(client: TestClient) -> None:
    """The server still answers, and still writes to the database."""
    async with asyncio.timeout(DEADLINE):
        response = await client.get("/healthz")
        assert response.status == 200
        assert await response.json() == {"status": "ok"}
        await create_student(client)


async def invalid_fields(response) -> list[str]:
    assert response.status == 422, await response.text()
    body = await problem(response)
    assert body["type"] == "/problems/validation-error"
    return [error["field"] for error in body["errors"]]


# -- raw HTTP over TCP ------------------------------------------------------------


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


async def connect(client: TestClient) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(client.server.host, client.server.port)


async def read_response(reader: asyncio.StreamReader) -> RawResponse:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length)
    return RawResponse(int(status_line.split()[1]), headers, body)


async def raw_request(client: TestClient, request: bytes) -> RawResponse:
    """Send bytes exactly as given; return the first response."""
    async with asyncio.timeout(DEADLINE):
        reader, writer = await connect(client)
        try:
            writer.write(request)
            await writer.drain()
            return await read_response(reader)
        finally:
            writer.close()


def is_problem(response: RawResponse) -> bool:
    return response.headers.get("content-type", "").startswith("application/problem+json")


# -- body size ------------------------------------------------------------------

STUDENT = b'{"name": "Ada", "email": "ada@example.org"}'


def padded(size: int) -> bytes:
    """A valid student, padded with insignificant white space to exactly `size` bytes."""
    return STUDENT + b" " * (size - len(STUDENT))


async def test_body_of_exactly_one_mib_is_accepted(client, db):
    # The boundary: 1 MiB is still allowed, so the 413s below are about size alone.
    response = await client.post("/students", data=io.BytesIO(padded(MIB)), headers=JSON)

    assert response.status == 201, await response.text()
    assert await count(db, "students") == 1


async def test_body_over_one_mib_with_content_length_is_413(client, db):
    # Content-Length announces 1 MiB + 1: refused from the header, before reading the body.
    response = await client.post("/students", data=io.BytesIO(padded(MIB + 1)), headers=JSON)

    assert response.request_info.headers["Content-Length"] == str(MIB + 1)
    assert response.status == 413
    body = await problem(response)
    assert body["type"] == "/problems/payload-too-large"
    assert await count(db, "students") == 0
    await assert_healthy(client)


async def chunked(body: bytes) -> AsyncIterator[bytes]:
    """The body as an async iterator, which aiohttp sends chunked, without Content-Length."""
    for start in range(0, len(body), 64 * 1024):
        yield body[start : start + 64 * 1024]
        await asyncio.sleep(0)


async def test_chunked_body_over_one_mib_is_413(client, db):
    # No Content-Length: the size is only known while reading; the read must stop at 1 MiB.
    async with asyncio.timeout(DEADLINE):
        response = await client.post("/students", data=chunked(padded(2 * MIB)), headers=JSON)

    assert response.request_info.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.request_info.headers
    assert response.status == 413
    body = await problem(response)
    # aiohttp's own limit answers this one, with the service's problem type for it.
    assert body["type"] == "/problems/payload-too-large"
    assert "1 MiB" in body["detail"]
    assert await count(db, "students") == 0
    await assert_healthy(client)


async def test_chunked_body_of_one_mib_is_accepted(client, db):
    # The same boundary as with Content-Length: the 413 above is about size, not chunking.
    async with asyncio.timeout(DEADLINE):
        response = await client.post("/students", data=chunked(padded(MIB)), headers=JSON)

    assert response.request_info.headers.get("Transfer-Encoding") == "chunked"
    assert response.status == 201, await response.text()
    assert await count(db, "students") == 1


# -- nesting --------------------------------------------------------------------

DEEP = 100_000
DEEPLY_NESTED = [
    b"[" * DEEP,  # unclosed arrays: recursion in the parser
    b"[" * DEEP + b"]" * DEEP,  # closed arrays: valid syntax, but far too deep
    b'{"a":' * DEEP,  # unclosed objects: recursion through objects
    b'{"a":' * DEEP + b"1" + b"}" * DEEP,  # closed objects
    # The depth hides inside an otherwise valid student.
    b'{"name": ' + b"[" * DEEP + b"]" * DEEP + b', "email": "a@b.c"}',
]


async def test_deeply_nested_json_is_400(client, db):
    for raw in DEEPLY_NESTED:
        response = await client.post("/students", data=raw, headers=JSON)

        assert response.status == 400, raw[:20]
        body = await problem(response)
        assert body["type"] == "/problems/invalid-json"
        await assert_healthy(client)
    assert await count(db, "students") == len(DEEPLY_NESTED)  # only assert_healthy's


async def test_moderately_nested_field_is_422(client, db):
    # Depth the parser handles: the field is simply not a string.
    raw = b'{"name": ' + b"[" * 500 + b"]" * 500 + b', "email": "a@b.c"}'

    response = await client.post("/students", data=raw, headers=JSON)

    assert await invalid_fields(response) == ["name"]
    assert await count(db, "students") == 0


# -- huge numbers -------------------------------------------------------------------

HUGE_NUMBERS = [
    "1" + "0" * 19,  # 20 digits: just past 64 bits
    "9" * 100,  # 100 digits: far beyond any integer type
    "7" * 5000,  # 5000 digits: past Python's int() digit limit (4300)
    "-" + "9" * 5000,  # huge and negative
    # 1e400 is valid JSON syntax that overflows a double to infinity: a JSON number that
    # is out of range, so 422 like any other out-of-range number (not 400).
    "1e400",
    "-1e400",  # negative infinity
    "1" + "0" * 400 + ".0",  # a float, and huge
]


async def test_huge_course_id_is_422(client, db):
    student = await create_student(client)

    for number in HUGE_NUMBERS:
        response = await client.post(
            f"/students/{student['id']}/courses",
            data=f'{{"course_id": {number}}}'.encode(),
            headers=JSON,
        )

        assert await invalid_fields(response) == ["course_id"], number[:20]
    assert await count(db, "student_courses") == 0


async def test_huge_capacity_is_422(client, db):
    course = await create_course(client, capacity=3)

    for number in HUGE_NUMBERS:
        response = await client.post(
            "/courses",
            data=f'{{"code": "X1", "title": "X", "capacity": {number}}}'.encode(),
            headers=JSON,
        )
        assert await invalid_fields(response) == ["capacity"], number[:20]

        response = await client.patch(
            f"/courses/{course['id']}", data=f'{{"capacity": {number}}}'.encode(), headers=JSON
        )
        assert await invalid_fields(response) == ["capacity"], number[:20]
    assert await db.fetchval("select capacity from courses where id = $1", course["id"]) == 3
    assert await count(db, "courses") == 1


# -- NUL and invalid UTF-8 ---------------------------------------------------------

ESCAPED_NUL = [
    # Escaped NUL: valid JSON, but PostgreSQL cannot store it and it is a control char.
    ("/students", b'{"name": "Ada\\u0000", "email": "ada@example.org"}', "name"),
    ("/students", b'{"name": "Ada", "email": "ada\\u0000@example.org"}', "email"),
    ("/courses", b'{"code": "CS\\u0000101", "title": "Programming"}', "code"),
    ("/courses", b'{"code": "CS101", "title": "\\u0000"}', "title"),
    # NUL in a field name: the name is echoed in the error, so it must be made printable.
    ("/students", b'{"name": "Ada", "email": "ada@example.org", "x\\u0000": 1}', "x?"),
]


async def test_escaped_nul_is_422(client, db):
    for path, raw, field in ESCAPED_NUL:
        response = await client.post(path, data=raw, headers=JSON)

        assert await invalid_fields(response) == [field], raw
    assert (await count(db, "students"), await count(db, "courses")) == (0, 0)


RAW_BAD_BYTES = [
    # A raw NUL byte inside a string: JSON forbids unescaped control characters.
    ("/students", b'{"name": "Ada\x00", "email": "ada@example.org"}'),
    ("/courses", b'{"code": "CS101", "title": "Pro\x00gramming"}'),
    # Invalid UTF-8: a lone continuation byte, an overlong "/", and a stray 0xFF.
    ("/students", b'{"name": "Ada\x80", "email": "ada@example.org"}'),
    ("/students", b'{"name": "Ada", "email": "ada\xc0\xaf@example.org"}'),
    ("/courses", b'{"code": "\xff", "title": "Programming"}'),
    # A UTF-8-encoded surrogate (CESU-8 style): not valid UTF-8.
    ("/courses", b'{"code": "CS101", "title": "\xed\xa0\x80"}'),
    # Invalid UTF-8 in a field name.
    ("/students", b'{"name": "Ada", "email": "ada@example.org", "\xfe": 1}'),
]


async def test_raw_nul_or_invalid_utf8_in_body_is_400(client, db):
    for path, raw in RAW_BAD_BYTES:
        response = await client.post(path, data=raw, headers=JSON)

        assert response.status == 400, raw
        assert (await problem(response))["type"] == "/problems/invalid-json"
    assert (await count(db, "students"), await count(db, "courses")) == (0, 0)


RAW_PATHS = [
    b"/students/\xff",  # a raw invalid UTF-8 byte in the request target
    b"/students/1\xff",  # a valid id followed by garbage
    b"/courses/\xc3\x28/students",  # an invalid two-byte sequence
    b"/students/\x001",  # a raw NUL byte
]


async def test_raw_bytes_in_path_are_400_or_404(client):
    # The aiohttp client percent-encodes paths, so these go over a raw socket.
    await create_student(client)

    for target in RAW_PATHS:
        response = await raw_request(
            client, b"GET " + target + b" HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        )

        assert response.status in (400, 404), (target, response)
    await assert_healthy(client)


ENCODED_PATHS = [
    "/students/%FF",  # percent-encoded invalid UTF-8
    "/students/%00",  # percent-encoded NUL
    "/students/1%00",  # a valid id, then NUL
    "/courses/%C3%28",  # an invalid two-byte sequence
    "/courses/%ED%A0%80/students",  # an encoded surrogate
    "/students/1/courses/%FF",  # garbage in the second id
]


async def test_percent_encoded_garbage_in_path_is_404(client):
    await create_student(client)  # student 1 exists, so only the garbage can be the reason

    for path in ENCODED_PATHS:
        response = await client.get(URL(path, encoded=True))

        assert response.status == 404, path
        body = await problem(response)
        assert "\x00" not in body["detail"]


GARBAGE_QUERIES = [
    ("limit=%FF", "limit"),  # invalid UTF-8
    ("limit=%00", "limit"),  # NUL
    ("limit=1%00", "limit"),  # a valid limit, then NUL
    ("cursor=%00", "cursor"),  # NUL
    ("cursor=%FF%FE", "cursor"),  # invalid UTF-8
    ("cursor=djE6MQ%00", "cursor"),  # a valid cursor ("v1:1"), then NUL
]


async def test_garbage_in_query_string_is_422(client):
    for query, field in GARBAGE_QUERIES:
        for path in ("/students", "/courses"):
            response = await client.get(URL(f"{path}?{query}", encoded=True))

            assert await invalid_fields(response) == [field], query


# -- SQL injection ---------------------------------------------------------------

INJECTED_NAME = "Robert'); DROP TABLE students; --"
INJECTED_EMAIL = "'OR'1'='1'--@example.org';DROP/**/TABLE/**/students;--"
INJECTED_CODE = "';DROP/**/TABLE/**/courses;--"
INJECTED_TITLE = "x' UNION SELECT email FROM students; DELETE FROM student_courses; --"


async def tables(db) -> list[str]:
    rows = await db.fetch(
        "select tablename from pg_tables where schemaname = 'public' order by tablename"
    )
    return [row["tablename"] for row in rows]


async def test_sql_in_text_fields_is_stored_verbatim(client, db):
    # Text that would break a query built by string formatting is plain data here.
    before = await tables(db)
    response = await client.post("/students", json={"name": INJECTED_NAME, "email": INJECTED_EMAIL})
    assert response.status == 201, await response.text()
    student = await response.json()
    response = await client.post("/courses", json={"code": INJECTED_CODE, "title": INJECTED_TITLE})
    assert response.status == 201, await response.text()
    course = await response.json()
    enrolled = await client.post(
        f"/students/{student['id']}/courses", json={"course_id": course["id"]}
    )
    assert enrolled.status == 201

    got = await (await client.get(f"/students/{student['id']}")).json()
    assert (got["name"], got["email"]) == (INJECTED_NAME, INJECTED_EMAIL)
    got = await (await client.get(f"/courses/{course['id']}")).json()
    assert (got["code"], got["title"]) == (INJECTED_CODE, INJECTED_TITLE)
    stored = await db.fetchrow("select name, email from students where id = $1", student["id"])
    assert tuple(stored) == (INJECTED_NAME, INJECTED_EMAIL)
    stored = await db.fetchrow("select code, title from courses where id = $1", course["id"])
    assert tuple(stored) == (INJECTED_CODE, INJECTED_TITLE)
    # The same strings through PATCH.
    response = await client.patch(
        f"/students/{student['id']}", json={"name": INJECTED_TITLE, "email": "x" + INJECTED_EMAIL}
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["email"] == "x" + INJECTED_EMAIL
    response = await client.patch(f"/courses/{course['id']}", json={"title": INJECTED_NAME})
    assert (await response.json())["title"] == INJECTED_NAME
    # Nothing was executed: every table is still there, with exactly the rows created above.
    assert await tables(db) == before
    assert (await count(db, "students"), await count(db, "courses")) == (1, 1)
    assert await count(db, "student_courses") == 1


async def test_sql_in_email_does_not_match_other_emails(client):
    # A uniqueness check built from strings would match every email with 'OR'1'='1.
    await create_student(client, email="someone@example.org")

    response = await client.post("/students", json={"name": "X", "email": INJECTED_EMAIL})

    assert response.status == 201, await response.text()


INJECTED_QUERIES = [
    {"cursor": "1' OR '1'='1"},  # injection as a raw cursor
    {"cursor": "0 OR 1=1"},  # unquoted injection
    # Injection inside a well-formed cursor envelope ("v1:" + text).
    {"cursor": base64.urlsafe_b64encode(b"v1:1 OR 1=1").decode().rstrip("=")},
    {"cursor": base64.urlsafe_b64encode(b"v1:1;DROP TABLE students").decode().rstrip("=")},
    {"limit": "1; DROP TABLE students"},  # injection as the limit
    {"limit": "1 OR 1=1"},  # would return every row
    {"limit": "(select 500)"},  # a sub-select as the limit
]
INJECTED_SEGMENTS = [
    "1 OR 1=1",  # would match every row
    "1;DROP TABLE students",  # a stacked statement
    "1' OR '1'='1",  # quoted injection
    "(select max(id) from students)",  # a sub-select as the id
]


async def test_sql_in_query_parameters_is_422_and_in_path_404(client, db):
    await create_student(client)
    before = await tables(db)

    for query in INJECTED_QUERIES:
        for path in ("/students", "/courses", "/students/1/courses"):
            response = await client.get(path, params=query)

            assert await invalid_fields(response) == list(query), (path, query)
    for segment in INJECTED_SEGMENTS:
        for method in ("GET", "PATCH", "DELETE"):
            body = {"name": "Eve"} if method == "PATCH" else None
            response = await client.request(method, f"/students/{segment}", json=body)

            assert response.status == 404, (method, segment)
            await problem(response)
    assert await tables(db) == before
    assert await count(db, "students") == 1
    assert await db.fetchval("select name from students") != "Eve"


# -- slow clients ----------------------------------------------------------------


@pytest.fixture
async def strict(aiohttp_client, config: Config) -> TestClient:
    """The app with short client timeouts, served the way run_worker serves it."""
    config = replace(config, keepalive_timeout=2, body_timeout=1)
    server = TestServer(create_app(config))
    # run_worker hands keepalive_timeout to web.run_app, which gives it to the runner; do the
    # same here (TestServer ignores keyword arguments given to its constructor).
    await server.start_server(keepalive_timeout=config.keepalive_timeout)
    return await aiohttp_client(server)


async def test_slow_request_head_is_cut_off(strict):
    # Slowloris: a head that never completes must not hold a connection open for ever.
    reader, writer = await connect(strict)
    head = b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
    started = time.monotonic()
    sent = 0

    async def trickle() -> None:
        nonlocal sent
        for byte in head:
            writer.write(bytes([byte]))
            await writer.drain()
            sent += 1
            await asyncio.sleep(0.5)

    async def closed() -> bytes:
        try:
            return await reader.read(1024)
        except ConnectionResetError:
            return b""

    async def meanwhile() -> float:
        await asyncio.sleep(1)
        asked = time.monotonic()
        response = await strict.get("/healthz")
        assert response.status == 200
        return time.monotonic() - asked

    trickler = asyncio.create_task(trickle())
    try:
        async with asyncio.timeout(DEADLINE):
            data, other = await asyncio.gather(closed(), meanwhile())
    finally:
        trickler.cancel()
        writer.close()
    elapsed = time.monotonic() - started

    assert data == b""  # closed without an answer
    assert 1.5 <= elapsed <= 6, elapsed
    assert sent < len(head)  # while the head was still arriving
    assert other < 1.5, other  # other clients were served meanwhile


async def test_slow_request_body_is_408(strict, db):
    # The head arrives at once; the body trickles slower than body_timeout allows.
    reader, writer = await connect(strict)
    body = padded(100)
    writer.write(
        b"POST /students HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n"
    )

    async def trickle() -> None:
        for byte in body:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.5)

    trickler = asyncio.create_task(trickle())
    started = time.monotonic()
    try:
        async with asyncio.timeout(DEADLINE):
            response = await read_response(reader)
    finally:
        trickler.cancel()
        writer.close()
    elapsed = time.monotonic() - started

    assert response.status == 408, response
    assert is_problem(response)
    assert b'"/problems/request-timeout"' in response.body
    assert 0.8 <= elapsed <= 4, elapsed
    assert await count(db, "students") == 0
    await assert_healthy(strict)


# -- requests aiohttp's parser refuses ------------------------------------------------

BAD_HEADS = [
    # One 100 KB header: far past aiohttp's 8 KiB field limit.
    b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
    # A 100 KB request line.
    b"GET /students/" + b"1" * 100_000 + b" HTTP/1.1\r\nHost: test\r\n\r\n",
    # Many small headers: past aiohttp's limit on their number.
    b"GET /healthz HTTP/1.1\r\nHost: test\r\n"
    + b"".join(b"X-H%d: v\r\n" % i for i in range(1000))
    + b"\r\n",
    # Binary garbage where a request line should be.
    bytes(range(256)) + b"\r\n\r\n",
    # A raw invalid UTF-8 byte in the path.
    b"GET /students/\xff HTTP/1.1\r\nHost: test\r\n\r\n",
]


async def test_oversized_or_garbled_request_head_is_4xx(client):
    for head in BAD_HEADS:
        response = await raw_request(client, head)

        assert 400 <= response.status < 500, (head[:40], response)
        # The connection is closed after such an answer, but the server goes on serving.
        await assert_healthy(client)


async def test_requests_refused_by_the_parser_say_only_400(client):
    # A known limit (README, Errors): aiohttp's HTTP parser answers these before
    # the app and its request context exist for the request, as text/plain. What
    # we still promise: a plain 400 with no traceback or server detail in it.
    for head in BAD_HEADS:
        response = await raw_request(client, head)

        assert response.status == 400, (head[:40], response)
        assert response.headers.get("content-type", "").startswith("text/plain")
        assert b"Traceback" not in response.body
        assert b'File "' not in response.body


# -- bursts ---------------------------------------------------------------------


async def test_burst_of_malformed_requests_is_all_4xx(client, db):
    # 200 concurrent requests with random bodies and wrong or right content types.
    student = await create_student(client)
    course = await create_course(client)
    targets = [
        ("POST", "/students"),
        ("POST", "/courses"),
        ("POST", f"/students/{student['id']}/courses"),
        ("PATCH", f"/students/{student['id']}"),
        ("PATCH", f"/courses/{course['id']}"),
    ]
    content_types = [
        "application/json",  # right type, garbage body: 400
        "application/json; charset=utf-8",  # the same, with an explicit charset
        "application/json; charset=latin-1",  # JSON must be UTF-8: 415
        "text/plain",  # 415 from here on
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/octet-stream",
        "application/jsonx",
        None,  # no Content-Type header at all
    ]
    rng = random.Random(20240601)

    async def garbage(i: int) -> tuple[int, str, Any]:
        method, path = targets[i % len(targets)]
        content_type = content_types[i % len(content_types)]
        data = rng.randbytes(rng.randint(1, 4096))
        headers = {} if content_type is None else {"Content-Type": content_type}
        skip = ["Content-Type"] if content_type is None else []
        async with client.request(
            method, path, data=data, headers=headers, skip_auto_headers=skip
        ) as response:
            body = await response.json(content_type=None)
            return response.status, response.content_type, body

    async with asyncio.timeout(30):
        answers = await asyncio.gather(*(garbage(i) for i in range(200)))

    for i, (status, content_type, body) in enumerate(answers):
        expected = 400 if content_types[i % len(content_types)] in content_types[:2] else 415
        assert status == expected, (i, status, body)
        assert content_type == "application/problem+json"
        assert body["status"] == status
    assert await count(db, "students") == 1
    assert await count(db, "courses") == 1
    assert await count(db, "student_courses") == 0
    assert await db.fetchval("select email from students") == student["email"]
    await assert_healthy(client)
