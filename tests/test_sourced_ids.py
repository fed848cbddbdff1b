"""sourced_id: the OneRoster sourcedId of students, courses, terms and enrollments.

Given on create (and by batch), else a UUID; never changed by PATCH; unique
per kind (409 sourced-id-taken); the key a batch item is matched by when it
carries one; a way to name a student or a course in an enroll item; a
lookup (?sourced_id=).
"""

from __future__ import annotations

import sys
import uuid
from typing import Any

import pytest

from service.validation.fields import Bad, sourced_id

from .api import create_course, create_student, create_term, problem


def is_uuid(value: Any) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except (TypeError, ValueError):
        return False


async def results(client, path: str, *items: dict[str, Any]) -> list[dict[str, Any]]:
    response = await client.post(path, json={"items": list(items)})
    assert response.status == 200, await response.text()
    return (await response.json())["results"]


# Each table's sourced_ids by id.
STORED = {
    table: f"select id, sourced_id from {table} order by id"  # noqa: S608 (a name of ours)
    for table in ("students", "courses", "terms")
}


async def stored(db, table: str) -> dict[int, str]:
    return {row["id"]: row["sourced_id"] for row in await db.fetch(STORED[table])}


STUDENT = {"name": "Ada Lovelace", "email": "ada@example.org"}
COURSE = {"code": "CS101", "title": "Programming"}
TERM = {
    "code": "2027-SPRING",
    "title": "Spring",
    "starts_on": "2027-01-11",
    "ends_on": "2027-05-07",
}
KINDS = [
    # (collection, a new record's body, its table)
    ("students", STUDENT, "students"),
    ("courses", COURSE, "courses"),
    ("terms", TERM, "terms"),
]


# --- create, read back, assigned ------------------------------------------------


@pytest.mark.parametrize(("path", "body", "table"), KINDS, ids=[k[0] for k in KINDS])
async def test_a_sourced_id_given_on_create_is_stored_and_read_back(client, db, path, body, table):
    response = await client.post(f"/{path}", json={**body, "sourced_id": "sis-0001"})

    assert response.status == 201, await response.text()
    created = await response.json()
    assert created["sourced_id"] == "sis-0001"
    got = await (await client.get(f"/{path}/{created['id']}")).json()
    assert got == created
    page = await (await client.get(f"/{path}")).json()
    assert page["items"] == [created]
    assert await stored(db, table) == {created["id"]: "sis-0001"}


@pytest.mark.parametrize(("path", "body", "table"), KINDS, ids=[k[0] for k in KINDS])
async def test_without_one_the_database_assigns_a_uuid(client, db, path, body, table):
    first = await (await client.post(f"/{path}", json=body)).json()
    second_body = {**body, "code": "OTHER"} if "code" in body else {**body, "email": "b@x.org"}
    second = await (await client.post(f"/{path}", json=second_body)).json()

    assert is_uuid(first["sourced_id"]) and is_uuid(second["sourced_id"])
    assert first["sourced_id"] != second["sourced_id"]
    assert await stored(db, table) == {
        first["id"]: first["sourced_id"],
        second["id"]: second["sourced_id"],
    }


async def test_an_enrollment_takes_its_sourced_id_or_gets_a_uuid(client, db):
    course = await create_course(client)
    named, unnamed = await create_student(client), await create_student(client)

    response = await client.post(
        f"/students/{named['id']}/courses", json={"course_id": course["id"], "sourced_id": "e-1"}
    )
    assert response.status == 201, await response.text()
    assert (await response.json())["sourced_id"] == "e-1"
    other = await client.post(
        f"/students/{unnamed['id']}/courses", json={"course_id": course["id"]}
    )
    assigned = (await other.json())["sourced_id"]
    assert is_uuid(assigned)

    # Every view of the enrollment carries the enrollment's, not the course's or the student's.
    one = await (await client.get(f"/students/{named['id']}/courses/{course['id']}")).json()
    mine = await (await client.get(f"/students/{named['id']}/courses")).json()
    theirs = await (await client.get(f"/courses/{course['id']}/students")).json()
    assert one["sourced_id"] == mine["items"][0]["sourced_id"] == "e-1"
    assert [s["sourced_id"] for s in theirs["items"]] == ["e-1", assigned]
    stored = await db.fetch(
        "select sourced_id from student_courses where course_id = $1 order by student_id",
        course["id"],
    )
    assert [r["sourced_id"] for r in stored] == ["e-1", assigned]


async def test_an_existing_enrollment_keeps_its_sourced_id_whatever_the_enroll_says(client, db):
    course, student = await create_course(client), await create_student(client)
    path = f"/students/{student['id']}/courses"
    await client.post(path, json={"course_id": course["id"], "sourced_id": "e-1"})

    again = await client.post(path, json={"course_id": course["id"], "sourced_id": "e-2"})

    assert again.status == 200
    assert (await again.json())["sourced_id"] == "e-1"
    assert await db.fetchval("select count(*) from student_courses where sourced_id = 'e-2'") == 0


async def test_a_place_in_a_queue_has_no_sourced_id(client):
    course = await create_course(client, capacity=1, waitlist_capacity=1)
    first, second = await create_student(client), await create_student(client)
    await client.post(f"/students/{first['id']}/courses", json={"course_id": course["id"]})

    response = await client.post(
        f"/students/{second['id']}/courses",
        json={"course_id": course["id"], "waitlist": True, "sourced_id": "e-9"},
    )

    assert response.status == 202
    assert "sourced_id" not in await response.json()


# --- bad values --------------------------------------------------------------------

BAD = [
    "",  # empty
    "x" * 256,  # one past 255
    "a b",  # a space inside
    " sis-1",  # surrounding white space is not trimmed: refused
    "sis-1\n",  # a line feed
    "a\u00a0b",  # NO-BREAK SPACE
    "a\u3000b",  # IDEOGRAPHIC SPACE
    "a\x00b",  # NUL
    "a\x85b",  # a C1 control (NEXT LINE)
    "a\u200bb",  # ZERO WIDTH SPACE, a format character
    "a\ufeffb",  # BYTE ORDER MARK, a format character
    7,  # not a string
    None,  # not a string
]
GOOD = ["x", "x" * 255, "5d6c4f3e-1b2a-4c8d-9e0f-a1b2c3d4e5f6", "Élève/123:ä", "😀"]


@pytest.mark.parametrize("value", BAD, ids=repr)
@pytest.mark.parametrize(("path", "body", "table"), KINDS, ids=[k[0] for k in KINDS])
async def test_a_bad_sourced_id_is_422_naming_it(client, db, path, body, table, value):
    response = await client.post(f"/{path}", json={**body, "sourced_id": value})

    assert response.status == 422
    assert [e["field"] for e in (await problem(response))["errors"]] == ["sourced_id"]
    assert await stored(db, table) == {}


@pytest.mark.parametrize("value", GOOD, ids=lambda v: repr(v)[:20])
async def test_a_good_sourced_id_is_stored_as_sent(client, value):
    student = await create_student(client, sourced_id=value)

    assert student["sourced_id"] == value


@pytest.mark.parametrize("value", [v for v in BAD if isinstance(v, str)], ids=repr)
async def test_a_bad_sourced_id_in_the_query_is_422_naming_it(client, value):
    response = await client.get("/students", params={"sourced_id": value})

    assert response.status == 422
    assert [e["field"] for e in (await problem(response))["errors"]] == ["sourced_id"]


async def test_a_bad_sourced_id_of_an_enrollment_is_422_naming_it(client, db):
    course, student = await create_course(client), await create_student(client)

    response = await client.post(
        f"/students/{student['id']}/courses", json={"course_id": course["id"], "sourced_id": "a b"}
    )

    assert response.status == 422
    assert [e["field"] for e in (await problem(response))["errors"]] == ["sourced_id"]
    assert await db.fetchval("select count(*) from student_courses") == 0


async def test_every_sourced_id_the_service_takes_the_database_takes(db):
    # The database's check (sourced_id_valid(), [[:space:][:cntrl:]]) is the
    # last guard: whatever the service lets through must pass it in this
    # database's locale, or a create would be a 500. Every code point the
    # service takes, 255 to a string.
    taken = []
    for point in range(sys.maxunicode + 1):
        try:
            taken.append(sourced_id(chr(point)))
        except Bad:
            pass
    strings = ["".join(taken[i : i + 255]) for i in range(0, len(taken), 255)]

    refused = await db.fetchval(
        "select count(*) from unnest($1::text[]) as s where not sourced_id_valid(s)", strings
    )

    assert refused == 0
    assert len(taken) > 1_000_000  # nearly every code point is a character it takes


# --- taken, PATCH ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "kind"),
    [
        ("students", {"name": "Ada", "email": "ada@example.org"}, "student"),
        ("courses", {"code": "CS101", "title": "Programming"}, "course"),
        ("terms", TERM, "term"),
    ],
)
async def test_a_taken_sourced_id_is_409_naming_the_kind(client, db, path, body, kind):
    await client.post(f"/{path}", json={**body, "sourced_id": "sis-1"})
    other = {**body, "email": "bob@example.org"} if kind == "student" else {**body, "code": "B"}

    response = await client.post(f"/{path}", json={**other, "sourced_id": "sis-1"})

    assert response.status == 409
    body = await problem(response)
    assert body["type"] == "/problems/sourced-id-taken"
    assert body["detail"] == f"a {kind} with sourced_id sis-1 already exists"
    assert list((await stored(db, path)).values()) == ["sis-1"]


async def test_an_enrollment_naming_a_taken_sourced_id_is_409_and_nothing_changes(client, db):
    course = await create_course(client)
    first, second = await create_student(client), await create_student(client)
    await client.post(
        f"/students/{first['id']}/courses", json={"course_id": course["id"], "sourced_id": "e-1"}
    )

    response = await client.post(
        f"/students/{second['id']}/courses", json={"course_id": course["id"], "sourced_id": "e-1"}
    )

    assert response.status == 409
    assert (await problem(response))["type"] == "/problems/sourced-id-taken"
    assert await db.fetchval("select count(*) from student_courses") == 1
    assert (await (await client.get(f"/courses/{course['id']}")).json())["enrolled"] == 1


@pytest.mark.parametrize(("path", "body", "table"), KINDS, ids=[k[0] for k in KINDS])
async def test_patch_refuses_a_sourced_id(client, db, path, body, table):
    created = await (await client.post(f"/{path}", json={**body, "sourced_id": "sis-1"})).json()

    response = (
        await client.patch(
            f"/{path}/{created['id']}", json={"title": "Renamed", "sourced_id": "sis-2"}
        )
        if path != "students"
        else await client.patch(
            f"/{path}/{created['id']}", json={"name": "Renamed", "sourced_id": "sis-2"}
        )
    )

    assert response.status == 422
    errors = (await problem(response))["errors"]
    assert errors == [
        {
            "field": "sourced_id",
            "message": "cannot be changed: it is given only when the record is created",
        }
    ]
    assert await stored(db, table) == {created["id"]: "sis-1"}


# --- lookups -----------------------------------------------------------------------


@pytest.mark.parametrize(("path", "body", "table"), KINDS, ids=[k[0] for k in KINDS])
async def test_sourced_id_finds_the_one_record_that_has_it(client, path, body, table):
    wanted = await (await client.post(f"/{path}", json={**body, "sourced_id": "Sis-1"})).json()
    other = {**body, "email": "b@x.org"} if path == "students" else {**body, "code": "OTHER"}
    await client.post(f"/{path}", json=other)

    found = await (await client.get(f"/{path}", params={"sourced_id": "Sis-1"})).json()
    # Exact: another letter case is another sourced_id.
    none = await (await client.get(f"/{path}", params={"sourced_id": "sis-1"})).json()

    assert found == {"items": [wanted], "next_cursor": None}
    assert none == {"items": [], "next_cursor": None}


async def test_sourced_id_and_another_filter_both_apply(client):
    await create_student(client, email="ada@example.org", sourced_id="s-1")

    both = await client.get("/students", params={"sourced_id": "s-1", "email": "ADA@example.org"})
    other = await client.get("/students", params={"sourced_id": "s-1", "email": "bob@example.org"})

    assert [s["sourced_id"] for s in (await both.json())["items"]] == ["s-1"]
    assert (await other.json())["items"] == []


async def test_sourced_id_finds_a_course_of_its_term_only_with_term_id(client):
    spring = await create_term(client)
    course = await create_course(client, term_id=spring["id"], sourced_id="c-1")

    same = await client.get("/courses", params={"sourced_id": "c-1", "term_id": spring["id"]})
    other = await client.get("/courses", params={"sourced_id": "c-1", "term_id": spring["id"] + 1})

    assert (await same.json())["items"] == [course]
    assert (await other.json())["items"] == []


# --- batches: students, courses, terms ---------------------------------------------


async def test_a_student_item_with_a_sourced_id_updates_that_student_name_and_email(client, db):
    created = await create_student(client, name="Ada", email="ada@example.org", sourced_id="s-1")

    [same, changed] = await results(
        client,
        "/students/batch",
        {"name": "Ada", "email": "ada@example.org", "sourced_id": "s-1"},
        {"name": "Ada King", "email": "ada.king@example.org", "sourced_id": "s-1"},
    )

    assert (same["status"], same["outcome"], same["body"]) == (200, "unchanged", created)
    assert (changed["status"], changed["outcome"]) == (200, "updated")
    assert changed["body"] == {**created, "name": "Ada King", "email": "ada.king@example.org"}
    rows = await db.fetch("select name, email, sourced_id from students")
    assert [tuple(r) for r in rows] == [("Ada King", "ada.king@example.org", "s-1")]


async def test_a_student_item_with_a_new_sourced_id_creates_one_with_it(client, db):
    [result] = await results(
        client, "/students/batch", {"name": "Ada", "email": "ada@example.org", "sourced_id": "s-1"}
    )

    assert (result["status"], result["outcome"]) == (201, "created")
    assert result["body"]["sourced_id"] == "s-1"
    assert await db.fetchval("select sourced_id from students") == "s-1"


async def test_a_student_item_without_one_is_matched_by_email_and_keeps_the_sourced_id(client):
    created = await create_student(client, name="Ada", email="ada@example.org", sourced_id="s-1")

    [result] = await results(
        client, "/students/batch", {"name": "Ada King", "email": "ADA@example.org"}
    )

    assert result["outcome"] == "updated"
    assert result["body"] == {**created, "name": "Ada King"}


@pytest.mark.parametrize("create", [True, False], ids=["create", "update"])
async def test_a_student_item_whose_email_is_another_students_is_its_own_409(client, db, create):
    await create_student(client, name="Bob", email="bob@example.org", sourced_id="s-bob")
    if not create:
        await create_student(client, name="Ada", email="ada@example.org", sourced_id="s-ada")
    single = await client.post("/students", json={"name": "X", "email": "BOB@example.org"})

    [clash, after] = await results(
        client,
        "/students/batch",
        {"name": "Ada", "email": "BOB@example.org", "sourced_id": "s-ada"},
        {"name": "Cy", "email": "cy@example.org", "sourced_id": "s-cy"},
    )

    assert (clash["status"], clash["outcome"]) == (409, "email-taken")
    assert clash["body"] == await problem(single)
    assert after["outcome"] == "created"
    rows = await db.fetch("select email, sourced_id from students order by id")
    expected = [("bob@example.org", "s-bob")]
    expected += [] if create else [("ada@example.org", "s-ada")]
    assert [tuple(r) for r in rows] == [*expected, ("cy@example.org", "s-cy")]


async def test_a_course_item_with_a_sourced_id_sets_code_and_term_too(client, db):
    spring, fall = await create_term(client), await create_term(client)
    created = await create_course(client, code="CS101", term_id=spring["id"], sourced_id="c-1")

    [moved] = await results(
        client,
        "/courses/batch",
        {"code": "CS-101", "title": "Programming", "term_id": fall["id"], "sourced_id": "c-1"},
    )

    assert (moved["status"], moved["outcome"]) == (200, "updated")
    assert moved["body"] == {
        **created,
        "code": "CS-101",
        "title": "Programming",
        "term_id": fall["id"],
    }
    rows = await db.fetch("select code, term_id, sourced_id from courses")
    assert [tuple(r) for r in rows] == [("CS-101", fall["id"], "c-1")]


async def test_a_course_item_whose_code_is_taken_in_its_term_is_its_own_409(client, db):
    spring = await create_term(client)
    await create_course(client, code="CS101", term_id=spring["id"], sourced_id="c-1")
    await create_course(client, code="CS102", term_id=spring["id"], sourced_id="c-2")
    single = await client.post(
        "/courses", json={"code": "cs101", "title": "X", "term_id": spring["id"]}
    )

    [renamed, created] = await results(
        client,
        "/courses/batch",
        {"code": "cs101", "title": "X", "term_id": spring["id"], "sourced_id": "c-2"},
        {"code": "cs101", "title": "X", "term_id": spring["id"], "sourced_id": "c-3"},
    )

    assert (renamed["status"], renamed["outcome"]) == (409, "code-taken")
    assert (created["status"], created["outcome"]) == (409, "code-taken")
    assert renamed["body"] == created["body"] == await problem(single)
    rows = await db.fetch("select code, sourced_id from courses order by id")
    assert [tuple(r) for r in rows] == [("CS101", "c-1"), ("CS102", "c-2")]


async def test_a_course_item_cannot_move_a_course_with_students_to_another_term(client, db):
    spring, fall = await create_term(client), await create_term(client)
    course = await create_course(client, term_id=spring["id"], sourced_id="c-1")
    student = await create_student(client)
    await client.post(f"/students/{student['id']}/courses", json={"course_id": course["id"]})
    single = await client.patch(f"/courses/{course['id']}", json={"term_id": fall["id"]})

    [result] = await results(
        client,
        "/courses/batch",
        {"code": course["code"], "title": "X", "term_id": fall["id"], "sourced_id": "c-1"},
    )

    assert (result["status"], result["outcome"]) == (409, "course-not-empty")
    assert result["body"] == await problem(single)
    assert await db.fetchval("select (term_id, title) from courses") == (
        spring["id"],
        course["title"],
    )


async def test_a_term_item_with_a_sourced_id_matches_it_and_sets_the_code(client, db):
    created = await create_term(client, code="SP27", sourced_id="t-1")
    await create_term(client, code="FA27", sourced_id="t-2")

    [renamed, clash, new] = await results(
        client,
        "/terms/batch",
        {**TERM, "code": "2027-SPRING", "sourced_id": "t-1"},
        {**TERM, "code": "fa27", "sourced_id": "t-1"},
        {**TERM, "code": "2028-SPRING", "sourced_id": "t-3"},
    )

    assert (renamed["outcome"], renamed["body"]["id"]) == ("updated", created["id"])
    assert renamed["body"]["code"] == "2027-SPRING"
    assert (clash["status"], clash["outcome"]) == (409, "code-taken")
    assert (new["status"], new["outcome"], new["body"]["sourced_id"]) == (201, "created", "t-3")
    rows = await db.fetch("select code, sourced_id from terms order by id")
    assert [tuple(r) for r in rows] == [
        ("2027-SPRING", "t-1"),
        ("FA27", "t-2"),
        ("2028-SPRING", "t-3"),
    ]


async def test_an_invalid_sourced_id_is_its_items_own_422(client, db):
    [bad, good] = await results(
        client,
        "/students/batch",
        {"name": "Ada", "email": "ada@example.org", "sourced_id": "a b"},
        {"name": "Bob", "email": "bob@example.org", "sourced_id": "s-2"},
    )

    assert (bad["status"], bad["outcome"]) == (422, "invalid")
    assert [e["field"] for e in bad["body"]["errors"]] == ["sourced_id"]
    assert good["outcome"] == "created"
    assert await db.fetchval("select array_agg(sourced_id) from students") == ["s-2"]


# --- batches: enrollments ----------------------------------------------------------


async def test_enroll_items_name_students_and_courses_by_sourced_id(client, db):
    course = await create_course(client, sourced_id="c-1")
    student = await create_student(client, sourced_id="s-1")

    [enrolled, again, no_student, no_course, dropped] = await results(
        client,
        "/enrollments/batch",
        {"student_sourced_id": "s-1", "course_sourced_id": "c-1", "sourced_id": "e-1"},
        {"student_sourced_id": "s-1", "course_sourced_id": "c-1", "sourced_id": "e-2"},
        {"student_sourced_id": "s-9", "course_sourced_id": "c-1"},
        {"student_sourced_id": "s-1", "course_sourced_id": "c-9"},
        {"action": "drop", "student_id": student["id"], "course_sourced_id": "c-1"},
    )

    assert (enrolled["status"], enrolled["outcome"]) == (201, "enrolled")
    assert (enrolled["body"]["id"], enrolled["body"]["sourced_id"]) == (course["id"], "e-1")
    # Enrolled already: its own sourced_id, whatever the item names.
    assert (again["status"], again["outcome"], again["body"]["sourced_id"]) == (
        200,
        "already-enrolled",
        "e-1",
    )
    assert (no_student["status"], no_student["body"]["detail"]) == (
        404,
        "no student has sourced_id s-9",
    )
    assert (no_course["status"], no_course["body"]["detail"]) == (
        404,
        "no course has sourced_id c-9",
    )
    assert (dropped["status"], dropped["outcome"]) == (204, "dropped")
    assert await db.fetchval("select count(*) from student_courses") == 0
    assert await db.fetchval("select count(*) from tombstones where sourced_id = 'e-1'") == 1


async def test_an_enroll_item_naming_a_taken_sourced_id_is_its_own_409(client, db):
    course = await create_course(client)
    a, b, c = [await create_student(client) for _ in range(3)]
    await client.post(
        f"/students/{a['id']}/courses", json={"course_id": course["id"], "sourced_id": "e-1"}
    )

    [taken, first, repeated] = await results(
        client,
        "/enrollments/batch",
        {"student_id": b["id"], "course_id": course["id"], "sourced_id": "e-1"},
        {"student_id": c["id"], "course_id": course["id"], "sourced_id": "e-2"},
        # The same run asks for e-2 again, for another student.
        {"student_id": b["id"], "course_id": course["id"], "sourced_id": "e-2"},
    )

    assert (taken["status"], taken["outcome"]) == (409, "sourced-id-taken")
    assert taken["body"]["detail"] == "an enrollment with sourced_id e-1 already exists"
    assert (first["status"], first["outcome"]) == (201, "enrolled")
    assert (repeated["status"], repeated["outcome"]) == (409, "sourced-id-taken")
    rows = await db.fetch("select student_id, sourced_id from student_courses order by student_id")
    assert [tuple(r) for r in rows] == [(a["id"], "e-1"), (c["id"], "e-2")]
    # The refused items took no seat.
    assert (await (await client.get(f"/courses/{course['id']}")).json())["enrolled"] == 2


@pytest.mark.parametrize(
    ("item", "fields"),
    [
        # two names for the student
        (
            {"student_id": 1, "student_sourced_id": "s-1", "course_id": 1},
            ["student_id", "student_sourced_id"],
        ),
        # two names for the course
        (
            {"student_id": 1, "course_code": "C", "course_sourced_id": "c-1"},
            ["course_code", "course_sourced_id"],
        ),
        # term_id qualifies a code, not a sourced_id
        ({"student_id": 1, "course_sourced_id": "c-1", "term_id": 1}, ["term_id"]),
        # a drop makes no enrollment: no sourced_id
        ({"action": "drop", "student_id": 1, "course_id": 1, "sourced_id": "e-1"}, ["sourced_id"]),
        # a bad sourced_id anywhere
        (
            {"student_sourced_id": "a b", "course_sourced_id": "", "sourced_id": 3},
            ["student_sourced_id", "course_sourced_id", "sourced_id"],
        ),
    ],
)
async def test_an_enroll_item_naming_things_wrongly_is_its_own_422(client, item, fields):
    [result] = await results(client, "/enrollments/batch", item)

    assert (result["status"], result["outcome"]) == (422, "invalid")
    assert sorted({e["field"] for e in result["body"]["errors"]}) == sorted(fields)
