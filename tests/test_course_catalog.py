"""/courses: create, read, list, update and delete, checked against the database."""

from __future__ import annotations

from datetime import datetime

import pytest

from .api import COURSE_BODY, create_course, create_student, enroll, problem, walk


async def test_create_with_capacity(client, db):
    response = await client.post(
        "/courses", json={"code": " CS101 ", "title": "  Programming  ", "capacity": 30}
    )

    assert response.status == 201
    assert response.content_type == "application/json"
    body = await response.json()
    assert list(body) == COURSE_BODY
    assert body["code"] == "CS101"
    assert body["title"] == "Programming"
    assert body["capacity"] == 30
    assert datetime.fromisoformat(body["created_at"]).utcoffset() is not None
    assert response.headers["Location"] == f"/courses/{body['id']}"

    row = await db.fetchrow(
        "select code, title, capacity, created_at from courses where id = $1", body["id"]
    )
    assert row["code"] == "CS101"
    assert row["title"] == "Programming"
    assert row["capacity"] == 30
    assert row["created_at"] == datetime.fromisoformat(body["created_at"])


@pytest.mark.parametrize(
    "extra",
    [
        {},  # capacity absent
        {"capacity": None},  # capacity explicitly null
    ],
)
async def test_create_without_capacity_means_no_limit(client, db, extra):
    response = await client.post("/courses", json={"code": "CS102", "title": "Data", **extra})

    assert response.status == 201
    body = await response.json()
    assert "capacity" in body and body["capacity"] is None
    assert await db.fetchval("select capacity from courses where id = $1", body["id"]) is None


async def test_location_header_leads_to_the_new_course(client):
    response = await client.post("/courses", json={"code": "CS1", "title": "One"})
    created = await response.json()

    fetched = await client.get(response.headers["Location"])

    assert fetched.status == 200
    assert await fetched.json() == created


@pytest.mark.parametrize(
    "second_code",
    [
        "CS101",  # the very same code
        "cs101",  # differs only in letter case
        "Cs101",  # mixed case
        " CS101 ",  # the same after trimming
    ],
)
async def test_create_with_a_taken_code_is_409(client, db, second_code):
    await create_course(client, code="CS101")

    response = await client.post("/courses", json={"code": second_code, "title": "Other"})

    assert response.status == 409
    assert (await problem(response))["type"] == "/problems/code-taken"
    assert await db.fetchval("select count(*) from courses") == 1


async def test_get_returns_the_course(client):
    course = await create_course(client, capacity=5)

    response = await client.get(f"/courses/{course['id']}")

    assert response.status == 200
    assert await response.json() == course


async def test_get_unknown_course_is_404(client):
    course = await create_course(client)

    response = await client.get(f"/courses/{course['id'] + 1}")

    assert response.status == 404
    body = await problem(response)
    assert body["type"] == "/problems/not-found"
    assert str(course["id"] + 1) in body["detail"]


async def test_list_is_ordered_by_id(client):
    created = [await create_course(client) for _ in range(4)]

    response = await client.get("/courses")

    assert response.status == 200
    assert await response.json() == {"items": created, "next_cursor": None}
    assert "Link" not in response.headers


async def test_list_of_no_courses_is_an_empty_page(client):
    response = await client.get("/courses")

    assert response.status == 200
    assert await response.json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("count", "limit"),
    [
        (7, 2),  # several pages, the last one short
        (6, 3),  # the last page is exactly full
        (3, 1),  # one item per page
    ],
)
async def test_pagination_walks_every_course_once(client, count, limit):
    created = [await create_course(client) for _ in range(count)]

    items = await walk(client, "/courses", limit)

    assert items == created


async def test_next_link_points_at_the_next_page(client):
    created = [await create_course(client) for _ in range(3)]

    first = await client.get("/courses", params={"limit": 2})
    link = first.headers["Link"]
    assert link.startswith("</courses?") and link.endswith('>; rel="next"')
    second = await client.get(link[1 : link.index(">")])

    assert (await first.json())["items"] == created[:2]
    assert await second.json() == {"items": created[2:], "next_cursor": None}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"code": "MATH1"}, {"code": "MATH1"}),  # code only
        ({"title": "  Linear Algebra "}, {"title": "Linear Algebra"}),  # title only, trimmed
        ({"capacity": 50}, {"capacity": 50}),  # raise the limit
        ({"capacity": None}, {"capacity": None}),  # null removes the limit
        (
            {"code": "M2", "title": "T", "capacity": 1},
            {"code": "M2", "title": "T", "capacity": 1},
        ),  # every field at once
    ],
)
async def test_patch_changes_only_the_given_fields(client, db, change, expected):
    course = await create_course(client, code="CS101", title="Programming", capacity=10)

    response = await client.patch(f"/courses/{course['id']}", json=change)

    assert response.status == 200
    assert await response.json() == {**course, **expected}
    row = await db.fetchrow("select code, title, capacity from courses where id = $1", course["id"])
    assert dict(row) == {
        "code": course["code"],
        "title": course["title"],
        "capacity": course["capacity"],
        **expected,
    }


async def test_patch_without_capacity_keeps_it(client):
    course = await create_course(client, capacity=10)

    response = await client.patch(f"/courses/{course['id']}", json={"title": "Renamed"})

    assert (await response.json())["capacity"] == 10


async def test_patch_capacity_on_unlimited_course(client):
    course = await create_course(client)

    response = await client.patch(f"/courses/{course['id']}", json={"capacity": 3})

    assert response.status == 200
    assert (await response.json())["capacity"] == 3


async def test_patch_unknown_course_is_404(client):
    response = await client.patch("/courses/777", json={"title": "Nothing"})

    assert response.status == 404
    assert (await problem(response))["type"] == "/problems/not-found"


@pytest.mark.parametrize(
    "taken",
    [
        "MATH1",  # exactly another course's code
        "math1",  # another course's code in other letter case
    ],
)
async def test_patch_to_a_code_of_another_course_is_409(client, db, taken):
    course = await create_course(client, code="CS101")
    await create_course(client, code="MATH1")

    response = await client.patch(f"/courses/{course['id']}", json={"code": taken})

    assert response.status == 409
    assert (await problem(response))["type"] == "/problems/code-taken"
    assert await db.fetchval("select code from courses where id = $1", course["id"]) == "CS101"


async def test_patch_own_code_to_other_letter_case_is_allowed(client, db):
    course = await create_course(client, code="CS101")

    response = await client.patch(f"/courses/{course['id']}", json={"code": "cs101"})

    assert response.status == 200
    assert (await response.json())["code"] == "cs101"
    assert await db.fetchval("select code from courses where id = $1", course["id"]) == "cs101"


async def test_patch_capacity_below_enrollments_is_409(client, db):
    course = await create_course(client, capacity=5)
    for _ in range(2):
        student = await create_student(client)
        assert (await enroll(client, student["id"], course["id"])).status == 201

    too_low = await client.patch(f"/courses/{course['id']}", json={"capacity": 1})
    exact = await client.patch(f"/courses/{course['id']}", json={"capacity": 2})

    assert too_low.status == 409
    assert (await problem(too_low))["type"] == "/problems/capacity-below-enrollments"
    assert exact.status == 200
    assert await db.fetchval("select capacity from courses where id = $1", course["id"]) == 2


async def test_patch_with_empty_object_is_422(client):
    course = await create_course(client)

    response = await client.patch(f"/courses/{course['id']}", json={})

    assert response.status == 422
    body = await problem(response)
    assert [e["field"] for e in body["errors"]] == ["body"]


async def test_delete_removes_the_course(client, db):
    course = await create_course(client)

    response = await client.delete(f"/courses/{course['id']}")

    assert response.status == 204
    assert await response.read() == b""
    assert (await client.get(f"/courses/{course['id']}")).status == 404
    assert await db.fetchval("select count(*) from courses") == 0


async def test_delete_twice_is_404(client):
    course = await create_course(client)
    assert (await client.delete(f"/courses/{course['id']}")).status == 204

    response = await client.delete(f"/courses/{course['id']}")

    assert response.status == 404
    assert (await problem(response))["type"] == "/problems/not-found"


async def test_delete_removes_the_courses_enrollments(client, db):
    student = await create_student(client)
    gone, kept = await create_course(client), await create_course(client)
    for course in (gone, kept):
        assert (await enroll(client, student["id"], course["id"])).status == 201

    response = await client.delete(f"/courses/{gone['id']}")

    assert response.status == 204
    rows = await db.fetch("select student_id, course_id from student_courses")
    assert [tuple(r) for r in rows] == [(student["id"], kept["id"])]
    assert await db.fetchval("select count(*) from students") == 1
