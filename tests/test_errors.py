"""Transport-level rules and the problem+json error format.

Some requests here are written byte by byte on a raw socket, because an HTTP
client library would "fix" them (add a Content-Type, re-encode the path).
"""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from .api import create_student, problem

MIB = 1024 * 1024
JSON = {"Content-Type": "application/json"}
STUDENT = b'{"name": "Ada", "email": "ada@example.org"}'


async def raw_request(client: TestClient, head: str, body: bytes = b"") -> tuple[int, dict, bytes]:
    """Send one HTTP/1.1 request exactly as given; return status, headers, body."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        request = head.replace("\n", "\r\n")
        request += f"Host: {client.host}\r\nConnection: close\r\n"
        if body:
            request += f"Content-Length: {len(body)}\r\n"
        writer.write(request.encode("latin-1") + b"\r\n" + body)
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), timeout=30)
    finally:
        writer.close()
        await writer.wait_closed()
    header_block, _, payload = response.partition(b"\r\n\r\n")
    status_line, *lines = header_block.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, payload


def assert_raw_problem(status: int, headers: dict, payload: bytes, expected: int) -> dict:
    assert status == expected, payload
    assert headers["content-type"].split(";")[0] == "application/problem+json"
    body = json.loads(payload)
    assert body["status"] == expected
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert_discloses_nothing(payload.decode("utf-8"))
    return body


def assert_discloses_nothing(text: str) -> None:
    assert "Traceback" not in text
    assert "SELECT" not in text and "select " not in text
    assert "asyncpg" not in text and 'File "' not in text


async def students_in(db) -> int:
    return await db.fetchval("select count(*) from students")


# -- 400: not JSON, or not a JSON object ---------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "Ada", "email": ',  # cut short
        b"{name: 'Ada'}",  # JavaScript, not JSON
        b'{"name": "Ada",}',  # trailing comma
        b'{"name": "Ada"} {"email": "x"}',  # two documents
        b'{"name": NaN}',  # NaN is not JSON
        b'{"name": Infinity}',  # neither is Infinity
        b'{"name": "Ada \xff"}',  # invalid UTF-8
        b'{"name": "\xed\xa0\x80"}',  # a surrogate encoded as UTF-8 is invalid UTF-8
        b"\xef\xbb\xbf" + STUDENT,  # a byte order mark is not allowed in JSON
        b"   ",  # only white space
        b"[" * 100_000,  # nested very deep and never closed
    ],
)
async def test_body_that_is_not_json_is_400(client, db, body):
    response = await client.post("/students", data=body, headers=JSON)

    assert response.status == 400
    assert (await problem(response))["type"] == "/problems/invalid-json"
    assert await students_in(db) == 0


async def test_deeply_nested_but_closed_json_is_a_client_error(client, db):
    # Valid JSON, but deeper than any parser should follow: refused, not a 500.
    body = b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b', "email": "a@b.co"}'

    response = await client.post("/students", data=body, headers=JSON)

    assert response.status in (400, 422)
    await problem(response)
    assert await students_in(db) == 0


@pytest.mark.parametrize(
    "body",
    [
        b"[]",  # an array
        b'[{"name": "Ada", "email": "ada@example.org"}]',  # an array holding the object
        b'"Ada"',  # a string
        b"42",  # a number
        b"null",  # null
        b"true",  # a boolean
    ],
)
async def test_json_that_is_not_an_object_is_400(client, db, body):
    response = await client.post("/students", data=body, headers=JSON)

    assert response.status == 400
    assert (await problem(response))["type"] == "/problems/invalid-json"
    assert await students_in(db) == 0


async def test_empty_json_body_is_400(client, db):
    response = await client.post("/students", data=b"", headers=JSON)

    assert response.status == 400
    assert (await problem(response))["type"] == "/problems/invalid-json"
    assert await students_in(db) == 0


async def test_empty_json_body_in_patch_is_400(client):
    student = await create_student(client)

    response = await client.patch(f"/students/{student['id']}", data=b"", headers=JSON)

    assert response.status == 400
    assert (await problem(response))["type"] == "/problems/invalid-json"


# -- 415: not sent as application/json ------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",  # plain text
        "application/x-www-form-urlencoded",  # an HTML form
        "multipart/form-data; boundary=x",  # an upload
        "application/json; charset=latin-1",  # JSON is UTF-8 only
        "application/json; charset=utf-16",  # not UTF-8 either
        "application/jsonx",  # a similar but different type
        "application/problem+json",  # our error type is not a request type
    ],
)
async def test_body_not_sent_as_json_is_415(client, db, content_type):
    response = await client.post("/students", data=STUDENT, headers={"Content-Type": content_type})

    assert response.status == 415
    assert (await problem(response))["type"] == "/problems/unsupported-media-type"
    assert await students_in(db) == 0


async def test_body_without_content_type_is_415(client, db):
    status, headers, payload = await raw_request(client, "POST /students HTTP/1.1\n", STUDENT)

    body = assert_raw_problem(status, headers, payload, 415)
    assert body["type"] == "/problems/unsupported-media-type"
    assert await students_in(db) == 0


async def test_patch_not_sent_as_json_is_415(client, db):
    student = await create_student(client, name="Ada")

    response = await client.patch(
        f"/students/{student['id']}",
        data=b'{"name": "Grace"}',
        headers={"Content-Type": "text/plain"},
    )

    assert response.status == 415
    await problem(response)
    assert await db.fetchval("select name from students") == "Ada"


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=utf-8",  # the charset JSON is in anyway
        "application/json; charset=UTF-8",  # charset names are case-insensitive
        "application/json;charset=utf-8",  # no space after the semicolon
        "Application/JSON",  # media types are case-insensitive
    ],
)
async def test_json_content_type_variants_are_accepted(client, db, content_type):
    response = await client.post("/students", data=STUDENT, headers={"Content-Type": content_type})

    assert response.status == 201, await response.text()
    assert await students_in(db) == 1


# -- 413: larger than 1 MiB --------------------------------------------------------


def padded(size: int) -> io.BytesIO:
    """A valid student body padded with white space to exactly `size` bytes."""
    return io.BytesIO(STUDENT[:-1] + b" " * (size - len(STUDENT)) + b"}")


async def test_body_over_one_mib_is_413(client, db):
    body = padded(MIB + 1)
    assert len(body.getvalue()) == MIB + 1

    response = await client.post("/students", data=body, headers=JSON)

    assert response.status == 413
    assert (await problem(response))["type"] == "/problems/payload-too-large"
    assert await students_in(db) == 0


async def test_body_of_exactly_one_mib_is_accepted(client, db):
    body = padded(MIB)

    response = await client.post("/students", data=body, headers=JSON)

    assert response.status == 201, await response.text()
    assert await students_in(db) == 1


async def test_chunked_body_over_one_mib_is_413(client, db):
    # Without Content-Length the size is only known while reading.
    async def chunks():
        yield STUDENT[:-1]
        for _ in range(5):
            yield b" " * (MIB // 4)
        yield b"}"

    response = await client.post("/students", data=chunks(), headers=JSON)

    assert response.status == 413
    assert (await problem(response))["type"] == "/problems/payload-too-large"
    assert await students_in(db) == 0


# -- 422 for values no column could hold ---------------------------------------


@pytest.mark.parametrize(
    "literal",
    [
        "9" * 5000,  # 5000 digits: beyond what Python even converts by default
        "-" + "9" * 5000,  # the same, negative
        "9223372036854775808",  # 2**63, one past the largest id
        "18446744073709551616",  # 2**64, beyond 64-bit unsigned
        "1e400",  # a float beyond double range
    ],
)
async def test_huge_number_as_course_id_is_422(client, db, literal):
    student = await create_student(client)

    response = await client.post(
        f"/students/{student['id']}/courses",
        data=f'{{"course_id": {literal}}}'.encode(),
        headers=JSON,
    )

    assert response.status == 422
    body = await problem(response)
    assert [e["field"] for e in body["errors"]] == ["course_id"]
    assert len(body["detail"]) < 500  # the number is not echoed back whole
    assert await db.fetchval("select count(*) from student_courses") == 0


async def test_huge_number_as_capacity_is_422(client, db):
    response = await client.post(
        "/courses",
        data=b'{"code": "C1", "title": "T", "capacity": ' + b"1" * 5000 + b"}",
        headers=JSON,
    )

    assert response.status == 422
    body = await problem(response)
    assert [e["field"] for e in body["errors"]] == ["capacity"]
    assert await db.fetchval("select count(*) from courses") == 0


# -- SQL stays data -------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Robert'); drop table students;--",  # Little Bobby Tables
        "x' or '1'='1",  # the classic always-true filter
        "$1; select pg_sleep(10)",  # a placeholder and a stacked query
        '"; delete from students where "1"="1',  # double quotes
        "\\'; truncate courses; --",  # a backslash before the quote
    ],
)
async def test_sql_in_a_name_is_stored_verbatim(client, db, name):
    other = await create_student(client)

    response = await client.post("/students", json={"name": name, "email": "bobby@example.org"})

    assert response.status == 201
    created = await response.json()
    assert created["name"] == name
    assert await db.fetchval("select name from students where id = $1", created["id"]) == name
    assert await db.fetchval("select to_regclass('public.students') is not null")
    assert await students_in(db) == 2
    fetched = await client.get(f"/students/{other['id']}")
    assert fetched.status == 200


async def test_sql_in_code_and_title_is_stored_verbatim(client, db):
    code, title = "x';drop--", "'); drop table courses; --"

    response = await client.post("/courses", json={"code": code, "title": title})

    assert response.status == 201
    row = await db.fetchrow("select code, title from courses")
    assert dict(row) == {"code": code, "title": title}


@pytest.mark.parametrize(
    "path",
    [
        "/students/1;drop%20table%20students",  # SQL after an id
        "/students/1%20or%201=1",  # an always-true condition
        "/students/'1'",  # a quoted id
    ],
)
async def test_sql_in_a_path_is_404(client, db, path):
    await create_student(client)

    response = await client.get(path)

    assert response.status == 404
    await problem(response)
    assert await students_in(db) == 1


# -- 404 and 405 ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "meant"),
    [
        ("GET", "/students/", "/students"),  # a collection
        ("GET", "/students/1/courses/", "/students/1/courses"),  # a sub-collection
        ("HEAD", "/courses//", "/courses"),  # more than one slash
        ("POST", "/students/", "/students"),  # not redirected: the POST is refused
    ],
)
async def test_a_trailing_slash_is_404_naming_the_path_without_it(client, db, method, path, meant):
    response = await client.request(method, path, json={"name": "A", "email": "a@example.org"})

    assert response.status == 404
    assert "Location" not in response.headers
    if method != "HEAD":
        body = await problem(response)
        assert body["detail"] == (
            f"no resource at this path; did you mean {meant} (no trailing slash)?"
        )
    assert await students_in(db) == 0


@pytest.mark.parametrize(
    "path",
    [
        "/",  # nothing at the root
        "/nope",  # unknown collection
        "/student",  # near miss
        "/students/1/grades",  # unknown sub-resource
        "/courses/1/students/1",  # enrollment is read from the student side only
    ],
)
async def test_unknown_path_is_404_problem(client, path):
    response = await client.get(path)

    assert response.status == 404
    body = await problem(response)
    assert body["type"] == "about:blank"
    assert_discloses_nothing(json.dumps(body))


@pytest.mark.parametrize(
    "target",
    [
        "/students/%FF",  # percent-encoded invalid UTF-8
        "/students/%00",  # percent-encoded NUL
        "/students/1%00",  # NUL after a valid id
        "/students/%C0%AF",  # overlong UTF-8 encoding of "/"
        "/courses/%FF%FE",  # invalid UTF-8 on the other collection
        "/students/%FF/courses",  # invalid UTF-8 in a parent segment
    ],
)
async def test_undecodable_path_is_404_problem(client, db, target):
    await create_student(client)

    status, headers, payload = await raw_request(client, f"GET {target} HTTP/1.1\n")

    assert_raw_problem(status, headers, payload, 404)
    assert b"\x00" not in payload


@pytest.mark.parametrize(
    "segment",
    [
        "0",  # ids start at 1
        "-1",  # negative
        "+1",  # a sign is not a digit
        "1.0",  # a float
        "1e3",  # exponent notation
        "0x10",  # hexadecimal
        "9223372036854775808",  # 2**63, one past the largest id
        "9" * 400,  # far too long
        "%EF%BC%91",  # a fullwidth digit one, not ASCII
        "%D9%A1",  # an Arabic-Indic digit one, which int() would accept
        "%C2%B2",  # a superscript two: str.isdigit() says yes, int() fails
        "%20%201",  # leading spaces
        "abc",  # not a number at all
    ],
)
async def test_path_that_is_no_id_is_404_problem(client, segment):
    await create_student(client)

    for method, suffix in (("GET", ""), ("DELETE", ""), ("GET", "/courses")):
        status, headers, payload = await raw_request(
            client, f"{method} /students/{segment}{suffix} HTTP/1.1\n"
        )
        body = assert_raw_problem(status, headers, payload, 404)
        assert body["type"] == "/problems/not-found"
        assert len(body["detail"]) < 200


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/students", {"GET", "HEAD", "POST"}),  # collection: no PUT
        ("DELETE", "/students", {"GET", "HEAD", "POST"}),  # collection cannot be deleted whole
        ("POST", "/students/1", {"GET", "HEAD", "PATCH", "DELETE"}),  # item: no POST
        ("PUT", "/courses/1", {"GET", "HEAD", "PATCH", "DELETE"}),  # no full replacement
        ("PATCH", "/students/1/courses/1", {"GET", "HEAD", "DELETE"}),  # enrollment has no fields
        ("POST", "/healthz", {"GET", "HEAD"}),  # operations are read-only
    ],
)
async def test_wrong_method_is_405_with_allow(client, method, path, allowed):
    response = await client.request(method, path, json={})

    assert response.status == 405
    body = await problem(response)
    assert body["type"] == "about:blank"
    assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed


# -- the shape of every error -------------------------------------------------------


async def test_every_error_is_a_problem_document(client, db):
    student = await create_student(client, email="taken@example.org")
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/students", {"data": b"{", "headers": JSON}),  # 400
        ("POST", "/students", {"data": STUDENT, "headers": {"Content-Type": "text/plain"}}),  # 415
        ("POST", "/students", {"data": padded(MIB + 1), "headers": JSON}),  # 413
        ("POST", "/students", {"json": {"name": "", "email": "x"}}),  # 422
        ("POST", "/students", {"json": {"name": "X", "email": "TAKEN@example.org"}}),  # 409
        ("GET", "/students/999999", {}),  # 404 resource
        ("GET", "/nowhere", {}),  # 404 route
        ("PUT", "/students", {"json": {}}),  # 405
        ("GET", "/students?limit=0", {}),  # 422 query
        ("GET", "/students?cursor=%27%3B--", {}),  # 422 cursor with SQL in it
        ("POST", f"/students/{student['id']}/courses", {"json": {"course_id": 424242}}),  # 404
    ]
    statuses = []
    for method, path, kwargs in requests:
        response = await client.request(method, path, **kwargs)
        statuses.append(response.status)
        body = await problem(response)
        assert isinstance(body["type"], str) and body["type"]
        assert isinstance(body["title"], str) and body["title"]
        assert isinstance(body["detail"], str) and body["detail"]
        assert body["type"] == "about:blank" or body["type"].startswith("/problems/")
        if response.status == 422:
            assert body["errors"]
        else:
            assert "errors" not in body
        assert_discloses_nothing(await response.text())
    assert statuses == [400, 415, 413, 422, 409, 404, 404, 405, 422, 422, 404]
    assert await students_in(db) == 1


async def test_not_found_detail_names_the_missing_resource(client):
    response = await client.get("/courses/31337")

    body = await problem(response)
    assert body["title"] == "Not Found"
    assert "31337" in body["detail"] and "course" in body["detail"]
