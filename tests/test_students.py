"""/students: create, read, list, update and delete, checked against the database."""

from __future__ import annotations

from datetime import datetime

import pytest

from .api import create_course, create_student, enroll, problem, walk


def _is_rfc3339_with_offset(value: str) -> bool:
    return datetime.fromisoformat(value).utcoffset() is not None


async def test_create_returns_the_student_and_stores_it(client, db):
    response = await client.post(
        "/students", json={"name": "  Ada Lovelace \t", "email": "ada@example.org"}
    )

    assert response.status == 201
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) == {"id", "name", "email", "created_at", "sourced_id"}
    assert body["name"] == "Ada Lovelace"
    assert body["email"] == "ada@example.org"
    assert isinstance(body["id"], int) and body["id"] >= 1
    assert _is_rfc3339_with_offset(body["created_at"])
    assert response.headers["Location"] == f"/students/{body['id']}"

    row = await db.fetchrow(
        "select name, email, created_at from students where id = $1", body["id"]
    )
    assert row["name"] == "Ada Lovelace"
    assert row["email"] == "ada@example.org"
    assert row["created_at"] == datetime.fromisoformat(body["created_at"])


async def test_location_header_leads_to_the_new_student(client):
    response = await client.post("/students", json={"name": "Ada", "email": "ada@example.org"})
    created = await response.json()

    fetched = await client.get(response.headers["Location"])

    assert fetched.status == 200
    assert await fetched.json() == created


@pytest.mark.parametrize(
    "second_email",
    [
        "ada@example.org",  # the very same address
        "ADA@Example.ORG",  # differs only in letter case
        "  ada@example.org  ",  # the same after trimming
    ],
)
async def test_create_with_a_taken_email_is_409(client, db, second_email):
    await create_student(client, email="ada@example.org")

    response = await client.post("/students", json={"name": "Other", "email": second_email})

    assert response.status == 409
    body = await problem(response)
    assert body["type"] == "/problems/email-taken"
    assert await db.fetchval("select count(*) from students") == 1


async def test_get_returns_the_student(client):
    student = await create_student(client, name="Grace Hopper")

    response = await client.get(f"/students/{student['id']}")

    assert response.status == 200
    assert await response.json() == student


async def test_get_unknown_student_is_404(client):
    student = await create_student(client)

    response = await client.get(f"/students/{student['id'] + 1}")

    assert response.status == 404
    body = await problem(response)
    assert body["type"] == "/problems/not-found"
    assert str(student["id"] + 1) in body["detail"]


async def test_list_is_ordered_by_id(client):
    created = [await create_student(client) for _ in range(4)]

    response = await client.get("/students")

    assert response.status == 200
    page = await response.json()
    assert page == {"items": created, "next_cursor": None}
    assert "Link" not in response.headers


async def test_list_of_no_students_is_an_empty_page(client):
    response = await client.get("/students")

    assert response.status == 200
    assert await response.json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("count", "limit"),
    [
        (7, 2),  # several pages, the last one short
        (6, 3),  # the last page is exactly full
        (3, 1),  # one item per page
        (2, 500),  # one page, largest limit
    ],
)
async def test_pagination_walks_every_student_once(client, count, limit):
    created = [await create_student(client) for _ in range(count)]

    items = await walk(client, "/students", limit)

    assert items == created


async def test_next_link_points_at_the_next_page(client):
    created = [await create_student(client) for _ in range(3)]

    first = await client.get("/students", params={"limit": 2})
    page = await first.json()
    link = first.headers["Link"]
    assert link.startswith("</students?") and link.endswith('>; rel="next"')
    second = await client.get(link[1 : link.index(">")])

    assert page["items"] == created[:2]
    assert second.status == 200
    assert await second.json() == {"items": created[2:], "next_cursor": None}


async def test_pagination_skips_students_deleted_between_pages(client):
    created = [await create_student(client) for _ in range(4)]
    first = await (await client.get("/students", params={"limit": 2})).json()
    await client.delete(f"/students/{created[1]['id']}")

    rest = await client.get("/students", params={"limit": 2, "cursor": first["next_cursor"]})

    assert (await rest.json())["items"] == created[2:]


async def test_patch_name_changes_only_the_name(client, db):
    student = await create_student(client, name="Ada", email="ada@example.org")

    response = await client.patch(f"/students/{student['id']}", json={"name": "  Ada King  "})

    assert response.status == 200
    assert await response.json() == {**student, "name": "Ada King"}
    row = await db.fetchrow("select name, email from students where id = $1", student["id"])
    assert dict(row) == {"name": "Ada King", "email": "ada@example.org"}


async def test_patch_email_changes_only_the_email(client, db):
    student = await create_student(client, name="Ada", email="ada@example.org")

    response = await client.patch(
        f"/students/{student['id']}", json={"email": "countess@example.org"}
    )

    assert response.status == 200
    assert await response.json() == {**student, "email": "countess@example.org"}
    row = await db.fetchrow("select name, email from students where id = $1", student["id"])
    assert dict(row) == {"name": "Ada", "email": "countess@example.org"}


async def test_patch_both_fields(client):
    student = await create_student(client)

    response = await client.patch(
        f"/students/{student['id']}", json={"name": "New", "email": "new@example.org"}
    )

    assert response.status == 200
    assert await response.json() == {**student, "name": "New", "email": "new@example.org"}


async def test_patch_unknown_student_is_404(client, db):
    response = await client.patch("/students/12345", json={"name": "Nobody"})

    assert response.status == 404
    assert (await problem(response))["type"] == "/problems/not-found"
    assert await db.fetchval("select count(*) from students") == 0


@pytest.mark.parametrize(
    "taken",
    [
        "grace@example.org",  # exactly another student's email
        "GRACE@example.org",  # another student's email in other letter case
    ],
)
async def test_patch_to_an_email_of_another_student_is_409(client, db, taken):
    ada = await create_student(client, email="ada@example.org")
    await create_student(client, email="grace@example.org")

    response = await client.patch(f"/students/{ada['id']}", json={"email": taken})

    assert response.status == 409
    assert (await problem(response))["type"] == "/problems/email-taken"
    assert await db.fetchval("select email from students where id = $1", ada["id"]) == (
        "ada@example.org"
    )


async def test_patch_own_email_to_other_letter_case_is_allowed(client, db):
    student = await create_student(client, email="ada@example.org")

    response = await client.patch(f"/students/{student['id']}", json={"email": "Ada@Example.org"})

    assert response.status == 200
    assert (await response.json())["email"] == "Ada@Example.org"
    assert await db.fetchval("select email from students where id = $1", student["id"]) == (
        "Ada@Example.org"
    )


async def test_patch_with_empty_object_is_422(client, db):
    student = await create_student(client)

    response = await client.patch(f"/students/{student['id']}", json={})

    assert response.status == 422
    body = await problem(response)
    assert body["type"] == "/problems/validation-error"
    assert [e["field"] for e in body["errors"]] == ["body"]
    row = await db.fetchrow("select name, email from students where id = $1", student["id"])
    assert dict(row) == {"name": student["name"], "email": student["email"]}


async def test_delete_removes_the_student(client, db):
    student = await create_student(client)

    response = await client.delete(f"/students/{student['id']}")

    assert response.status == 204
    assert await response.read() == b""
    assert (await client.get(f"/students/{student['id']}")).status == 404
    assert await db.fetchval("select count(*) from students") == 0


async def test_delete_twice_is_404(client):
    student = await create_student(client)
    assert (await client.delete(f"/students/{student['id']}")).status == 204

    response = await client.delete(f"/students/{student['id']}")

    assert response.status == 404
    assert (await problem(response))["type"] == "/problems/not-found"


async def test_delete_keeps_other_students(client, db):
    gone, kept = await create_student(client), await create_student(client)

    await client.delete(f"/students/{gone['id']}")

    assert await db.fetchval("select array_agg(id) from students") == [kept["id"]]


async def test_delete_removes_the_students_enrollments(client, db):
    student, other = await create_student(client), await create_student(client)
    first, second = await create_course(client), await create_course(client)
    for course in (first, second):
        assert (await enroll(client, student["id"], course["id"])).status == 201
    assert (await enroll(client, other["id"], first["id"])).status == 201

    response = await client.delete(f"/students/{student['id']}")

    assert response.status == 204
    rows = await db.fetch("select student_id, course_id from student_courses")
    assert [tuple(r) for r in rows] == [(other["id"], first["id"])]
    # The courses themselves stay.
    assert await db.fetchval("select count(*) from courses") == 2
    assert (await client.get(f"/students/{student['id']}/courses")).status == 404
