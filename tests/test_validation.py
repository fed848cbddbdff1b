"""Field validation: what is 422, what names the offending fields, and what is just allowed."""

from __future__ import annotations

from typing import Any

import pytest

from .api import create_course, create_student, problem

STUDENT = {"name": "Ada Lovelace", "email": "ada@example.org"}
COURSE = {"code": "CS101", "title": "Programming"}


async def invalid_fields(response) -> list[str]:
    """The fields a 422 names, after checking it is a validation problem."""
    assert response.status == 422, await response.text()
    body = await problem(response)
    assert body["type"] == "/problems/validation-error"
    assert body["errors"], body
    for error in body["errors"]:
        assert set(error) == {"field", "message"}
        assert isinstance(error["message"], str) and error["message"]
    return [error["field"] for error in body["errors"]]


async def count(db, table: str) -> int:
    return await db.fetchval(f"select count(*) from {table}")  # noqa: S608 - fixed names


# -- students -----------------------------------------------------------------

BAD_NAMES: list[Any] = [
    pytest.param("", id="empty"),
    pytest.param("   ", id="only-spaces"),
    pytest.param(" \t ", id="only-white-space"),
    pytest.param("a" * 201, id="201-chars"),
    pytest.param("  " + "a" * 201 + "  ", id="201-chars-after-trim"),
    pytest.param(123, id="number"),  # not a string
    pytest.param(None, id="null"),  # not a string
    pytest.param(True, id="boolean"),  # not a string
    pytest.param(["Ada"], id="array"),  # not a string
    pytest.param({"first": "Ada"}, id="object"),  # not a string
    pytest.param("Ada\x00Lovelace", id="nul"),  # PostgreSQL cannot store NUL
    pytest.param("Ada\nLovelace", id="newline-inside"),  # control char inside
    pytest.param("Ada\x1bLovelace", id="escape"),  # terminal escape
    pytest.param("Ada\x7f", id="delete"),  # U+007F
    # U+001C..U+001F are control characters, not white space (Unicode White_Space),
    # even though Python's str.strip() removes them: they must not be trimmed away.
    pytest.param("\x1fAda", id="leading-unit-separator"),
    pytest.param("Ada\x1c", id="trailing-file-separator"),
]


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_bad_student_name_is_422(client, db, name):
    response = await client.post("/students", json={**STUDENT, "name": name})

    assert await invalid_fields(response) == ["name"]
    assert await count(db, "students") == 0


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_bad_student_name_in_patch_is_422(client, db, name):
    student = await create_student(client, name="Ada")

    response = await client.patch(f"/students/{student['id']}", json={"name": name})

    assert await invalid_fields(response) == ["name"]
    assert await db.fetchval("select name from students where id = $1", student["id"]) == "Ada"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "\\ud800", "email": "ada@example.org"}',  # lone high surrogate
        b'{"name": "Ada \\udfff", "email": "ada@example.org"}',  # lone low surrogate
        b'{"name": "\\udc00\\ud800", "email": "ada@example.org"}',  # surrogates in wrong order
    ],
)
async def test_lone_surrogate_in_name_is_422(client, db, raw):
    response = await client.post(
        "/students", data=raw, headers={"Content-Type": "application/json"}
    )

    assert await invalid_fields(response) == ["name"]
    assert await count(db, "students") == 0


async def test_unknown_field_with_unprintable_name_is_422(client, db):
    # The name is echoed in `errors`: it must come back as valid, printable JSON.
    raw = b'{"name": "Ada", "email": "ada@example.org", "\\ud800\\u0000x": 1}'

    response = await client.post(
        "/students", data=raw, headers={"Content-Type": "application/json"}
    )

    fields = await invalid_fields(response)
    assert len(fields) == 1
    assert "\x00" not in fields[0] and fields[0].endswith("x")
    assert await count(db, "students") == 0


async def test_unknown_field_with_a_very_long_name_is_422_and_cut_short(client):
    response = await client.post("/students", json={**STUDENT, "x" * 10_000: 1})

    fields = await invalid_fields(response)
    assert len(fields) == 1 and fields[0].startswith("xxx")
    assert len(fields[0]) <= 100
    assert len(await response.read()) < 2_000


async def test_escaped_surrogate_pair_is_a_valid_character(client, db):
    raw = b'{"name": "Ada \\ud83d\\ude00", "email": "ada@example.org"}'

    response = await client.post(
        "/students", data=raw, headers={"Content-Type": "application/json"}
    )

    assert response.status == 201
    assert await db.fetchval("select name from students") == "Ada \U0001f600"


BAD_EMAILS: list[Any] = [
    pytest.param("ada.example.org", id="no-at"),
    pytest.param("ada@@example.org", id="two-at-together"),
    pytest.param("ada@lovelace@example.org", id="two-at-apart"),
    pytest.param("@example.org", id="nothing-before-at"),
    pytest.param("ada@", id="nothing-after-at"),
    pytest.param("@", id="only-at"),
    pytest.param("a@", id="2-chars"),
    pytest.param("ab", id="2-chars-no-at"),
    pytest.param("a" * 243 + "@example.org", id="255-chars"),
    pytest.param("ada lovelace@example.org", id="space-before-at"),
    pytest.param("ada@exam ple.org", id="space-after-at"),
    pytest.param("ada@example.org\u00a0x", id="no-break-space"),  # Unicode white space
    pytest.param("ada\t@example.org", id="tab-inside"),
    pytest.param("", id="empty"),
    pytest.param("   ", id="only-spaces"),
    pytest.param(42, id="number"),  # not a string
    pytest.param(None, id="null"),  # not a string
    pytest.param(["ada@example.org"], id="array"),  # not a string
    pytest.param("ada\x00@example.org", id="nul"),  # control character
]


@pytest.mark.parametrize("email", BAD_EMAILS)
async def test_bad_email_is_422(client, db, email):
    response = await client.post("/students", json={**STUDENT, "email": email})

    assert await invalid_fields(response) == ["email"]
    assert await count(db, "students") == 0


@pytest.mark.parametrize("email", BAD_EMAILS)
async def test_bad_email_in_patch_is_422(client, db, email):
    student = await create_student(client, email="ada@example.org")

    response = await client.patch(f"/students/{student['id']}", json={"email": email})

    assert await invalid_fields(response) == ["email"]
    stored = await db.fetchval("select email from students where id = $1", student["id"])
    assert stored == "ada@example.org"


@pytest.mark.parametrize(
    ("field", "value", "stored"),
    [
        ("name", "a" * 200, "a" * 200),  # longest name
        ("name", "  " + "a" * 200 + "\t ", "a" * 200),  # longest name once trimmed
        ("name", "A", "A"),  # shortest name
        ("name", "Zoë Ørsted 李", "Zoë Ørsted 李"),  # non-ASCII letters
        ("name", "\U0001f600" * 200, "\U0001f600" * 200),  # 200 characters beyond the BMP
        ("email", "a" * 242 + "@example.org", "a" * 242 + "@example.org"),  # 254 chars
        ("email", "a@b", "a@b"),  # 3 chars, the shortest
        ("email", "  ada@example.org ", "ada@example.org"),  # trimmed, not white space inside
    ],
)
async def test_student_values_at_the_limits_are_accepted(client, db, field, value, stored):
    response = await client.post("/students", json={**STUDENT, field: value})

    assert response.status == 201, await response.text()
    assert (await response.json())[field] == stored
    assert await db.fetchval(f"select {field} from students") == stored  # noqa: S608


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ["name", "email"]),  # both required fields missing
        ({"name": "Ada"}, ["email"]),  # email missing
        ({"email": "ada@example.org"}, ["name"]),  # name missing
    ],
)
async def test_missing_student_fields_are_named_once_each(client, db, body, fields):
    response = await client.post("/students", json=body)

    assert sorted(await invalid_fields(response)) == sorted(fields)
    assert await count(db, "students") == 0


@pytest.mark.parametrize(
    "unknown",
    [
        "nmae",  # a typo
        "id",  # the server chooses ids
        "created_at",  # the server sets it
        "Email",  # field names are case-sensitive
    ],
)
async def test_unknown_student_field_is_422_naming_it(client, db, unknown):
    response = await client.post("/students", json={**STUDENT, unknown: "x"})

    assert await invalid_fields(response) == [unknown]
    assert await count(db, "students") == 0


async def test_unknown_field_in_patch_is_422_naming_it(client):
    student = await create_student(client)

    response = await client.patch(f"/students/{student['id']}", json={"nickname": "Ada"})

    assert await invalid_fields(response) == ["nickname"]


async def test_every_offending_field_is_named(client, db):
    response = await client.post("/students", json={"name": "", "email": "not-an-email", "age": 36})

    fields = await invalid_fields(response)
    assert sorted(fields) == ["age", "email", "name"]
    assert len(fields) == 3
    body = await problem(response)
    for field in ("name", "email", "age"):
        assert field in body["detail"]
    assert await count(db, "students") == 0


async def test_one_bad_field_rejects_the_whole_patch(client, db):
    student = await create_student(client, name="Ada", email="ada@example.org")

    response = await client.patch(f"/students/{student['id']}", json={"name": "Ok", "email": "x"})

    assert await invalid_fields(response) == ["email"]
    row = await db.fetchrow("select name, email from students where id = $1", student["id"])
    assert dict(row) == {"name": "Ada", "email": "ada@example.org"}


# -- courses ------------------------------------------------------------------

BAD_CODES: list[Any] = [
    pytest.param("C" * 33, id="33-chars"),
    pytest.param("CS 101", id="space-inside"),
    pytest.param("CS\u2003101", id="em-space-inside"),  # Unicode white space
    pytest.param("", id="empty"),
    pytest.param("   ", id="only-spaces"),
    pytest.param("CS\x00101", id="nul"),  # control character
    pytest.param(101, id="number"),  # not a string
    pytest.param(None, id="null"),  # not a string
]

BAD_TITLES: list[Any] = [
    pytest.param("", id="empty"),
    pytest.param("    ", id="only-spaces"),
    pytest.param("t" * 201, id="201-chars"),
    pytest.param(" " + "t" * 201 + " ", id="201-chars-after-trim"),
    pytest.param("Intro\x00", id="nul"),  # control character
    pytest.param("Intro\r\nto", id="cr-lf-inside"),  # control characters
    pytest.param(7, id="number"),  # not a string
    pytest.param(None, id="null"),  # not a string
    pytest.param(["Intro"], id="array"),  # not a string
]

BAD_CAPACITIES: list[Any] = [
    pytest.param(0, id="zero"),
    pytest.param(-1, id="negative"),
    pytest.param(100001, id="above-100000"),
    pytest.param(2**31, id="beyond-int4"),  # would overflow the column
    pytest.param(10**30, id="beyond-int64"),  # orjson cannot even read it as int
    pytest.param("10", id="string"),  # strings are not integers
    pytest.param(10.0, id="float-integral"),  # floats are not integers
    pytest.param(10.5, id="float"),
    pytest.param(True, id="true"),  # booleans are not integers
    pytest.param(False, id="false"),
    pytest.param([10], id="array"),
    pytest.param({"max": 10}, id="object"),
]


@pytest.mark.parametrize("code", BAD_CODES)
async def test_bad_course_code_is_422(client, db, code):
    response = await client.post("/courses", json={**COURSE, "code": code})

    assert await invalid_fields(response) == ["code"]
    assert await count(db, "courses") == 0


@pytest.mark.parametrize("title", BAD_TITLES)
async def test_bad_course_title_is_422(client, db, title):
    response = await client.post("/courses", json={**COURSE, "title": title})

    assert await invalid_fields(response) == ["title"]
    assert await count(db, "courses") == 0


@pytest.mark.parametrize("capacity", BAD_CAPACITIES)
async def test_bad_capacity_is_422(client, db, capacity):
    response = await client.post("/courses", json={**COURSE, "capacity": capacity})

    assert await invalid_fields(response) == ["capacity"]
    assert await count(db, "courses") == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        *(pytest.param("code", v.values[0], id=f"code-{v.id}") for v in BAD_CODES),
        *(pytest.param("title", v.values[0], id=f"title-{v.id}") for v in BAD_TITLES),
        *(pytest.param("capacity", v.values[0], id=f"capacity-{v.id}") for v in BAD_CAPACITIES),
    ],
)
async def test_bad_course_field_in_patch_is_422(client, db, field, value):
    course = await create_course(client, code="CS101", title="Programming", capacity=10)

    response = await client.patch(f"/courses/{course['id']}", json={field: value})

    assert await invalid_fields(response) == [field]
    row = await db.fetchrow("select code, title, capacity from courses where id = $1", course["id"])
    assert dict(row) == {"code": "CS101", "title": "Programming", "capacity": 10}


@pytest.mark.parametrize(
    ("field", "value", "stored"),
    [
        ("code", "C" * 32, "C" * 32),  # longest code
        ("code", " " + "C" * 32 + " ", "C" * 32),  # longest code once trimmed
        ("code", "X", "X"),  # shortest code
        ("title", "t" * 200, "t" * 200),  # longest title
        ("title", "T", "T"),  # shortest title
        ("capacity", 1, 1),  # smallest capacity
        ("capacity", 100000, 100000),  # largest capacity
        ("capacity", None, None),  # null: no limit
    ],
)
async def test_course_values_at_the_limits_are_accepted(client, db, field, value, stored):
    response = await client.post("/courses", json={**COURSE, field: value})

    assert response.status == 201, await response.text()
    assert (await response.json())[field] == stored
    assert await db.fetchval(f"select {field} from courses") == stored  # noqa: S608


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ["code", "title"]),  # both required fields missing
        ({"code": "CS1"}, ["title"]),  # title missing
        ({"title": "T", "capacity": 3}, ["code"]),  # code missing, capacity is optional
    ],
)
async def test_missing_course_fields_are_named_once_each(client, db, body, fields):
    response = await client.post("/courses", json=body)

    assert sorted(await invalid_fields(response)) == sorted(fields)
    assert await count(db, "courses") == 0


async def test_unknown_course_field_is_422_naming_it(client, db):
    response = await client.post("/courses", json={**COURSE, "capacitty": 10})

    assert await invalid_fields(response) == ["capacitty"]
    assert await count(db, "courses") == 0


async def test_every_offending_course_field_is_named(client, db):
    response = await client.post(
        "/courses", json={"code": "A B", "title": "", "capacity": 0, "teacher": "x"}
    )

    assert sorted(await invalid_fields(response)) == ["capacity", "code", "teacher", "title"]
    assert await count(db, "courses") == 0
