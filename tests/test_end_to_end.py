"""The whole story, told through HTTP to the real app and checked in the database."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient


async def ok(response, status: int = 200) -> Any:
    assert response.status == status, await response.text()
    return await response.json() if status != 204 else None


async def ids(client: TestClient, path: str) -> list[int]:
    page = await ok(await client.get(path))
    assert page["next_cursor"] is None
    return [item["id"] for item in page["items"]]


async def enrollment_pairs(db) -> set[tuple[int, int]]:
    rows = await db.fetch("select student_id, course_id from student_courses")
    return {(r["student_id"], r["course_id"]) for r in rows}


async def test_students_courses_and_enrollments_from_start_to_end(client, db):
    # Two students and three courses, created the way a client would.
    ada = await ok(
        await client.post("/students", json={"name": " Ada Lovelace ", "email": "ada@example.org"}),
        201,
    )
    assert ada["name"] == "Ada Lovelace"
    alan = await ok(
        await client.post("/students", json={"name": "Alan Turing", "email": "alan@example.org"}),
        201,
    )
    maths = await ok(await client.post("/courses", json={"code": "MATH1", "title": "Maths"}), 201)
    logic = await ok(
        await client.post("/courses", json={"code": "LOG1", "title": "Logic", "capacity": 2}), 201
    )
    poetry = await ok(
        await client.post("/courses", json={"code": "POE1", "title": "Poetry", "capacity": 1}),
        201,
    )
    assert await ids(client, "/students") == [ada["id"], alan["id"]]
    assert await ids(client, "/courses") == [maths["id"], logic["id"], poetry["id"]]

    # Enroll: Ada takes all three, Alan takes maths and logic; poetry is then full.
    for student, course in [
        (ada, poetry),
        (ada, maths),
        (ada, logic),
        (alan, logic),
        (alan, maths),
    ]:
        response = await client.post(
            f"/students/{student['id']}/courses", json={"course_id": course["id"]}
        )
        enrollment = await ok(response, 201)
        assert response.headers["Location"] == f"/students/{student['id']}/courses/{course['id']}"
        assert enrollment["id"] == course["id"]
    full = await client.post(f"/students/{alan['id']}/courses", json={"course_id": poetry["id"]})
    assert full.status == 409
    retry = await client.post(f"/students/{ada['id']}/courses", json={"course_id": maths["id"]})
    assert (await ok(retry))["id"] == maths["id"]

    # Both directions agree, each in id order.
    assert await ids(client, f"/students/{ada['id']}/courses") == [
        maths["id"],
        logic["id"],
        poetry["id"],
    ]
    assert await ids(client, f"/students/{alan['id']}/courses") == [maths["id"], logic["id"]]
    assert await ids(client, f"/courses/{maths['id']}/students") == [ada["id"], alan["id"]]
    assert await ids(client, f"/courses/{logic['id']}/students") == [ada["id"], alan["id"]]
    assert await ids(client, f"/courses/{poetry['id']}/students") == [ada["id"]]
    assert len(await enrollment_pairs(db)) == 5

    # Ada leaves poetry, which frees its only seat for Alan.
    await ok(await client.delete(f"/students/{ada['id']}/courses/{poetry['id']}"), 204)
    gone = await client.get(f"/students/{ada['id']}/courses/{poetry['id']}")
    assert gone.status == 404
    assert await ids(client, f"/courses/{poetry['id']}/students") == []
    response = await client.post(
        f"/students/{alan['id']}/courses", json={"course_id": poetry["id"]}
    )
    await ok(response, 201)
    assert await enrollment_pairs(db) == {
        (ada["id"], maths["id"]),
        (ada["id"], logic["id"]),
        (alan["id"], maths["id"]),
        (alan["id"], logic["id"]),
        (alan["id"], poetry["id"]),
    }

    # Deleting a course takes its enrollments with it.
    await ok(await client.delete(f"/courses/{logic['id']}"), 204)
    assert (await client.get(f"/courses/{logic['id']}")).status == 404
    assert (await client.get(f"/courses/{logic['id']}/students")).status == 404
    assert await ids(client, f"/students/{ada['id']}/courses") == [maths["id"]]
    assert await ids(client, f"/students/{alan['id']}/courses") == [maths["id"], poetry["id"]]
    assert (await client.get(f"/students/{ada['id']}/courses/{logic['id']}")).status == 404
    logic_rows = "select count(*) from student_courses where course_id = $1"
    assert await db.fetchval(logic_rows, logic["id"]) == 0
    assert await db.fetchval("select count(*) from courses where id = $1", logic["id"]) == 0

    # Deleting a student takes theirs.
    await ok(await client.delete(f"/students/{alan['id']}"), 204)
    assert (await client.get(f"/students/{alan['id']}")).status == 404
    assert (await client.get(f"/students/{alan['id']}/courses")).status == 404
    assert await ids(client, f"/courses/{maths['id']}/students") == [ada["id"]]
    assert await ids(client, f"/courses/{poetry['id']}/students") == []
    alan_rows = "select count(*) from student_courses where student_id = $1"
    assert await db.fetchval(alan_rows, alan["id"]) == 0

    # What is left: Ada in maths; both remaining courses and Ada herself untouched.
    assert await enrollment_pairs(db) == {(ada["id"], maths["id"])}
    assert await ids(client, "/students") == [ada["id"]]
    assert await ids(client, "/courses") == [maths["id"], poetry["id"]]
    assert await ok(await client.get(f"/students/{ada['id']}")) == ada
