"""Enrollments: a student's courses, a course's students, and course capacity."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

import pytest

from tests.api import (
    COURSE_FIELDS,
    create_course,
    create_student,
    enroll,
    problem,
    walk,
)

ENROLLMENT_FIELDS = {*COURSE_FIELDS, "sourced_id", "enrolled_at"}
ENROLLED_STUDENT_FIELDS = {"id", "name", "email", "created_at", "sourced_id", "enrolled_at"}
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")

# Path segments that are not an id 1..2**63-1 in plain ASCII digits: each names no resource.
NOT_IDS = [
    "abc",  # not a number
    "0",  # below the smallest id
    "-1",  # negative
    "9223372036854775808",  # 2**63, one past the largest id
    "1.0",  # a decimal
    "+1",  # a sign
    "\u0663",  # ARABIC-INDIC DIGIT THREE: a digit to Python's int(), not to the contract
]


def timestamp(value: str) -> datetime:
    """Parse an RFC 3339 timestamp, insisting on an explicit offset."""
    assert RFC3339.fullmatch(value), value
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert parsed.utcoffset() is not None
    return parsed


async def rows(db, student_id: int | None = None, course_id: int | None = None) -> list[Any]:
    return await db.fetch(
        "select student_id, course_id, enrolled_at, sourced_id from student_courses"
        " where ($1::bigint is null or student_id = $1)"
        " and ($2::bigint is null or course_id = $2)"
        " order by student_id, course_id",
        student_id,
        course_id,
    )


def as_enrollment(
    course: dict[str, Any], enrollment: dict[str, Any], enrolled: int = 1
) -> dict[str, Any]:
    """The course as its creation answered it, now with `enrolled` students, then the
    enrollment's sourced_id and enrolled_at as the enroll answered them."""
    return {
        **course,
        "enrolled": enrolled,
        "sourced_id": enrollment["sourced_id"],
        "enrolled_at": enrollment["enrolled_at"],
    }


# POST /students/{id}/courses


async def test_enroll_creates_the_enrollment(client, db):
    student = await create_student(client)
    course = await create_course(client, capacity=30)

    response = await enroll(client, student["id"], course["id"])

    assert response.status == 201, await response.text()
    assert response.content_type == "application/json"
    assert response.headers["Location"] == f"/students/{student['id']}/courses/{course['id']}"
    body = await response.json()
    assert body.keys() == ENROLLMENT_FIELDS
    assert body == as_enrollment(course, body)
    assert timestamp(body["created_at"]) == timestamp(course["created_at"])
    enrolled_at = timestamp(body["enrolled_at"])
    # The enrollment's own sourced_id, assigned: not the course's.
    assert str(uuid.UUID(body["sourced_id"])) == body["sourced_id"] != course["sourced_id"]

    [row] = await rows(db)
    assert (row["student_id"], row["course_id"]) == (student["id"], course["id"])
    assert row["enrolled_at"] == enrolled_at
    assert row["sourced_id"] == body["sourced_id"]


async def test_location_of_a_new_enrollment_can_be_fetched(client):
    student = await create_student(client)
    course = await create_course(client)
    response = await enroll(client, student["id"], course["id"])
    created = await response.json()

    fetched = await client.get(response.headers["Location"])

    assert fetched.status == 200
    assert await fetched.json() == created


async def test_enrolling_again_returns_the_existing_enrollment(client, db):
    student = await create_student(client)
    course = await create_course(client)
    first = await (await enroll(client, student["id"], course["id"])).json()

    again = await enroll(client, student["id"], course["id"])

    assert again.status == 200, await again.text()
    assert again.content_type == "application/json"
    body = await again.json()
    assert body == first
    assert body["enrolled_at"] == first["enrolled_at"]
    assert len(await rows(db)) == 1


async def test_enroll_in_a_missing_course_is_404_naming_the_course(client, db):
    student = await create_student(client)
    missing = 888888

    response = await enroll(client, student["id"], missing)

    assert response.status == 404
    body = await problem(response)
    assert body["type"] == "/problems/not-found"
    assert f"course {missing}" in body["detail"]
    assert await rows(db) == []


async def test_enroll_of_a_missing_student_is_404_naming_the_student(client, db):
    course = await create_course(client)
    missing = 999999

    response = await enroll(client, missing, course["id"])

    assert response.status == 404
    body = await problem(response)
    assert body["type"] == "/problems/not-found"
    assert f"student {missing}" in body["detail"]
    assert "course" not in body["detail"]
    assert await rows(db) == []


async def test_enroll_with_student_and_course_missing_names_the_student(client, db):
    response = await enroll(client, 999999, 888888)

    assert response.status == 404
    body = await problem(response)
    assert "student 999999" in body["detail"]
    assert await rows(db) == []


@pytest.mark.parametrize(
    "raw_body",
    [
        "{}",  # course_id missing
        '{"course_id": "7"}',  # a string of digits is not an integer
        '{"course_id": 7.0}',  # an integral float is not an integer
        '{"course_id": 7.5}',  # a fractional float
        '{"course_id": true}',  # a boolean is not an integer
        '{"course_id": false}',  # the other boolean
        '{"course_id": null}',  # null is not an integer
        '{"course_id": 0}',  # below the smallest id
        '{"course_id": -1}',  # negative
        '{"course_id": 9223372036854775808}',  # 2**63, past the largest id
        '{"course_id": 1234567890123456789012345678901234567890}',  # 40 digits
        '{"course_id": [7]}',  # a list
        '{"course_id": {"id": 7}}',  # an object
    ],
)
async def test_enroll_with_an_invalid_course_id_is_422(client, db, raw_body):
    student = await create_student(client)
    # Courses 1..7 exist, so a parser that coerced "7", 7.0 or true would find one and enroll.
    ids = [(await create_course(client))["id"] for _ in range(7)]
    assert ids == [1, 2, 3, 4, 5, 6, 7]

    response = await client.post(
        f"/students/{student['id']}/courses",
        data=raw_body,
        headers={"Content-Type": "application/json"},
    )

    assert response.status == 422, await response.text()
    body = await problem(response)
    assert body["type"] == "/problems/validation-error"
    assert body["errors"][0]["field"] == "course_id"
    assert [e["field"] for e in body["errors"]] == ["course_id"]
    assert await rows(db) == []


async def test_enroll_with_an_unknown_field_is_422_naming_it(client, db):
    student = await create_student(client)
    course = await create_course(client)

    response = await client.post(
        f"/students/{student['id']}/courses", json={"course_id": course["id"], "courseId": 7}
    )

    assert response.status == 422
    body = await problem(response)
    assert [e["field"] for e in body["errors"]] == ["courseId"]
    assert await rows(db) == []


async def test_enroll_with_only_a_misspelt_field_names_both(client, db):
    student = await create_student(client)
    course = await create_course(client)

    response = await client.post(
        f"/students/{student['id']}/courses", json={"courseId": course["id"]}
    )

    assert response.status == 422
    body = await problem(response)
    assert {e["field"] for e in body["errors"]} == {"course_id", "courseId"}
    assert await rows(db) == []


async def test_enroll_into_a_full_course_is_409(client, db):
    course = await create_course(client, capacity=1)
    first, second = await create_student(client), await create_student(client)

    assert (await enroll(client, first["id"], course["id"])).status == 201
    response = await enroll(client, second["id"], course["id"])

    assert response.status == 409
    body = await problem(response)
    assert body["type"] == "/problems/course-full"
    assert f"course {course['id']}" in body["detail"]
    assert [r["student_id"] for r in await rows(db)] == [first["id"]]


async def test_retry_by_an_enrolled_student_of_a_full_course_is_200(client, db):
    course = await create_course(client, capacity=1)
    student = await create_student(client)
    first = await (await enroll(client, student["id"], course["id"])).json()

    retry = await enroll(client, student["id"], course["id"])

    assert retry.status == 200, await retry.text()
    assert await retry.json() == first
    assert len(await rows(db)) == 1


# GET /students/{id}/courses


async def test_list_a_students_courses_ordered_by_course_id(client):
    student, other = await create_student(client), await create_student(client)
    courses = [await create_course(client) for _ in range(5)]
    enrolled = {}
    # Enrolled out of id order; the list comes back in course id order.
    for course in (courses[3], courses[0], courses[2]):
        response = await enroll(client, student["id"], course["id"])
        enrolled[course["id"]] = await response.json()
    await enroll(client, other["id"], courses[1]["id"])

    response = await client.get(f"/students/{student['id']}/courses")

    assert response.status == 200
    assert response.content_type == "application/json"
    assert "Link" not in response.headers
    page = await response.json()
    assert page.keys() == {"items", "next_cursor"}
    assert page["next_cursor"] is None
    expected = [courses[0], courses[2], courses[3]]
    assert page["items"] == [as_enrollment(c, enrolled[c["id"]]) for c in expected]
    for item in page["items"]:
        assert item.keys() == ENROLLMENT_FIELDS
        timestamp(item["created_at"])
        timestamp(item["enrolled_at"])


async def test_a_student_with_no_courses_gets_an_empty_page(client):
    student = await create_student(client)
    await create_course(client)

    response = await client.get(f"/students/{student['id']}/courses")

    assert response.status == 200
    assert await response.json() == {"items": [], "next_cursor": None}


async def test_courses_of_an_unknown_student_is_404(client):
    response = await client.get("/students/999999/courses")

    assert response.status == 404
    body = await problem(response)
    assert body["type"] == "/problems/not-found"
    assert "student 999999" in body["detail"]


@pytest.mark.parametrize("student_id", NOT_IDS)
async def test_courses_of_a_non_id_is_404(client, student_id):
    await create_student(client)

    response = await client.get(f"/students/{student_id}/courses")

    assert response.status == 404
    await problem(response)


async def test_courses_of_a_student_page_by_page(client):
    student = await create_student(client)
    courses = [await create_course(client) for _ in range(7)]
    for course in reversed(courses):
        assert (await enroll(client, student["id"], course["id"])).status == 201
    path = f"/students/{student['id']}/courses"

    sizes = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        response = await client.get(path, params=params)
        assert response.status == 200
        page = await response.json()
        sizes.append(len(page["items"]))
        if page["next_cursor"] is None:
            assert "Link" not in response.headers
            break
        link = response.headers["Link"]
        assert link.startswith(f"<{path}?") and link.endswith('>; rel="next"'), link
        # The Link target is the next page, the same one the cursor leads to.
        via_link = await client.get(link[1 : link.index(">")])
        params = {"limit": 3, "cursor": page["next_cursor"]}
        via_cursor = await client.get(path, params=params)
        assert await via_link.json() == await via_cursor.json()

    assert sizes == [3, 3, 1]
    walked = await walk(client, path, 3)
    assert [c["id"] for c in walked] == [c["id"] for c in courses]


@pytest.mark.parametrize(
    "limit",
    [
        "0",  # below the minimum
        "501",  # above the maximum
        "x",  # not a number
        "-1",  # negative
        "2.5",  # not an integer
        "",  # empty
    ],
)
async def test_courses_of_a_student_with_a_bad_limit_is_422(client, limit):
    student = await create_student(client)

    response = await client.get(f"/students/{student['id']}/courses", params={"limit": limit})

    assert response.status == 422
    body = await problem(response)
    assert [e["field"] for e in body["errors"]] == ["limit"]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",  # not one of ours
        "!!!",  # not base64url
        "djE6YWJj",  # base64url of "v1:abc": right prefix, no id
        "djE6MA",  # base64url of "v1:0": an id out of range
        "",  # empty
    ],
)
async def test_courses_of_a_student_with_a_bad_cursor_is_422(client, cursor):
    student = await create_student(client)

    response = await client.get(f"/students/{student['id']}/courses", params={"cursor": cursor})

    assert response.status == 422
    body = await problem(response)
    assert [e["field"] for e in body["errors"]] == ["cursor"]


# GET and DELETE /students/{id}/courses/{id}


async def test_get_one_enrollment(client):
    student = await create_student(client)
    course = await create_course(client)
    created = await (await enroll(client, student["id"], course["id"])).json()

    response = await client.get(f"/students/{student['id']}/courses/{course['id']}")

    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == created


async def test_get_an_enrollment_that_does_not_exist_is_404(client):
    student = await create_student(client)
    course = await create_course(client)

    response = await client.get(f"/students/{student['id']}/courses/{course['id']}")

    assert response.status == 404
    body = await problem(response)
    assert body["type"] == "/problems/not-found"


@pytest.mark.parametrize("course_id", NOT_IDS)
async def test_get_an_enrollment_of_a_non_id_course_is_404(client, course_id):
    student = await create_student(client)

    response = await client.get(f"/students/{student['id']}/courses/{course_id}")

    assert response.status == 404
    await problem(response)


async def test_unenroll(client, db):
    student = await create_student(client)
    course, kept = await create_course(client), await create_course(client)
    await enroll(client, student["id"], course["id"])
    await enroll(client, student["id"], kept["id"])
    path = f"/students/{student['id']}/courses/{course['id']}"

    response = await client.delete(path)

    assert response.status == 204
    assert await response.read() == b""
    assert (await client.get(path)).status == 404
    again = await client.delete(path)
    assert again.status == 404
    await problem(again)
    assert [r["course_id"] for r in await rows(db)] == [kept["id"]]
    # The course itself stays.
    assert (await client.get(f"/courses/{course['id']}")).status == 200


async def test_unenroll_when_not_enrolled_is_404(client, db):
    student = await create_student(client)
    course = await create_course(client)

    response = await client.delete(f"/students/{student['id']}/courses/{course['id']}")

    assert response.status == 404
    assert (await problem(response))["type"] == "/problems/not-found"


# GET /courses/{id}/students


async def test_list_a_courses_students_ordered_by_student_id(client):
    course, other = await create_course(client), await create_course(client)
    students = [await create_student(client) for _ in range(4)]
    enrolled = {}
    for student in (students[2], students[0], students[3]):
        response = await enroll(client, student["id"], course["id"])
        enrolled[student["id"]] = await response.json()
    await enroll(client, students[1]["id"], other["id"])

    response = await client.get(f"/courses/{course['id']}/students")

    assert response.status == 200
    assert response.content_type == "application/json"
    page = await response.json()
    assert page["next_cursor"] is None
    expected = [students[0], students[2], students[3]]
    # The student's fields, then the enrollment's sourced_id and enrolled_at.
    assert page["items"] == [
        {
            **s,
            "sourced_id": enrolled[s["id"]]["sourced_id"],
            "enrolled_at": enrolled[s["id"]]["enrolled_at"],
        }
        for s in expected
    ]
    for item in page["items"]:
        assert item.keys() == ENROLLED_STUDENT_FIELDS
        timestamp(item["enrolled_at"])


async def test_a_course_with_no_students_gets_an_empty_page(client):
    course = await create_course(client)

    response = await client.get(f"/courses/{course['id']}/students")

    assert response.status == 200
    assert await response.json() == {"items": [], "next_cursor": None}


async def test_students_of_an_unknown_course_is_404(client):
    response = await client.get("/courses/888888/students")

    assert response.status == 404
    body = await problem(response)
    assert body["type"] == "/problems/not-found"
    assert "course 888888" in body["detail"]


@pytest.mark.parametrize("course_id", NOT_IDS)
async def test_students_of_a_non_id_course_is_404(client, course_id):
    await create_course(client)

    response = await client.get(f"/courses/{course_id}/students")

    assert response.status == 404
    await problem(response)


async def test_students_of_a_course_page_by_page(client):
    course = await create_course(client)
    students = [await create_student(client) for _ in range(5)]
    for student in reversed(students):
        await enroll(client, student["id"], course["id"])
    path = f"/courses/{course['id']}/students"

    first = await client.get(path, params={"limit": 2})
    assert first.status == 200
    assert 'rel="next"' in first.headers["Link"]
    assert len((await first.json())["items"]) == 2

    walked = await walk(client, path, 2)
    assert [s["id"] for s in walked] == [s["id"] for s in students]


async def course_with_students(client, count: int) -> str:
    """The path of a new course's students, `count` of them enrolled."""
    course = await create_course(client)
    for _ in range(count):
        await enroll(client, (await create_student(client))["id"], course["id"])
    return f"/courses/{course['id']}/students"


async def test_next_link_is_the_path_the_limit_and_the_cursor(client):
    path = await course_with_students(client, 3)

    response = await client.get(f"{path}?limit=2")

    cursor = (await response.json())["next_cursor"]
    assert response.headers["Link"] == f'<{path}?limit=2&cursor={cursor}>; rel="next"'


@pytest.mark.parametrize(
    "query",
    [
        "limit=02",  # a leading zero
        "limit=2&",  # an empty parameter after it
    ],
)
async def test_a_limit_spelled_another_way_gives_the_same_page_and_link(client, query):
    path = await course_with_students(client, 3)

    plain = await client.get(f"{path}?limit=2")
    spelled = await client.get(f"{path}?{query}")

    assert spelled.status == 200
    assert await spelled.json() == await plain.json()
    assert spelled.headers["Link"] == plain.headers["Link"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),  # below the minimum
        ({"limit": "501"}, "limit"),  # above the maximum
        ({"cursor": "garbage"}, "cursor"),  # not a cursor from this API
    ],
)
async def test_students_of_a_course_with_bad_paging_is_422(client, params, field):
    course = await create_course(client)

    response = await client.get(f"/courses/{course['id']}/students", params=params)

    assert response.status == 422
    assert [e["field"] for e in (await problem(response))["errors"]] == [field]


# PATCH /courses/{id} capacity against current enrollments


async def test_capacity_cannot_go_below_the_enrolled_count(client, db):
    course = await create_course(client)
    for _ in range(3):
        student = await create_student(client)
        assert (await enroll(client, student["id"], course["id"])).status == 201

    response = await client.patch(f"/courses/{course['id']}", json={"capacity": 2})

    assert response.status == 409
    body = await problem(response)
    assert body["type"] == "/problems/capacity-below-enrollments"
    assert await db.fetchval("select capacity from courses where id = $1", course["id"]) is None
    assert len(await rows(db, course_id=course["id"])) == 3


async def test_capacity_equal_to_the_enrolled_count_then_null_lifts_it(client, db):
    course = await create_course(client)
    for _ in range(3):
        student = await create_student(client)
        assert (await enroll(client, student["id"], course["id"])).status == 201
    late = await create_student(client)

    response = await client.patch(f"/courses/{course['id']}", json={"capacity": 3})
    assert response.status == 200
    assert (await response.json())["capacity"] == 3
    full = await enroll(client, late["id"], course["id"])
    assert full.status == 409
    assert (await problem(full))["type"] == "/problems/course-full"

    response = await client.patch(f"/courses/{course['id']}", json={"capacity": None})
    assert response.status == 200
    assert (await response.json())["capacity"] is None
    assert await db.fetchval("select capacity from courses where id = $1", course["id"]) is None

    response = await enroll(client, late["id"], course["id"])
    assert response.status == 201
    assert (await response.json())["capacity"] is None
    assert len(await rows(db, course_id=course["id"])) == 4
