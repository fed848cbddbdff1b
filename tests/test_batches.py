"""Batches: POST /enrollments/batch, /students/batch and /courses/batch.

The main tests run the same operations twice, on two fresh databases: as one
batch on one, as single requests on the other (email and code references
looked up first, as a client would), and find the same answers and the same
final state, events included.
"""

from __future__ import annotations

import asyncio
import io
import json
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.config import Config
from service.keys import CONFIG

from .api import problem

TIMESTAMPS = {"created_at", "enrolled_at", "waitlisted_at"}


@pytest.fixture
async def twin(pg_server, template_db, aiohttp_client) -> AsyncIterator[tuple[TestClient, str]]:
    """A second app on a second fresh database, cloned from the template like `client`'s."""
    name = f"enrollment_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_server.admin_url)
    try:
        await admin.execute(f'create database "{name}" template "{template_db}"')
        url = pg_server.url_for(name)
        config = Config(database_url=url, pool_min_size=1, pool_max_size=10, workers=1)
        other = await aiohttp_client(create_app(config))
        try:
            yield other, url
        finally:
            await other.close()  # before its database goes
    finally:
        await admin.execute(f'drop database if exists "{name}" with (force)')
        await admin.close()


def untimed(value: Any) -> Any:
    """`value` with every timestamp and assigned sourced_id (a UUID) replaced: they differ
    from one database to the other."""
    if isinstance(value, dict):
        return {
            k: "<at>" if k in TIMESTAMPS else "<uuid>" if assigned(k, v) else untimed(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [untimed(v) for v in value]
    return value


def assigned(key: str, value: Any) -> bool:
    """Whether this is a sourced_id the database assigned (a UUID)."""
    if key != "sourced_id":
        return False
    try:
        return str(uuid.UUID(value)) == value
    except (TypeError, ValueError):
        return False


async def answer(response) -> tuple[int, Any]:
    body = await response.json(content_type=None) if response.status != 204 else None
    return response.status, body


def missing(detail: str) -> tuple[int, dict]:
    """The 404 of a reference by email or code that names nothing."""
    return 404, {
        "type": "/problems/not-found",
        "title": "Not Found",
        "status": 404,
        "detail": detail,
    }


async def lookup(client: TestClient, collection: str, key: str, value: str) -> dict | None:
    """The student with that email or the course with that code, any letter case, as
    a client finds them (GET /students?email= is not on every instance: the row's id
    is read from the database, the resource through the API)."""
    sql = {
        ("students", "email"): "select id from students where fold_case(email) = fold_case($1)",
        ("courses", "code"): "select id from courses where fold_case(code) = fold_case($1)",
    }[collection, key]
    conn = await asyncpg.connect(client.app[CONFIG].database_url)
    try:
        found = await conn.fetchval(sql, value)
    finally:
        await conn.close()
    if found is None:
        return None
    response = await client.get(f"/{collection}/{found}")
    assert response.status == 200, await response.text()
    return await response.json()


async def single_enrollment(client: TestClient, item: dict) -> tuple[int, Any]:
    """What the single requests answer for one enrollment item."""
    student_id, course_id = item.get("student_id"), item.get("course_id")
    if "student_email" in item:
        found = await lookup(client, "students", "email", item["student_email"])
        if found is None:
            return missing(f"no student has email {item['student_email']}")
        student_id = found["id"]
    if "course_code" in item:
        found = await lookup(client, "courses", "code", item["course_code"])
        if found is None:
            return missing(f"no course has code {item['course_code']}")
        course_id = found["id"]
    if item.get("action") == "drop":
        return await answer(await client.delete(f"/students/{student_id}/courses/{course_id}"))
    body = {k: v for k, v in item.items() if k in ("course_id", "waitlist")}
    body["course_id"] = course_id if "course_code" in item else item.get("course_id")
    return await answer(await client.post(f"/students/{student_id}/courses", json=body))


async def single_student(client: TestClient, item: dict) -> tuple[int, Any]:
    found = None
    if isinstance(item.get("email"), str) and set(item) == {"name", "email"}:
        found = await lookup(client, "students", "email", item["email"].strip())
    if found is None:
        return await answer(await client.post("/students", json=item))
    return await answer(await client.patch(f"/students/{found['id']}", json={"name": item["name"]}))


async def single_course(client: TestClient, item: dict) -> tuple[int, Any]:
    found = None
    if isinstance(item.get("code"), str):
        found = await lookup(client, "courses", "code", item["code"].strip())
    if found is None:
        return await answer(await client.post("/courses", json=item))
    change = {k: v for k, v in item.items() if k != "code"}
    return await answer(await client.patch(f"/courses/{found['id']}", json=change))


async def batch(client: TestClient, path: str, items: list[dict]) -> list[dict]:
    response = await client.post(path, json={"items": items})
    assert response.status == 200, await response.text()
    assert response.content_type == "application/json"
    results = (await response.json())["results"]
    assert len(results) == len(items)
    for result in results:
        assert list(result) == ["status", "outcome", "body"]
    return results


async def state(url: str) -> dict[str, list]:
    """Everything the API shows, and the events' types, subjects, actors and data."""
    conn = await asyncpg.connect(url)
    try:
        queries = {
            "students": "select id, name, email from students order by id",
            "courses": "select id, code, title, capacity, waitlist_capacity, enrolled,"
            " waitlisted from courses order by id",
            "enrollments": "select student_id, course_id from student_courses"
            " order by student_id, course_id",
            "waitlists": "select student_id, course_id from course_waitlist order by course_id, seq",
            "events": "select type, actor, student_id, course_id, data::text from events order by id",
        }
        return {k: [tuple(r) for r in await conn.fetch(q)] for k, q in queries.items()}
    finally:
        await conn.close()


async def setup_catalog(client: TestClient) -> None:
    """The same students and courses, made by single requests, on either database."""
    for name, email in [
        ("One", "one@example.org"),
        ("Two", "two@example.org"),
        ("José", "José@Example.org"),
        ("Four", "four@example.org"),
        ("Five", "five@example.org"),
    ]:
        response = await client.post("/students", json={"name": name, "email": email})
        assert response.status == 201, await response.text()
    for body in [
        {"code": "Ärzte-1", "title": "Medicine", "capacity": 1, "waitlist_capacity": 2},
        {"code": "B2", "title": "Two seats", "capacity": 2},
        {"code": "OPEN", "title": "No limit"},
    ]:
        response = await client.post("/courses", json=body)
        assert response.status == 201, await response.text()


# Students 1..5 (3 is José@Example.org), courses 1 (Ärzte-1: 1 seat, 2 may
# wait), 2 (B2: 2 seats, no waitlist), 3 (OPEN: no limit).
ENROLLMENTS = [
    {"student_id": 1, "course_id": 1},  # the last seat: 201
    {"student_id": 2, "course_id": 1},  # full, no waitlist asked: course-full
    {"student_id": 2, "course_id": 1, "waitlist": True},  # waitlisted, position 1
    {"student_email": "JOSÉ@example.org", "course_id": 1, "waitlist": True},  # other case
    {"student_id": 4, "course_code": "ärzte-1", "waitlist": True},  # waitlist-full
    {"student_id": 2, "course_id": 1},  # already waiting, whatever waitlist says
    {"student_id": 1, "course_id": 1, "waitlist": True},  # already enrolled: 200
    {"action": "drop", "student_id": 1, "course_id": 1},  # 204, student 2 promoted
    {"action": "drop", "student_id": 1, "course_id": 1},  # not enrolled any more
    {"student_id": 2, "course_code": "ÄRZTE-1"},  # enrolled by the promotion: 200
    {"student_email": "josé@EXAMPLE.ORG", "course_code": "Ärzte-1"},  # waiting, position 1 now
    {"student_id": 4, "course_id": 1, "waitlist": True},  # room in the queue again
    {"student_id": 5, "course_id": 2},
    {"student_id": 4, "course_id": 2},  # the last seat of B2
    {"student_id": 3, "course_id": 2, "waitlist": True},  # B2 has no waitlist: course-full
    {"student_id": 5, "course_id": 3},
    {"student_id": 5, "course_id": 3},  # a duplicate inside the batch: 200
    {"student_id": 999, "course_id": 1},  # unknown student
    {"student_id": 1, "course_id": 999},  # unknown course
    {"student_email": "nobody@example.org", "course_id": 3},  # unknown email
    {"student_id": 1, "course_code": "NOPE"},  # unknown code
    {"action": "drop", "student_email": "nobody@example.org", "course_id": 3},
    {"student_id": 1, "course_id": "3"},  # a string is not an integer: 422
    {"student_id": 1, "course_id": 3, "waitlist": "yes"},  # not a boolean: 422
    {"student_id": 1, "course_id": 0},  # out of range: 422
    {"action": "drop", "student_email": "FIVE@example.org", "course_code": "b2"},  # 204
    {"student_id": 3, "course_id": 2},  # the seat five freed
    {"action": "drop", "student_id": 1, "course_id": 2},  # never enrolled: 404
]
ENROLLMENT_OUTCOMES = [
    "enrolled",
    "course-full",
    "waitlisted",
    "waitlisted",
    "waitlist-full",
    "already-waiting",
    "already-enrolled",
    "dropped",
    "not-enrolled",
    "already-enrolled",
    "already-waiting",
    "waitlisted",
    "enrolled",
    "enrolled",
    "course-full",
    "enrolled",
    "already-enrolled",
    "student-not-found",
    "course-not-found",
    "student-not-found",
    "course-not-found",
    "student-not-found",
    "invalid",
    "invalid",
    "invalid",
    "dropped",
    "enrolled",
    "not-enrolled",
]


async def test_an_enrollment_batch_answers_and_changes_what_single_requests_do(
    client, database_url, twin
):
    singles, singles_url = twin
    await setup_catalog(client)
    await setup_catalog(singles)

    results = await batch(client, "/enrollments/batch", ENROLLMENTS)
    expected = [await single_enrollment(singles, item) for item in ENROLLMENTS]

    assert [r["outcome"] for r in results] == ENROLLMENT_OUTCOMES
    assert [(r["status"], untimed(r["body"])) for r in results] == [
        (status, untimed(body)) for status, body in expected
    ]
    assert await state(database_url) == await state(singles_url)


async def long_queues(url: str, seed: int) -> None:
    """On either database alike: LONG (1 seat, 3,000 waiting, in no id order) and SHORT
    (1 seat, 300 of them waiting too), and 200 students waiting for nothing."""
    queue = list(range(2, 3_002))
    random.Random(seed).shuffle(queue)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "insert into students (name, email)"
            " select 'Student ' || n, 'student' || n || '@example.org'"
            " from generate_series(1, 3200) n"
        )
        await conn.execute(
            "insert into courses (code, title, capacity, waitlist_capacity)"
            " values ('LONG', 'Long queue', 1, 100000), ('SHORT', 'Short queue', 1, 1000)"
        )
        await conn.execute(
            "insert into student_courses (student_id, course_id) values (1, 1), (1, 2)"
        )
        for course, students in ((1, queue), (2, queue[::10])):
            await conn.execute(
                "insert into course_waitlist (student_id, course_id)"
                " select t.s, $2 from unnest($1::bigint[]) with ordinality as t (s, k)"
                " order by t.k",
                students,
                course,
            )
    finally:
        await conn.close()


async def test_a_batch_of_1000_against_a_long_queue_answers_the_single_requests_positions(
    client, database_url, twin
):
    singles, singles_url = twin
    await long_queues(database_url, seed=3)
    await long_queues(singles_url, seed=3)
    rng = random.Random(5)
    waiting = list(range(2, 3_002))
    newcomers = list(range(3_002, 3_201))
    items = [{"student_id": s, "course_id": 1} for s in rng.sample(waiting, 400)]
    # Newcomers join the back, and ask again: their positions come after everyone's.
    items += [{"student_id": s, "course_id": 1, "waitlist": True} for s in newcomers[:100]]
    items += [{"student_id": s, "course_id": 1} for s in rng.sample(newcomers[:100], 50)]
    # Two queues in turn: each switch reads the other queue again.
    for s in rng.sample(waiting[::10], 100):
        items += [{"student_id": s, "course_id": 2}, {"student_id": s, "course_id": 1}]
    # A drop promotes the head: everyone after it moves up one place.
    items.append({"action": "drop", "student_id": 1, "course_id": 1})
    items += [{"student_id": s, "course_id": 1} for s in rng.sample(waiting, 249)]
    assert len(items) == 1000

    results = await batch(client, "/enrollments/batch", items)
    expected = [await single_enrollment(singles, item) for item in items]

    assert [(r["status"], untimed(r["body"])) for r in results] == [
        (status, untimed(body)) for status, body in expected
    ]
    positions = [r["body"]["position"] for r in results if r["outcome"] == "already-waiting"]
    assert len(positions) > 800
    assert max(positions) > 2_900
    assert await state(database_url) == await state(singles_url)


async def test_a_result_carries_the_single_requests_timestamps(client):
    await setup_catalog(client)
    enrolled, waitlisted = await batch(
        client,
        "/enrollments/batch",
        [{"student_id": 1, "course_id": 1}, {"student_id": 2, "course_id": 1, "waitlist": True}],
    )

    seat = await client.get("/students/1/courses/1")
    place = await client.get("/students/2/waitlist/1")
    # The counts are those as of the item: the seat was taken before anyone waited.
    assert enrolled["body"] == {**await seat.json(), "waitlisted": 0}
    assert waitlisted["body"] == await place.json()
    assert waitlisted["body"]["position"] == 1


STUDENTS = [
    {"name": "Ada", "email": "ada@example.org"},  # created
    {"name": "Ada King", "email": "ADA@example.org"},  # the same email: renamed
    {"name": "Ada King", "email": "ada@EXAMPLE.org"},  # unchanged
    {"name": "Zoë", "email": "zoë@example.org"},
    {"name": "Zoe", "email": "ZOË@example.org"},  # Unicode letter case: the same student
    {"name": "José M.", "email": "josé@example.org"},  # one of the catalog's
    {"name": "", "email": "x@example.org"},  # empty name: 422
    {"name": "Bo", "email": "no-at-sign"},  # 422
    {"name": "Bo", "email": "bo@example.org", "age": 3},  # unknown field: 422
    {"name": " Bo\n", "email": " bo@example.org "},  # trimmed, created
]
STUDENT_OUTCOMES = [
    "created",
    "updated",
    "unchanged",
    "created",
    "updated",
    "updated",
    "invalid",
    "invalid",
    "invalid",
    "created",
]


async def test_a_student_batch_answers_and_changes_what_single_requests_do(
    client, database_url, twin
):
    singles, singles_url = twin
    await setup_catalog(client)
    await setup_catalog(singles)

    results = await batch(client, "/students/batch", STUDENTS)
    expected = [await single_student(singles, item) for item in STUDENTS]

    assert [r["outcome"] for r in results] == STUDENT_OUTCOMES
    assert [(r["status"], untimed(r["body"])) for r in results] == [
        (status, untimed(body)) for status, body in expected
    ]
    assert await state(database_url) == await state(singles_url)


COURSES = [
    {"code": "NEW-1", "title": "New"},  # created, no limit, no waitlist
    {"code": "new-1", "title": "New", "capacity": 10},  # updated: capacity set
    {"code": "NEW-1", "title": "New"},  # capacity absent: kept, unchanged
    {"code": "New-1", "title": "New", "capacity": None},  # back to no limit
    {"code": "b2", "title": "Two seats", "capacity": 1},  # below the 2 enrolled: 409
    {"code": "ÄRZTE-1", "title": "Medicine", "capacity": 2},  # raised: the head is promoted
    {"code": "ärzte-1", "title": "Medicine", "waitlist_capacity": 0},  # below the 1 waiting
    # Both below: capacity is named, as PATCH does (the check constraints' order).
    {"code": "ärzte-1", "title": "Medicine", "capacity": 1, "waitlist_capacity": 0},
    {"code": "OPEN", "title": "Still open", "waitlist_capacity": 5},  # updated
    {"code": "OPEN", "title": "Open", "enrolled": 3},  # read-only: 422
    {"code": "C 1", "title": "Space"},  # white space in a code: 422
    {"code": "Ωmega", "title": "Last", "capacity": 1, "waitlist_capacity": 1},
]
COURSE_OUTCOMES = [
    "created",
    "updated",
    "unchanged",
    "updated",
    "capacity-below-enrollments",
    "updated",
    "waitlist-capacity-below-waiting",
    "capacity-below-enrollments",
    "updated",
    "invalid",
    "invalid",
    "created",
]


async def test_a_course_batch_answers_and_changes_what_single_requests_do(
    client, database_url, twin
):
    singles, singles_url = twin
    for app in (client, singles):
        await setup_catalog(app)
        # Ärzte-1: one seated, two waiting; B2: full.
        for student, course, wait in [(1, 1, False), (2, 1, True), (3, 1, True)]:
            response = await app.post(
                f"/students/{student}/courses", json={"course_id": course, "waitlist": wait}
            )
            assert response.status in (201, 202), await response.text()
        for student in (4, 5):
            response = await app.post(f"/students/{student}/courses", json={"course_id": 2})
            assert response.status == 201, await response.text()

    results = await batch(client, "/courses/batch", COURSES)
    expected = [await single_course(singles, item) for item in COURSES]

    assert [r["outcome"] for r in results] == COURSE_OUTCOMES
    assert [(r["status"], untimed(r["body"])) for r in results] == [
        (status, untimed(body)) for status, body in expected
    ]
    assert results[5]["body"]["enrolled"] == 2 and results[5]["body"]["waitlisted"] == 1
    assert await state(database_url) == await state(singles_url)


# -- the whole request ------------------------------------------------------------------

PATHS = ["/enrollments/batch", "/students/batch", "/courses/batch"]
LIMITS = [
    # (body, the fields the 422 names)
    pytest.param({"items": []}, ["items"], id="no-items"),
    pytest.param({"items": [{}] * 1001}, ["items"], id="1001-items"),
    pytest.param({"items": {"0": {}}}, ["items"], id="items-not-a-list"),
    pytest.param({"items": None}, ["items"], id="items-null"),
    pytest.param({}, ["items"], id="items-missing"),
    pytest.param(
        {"items": [{}, 3, "x", [], None]},
        ["items[1]", "items[2]", "items[3]", "items[4]"],
        id="non-object-items",
    ),
    pytest.param({"items": [{}], "dry_run": True}, ["dry_run"], id="unknown-top-level-field"),
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("body", "named"), LIMITS)
async def test_a_body_that_is_not_1_to_1000_objects_is_422_and_changes_nothing(
    client, db, path, body, named
):
    response = await client.post(path, json=body)

    assert response.status == 422
    found = await problem(response)
    assert [e["field"] for e in found["errors"]] == named
    assert await db.fetchval("select count(*) from events") == 0


@pytest.mark.parametrize("path", PATHS)
async def test_1000_items_are_accepted(client, db, path):
    if path == "/enrollments/batch":
        await setup_catalog(client)
        items = [{"student_id": 1 + n % 5, "course_id": 3} for n in range(1000)]
    elif path == "/students/batch":
        items = [{"name": f"S{n}", "email": f"s{n}@example.org"} for n in range(1000)]
    else:
        items = [{"code": f"K{n}", "title": f"Course {n}"} for n in range(1000)]

    results = await batch(client, path, items)

    assert len(results) == 1000
    assert {r["status"] for r in results} <= {200, 201}


@pytest.mark.parametrize("path", PATHS)
async def test_a_body_over_1_mib_is_413(client, path):
    items = [{"name": "x" * 1000, "email": f"s{n}@example.org"} for n in range(1100)]
    body = json.dumps({"items": items}).encode()

    response = await client.post(
        path, data=io.BytesIO(body), headers={"Content-Type": "application/json"}
    )

    assert len(body) > 1024 * 1024
    assert response.status == 413
    assert (await problem(response))["type"] == "/problems/payload-too-large"


@pytest.mark.parametrize("path", PATHS)
async def test_a_body_that_is_not_an_object_is_400(client, path):
    response = await client.post(path, json=[{"student_id": 1, "course_id": 1}])

    assert response.status == 400
    await problem(response)


# -- an item's own fields -----------------------------------------------------------------

ITEMS = [
    # (item, [(field, message)])
    pytest.param(
        {},
        [
            ("student_id", "is required, or student_email or student_sourced_id"),
            ("course_id", "is required, or course_code or course_sourced_id"),
        ],
        id="no-references",
    ),
    pytest.param(
        {"student_id": 1, "student_email": "a@example.org", "course_id": 1},
        [
            ("student_id", "give only one of student_id and student_email"),
            ("student_email", "give only one of student_id and student_email"),
        ],
        id="both-student-references",
    ),
    pytest.param(
        {"student_id": 1, "course_id": 1, "course_code": "C1"},
        [
            ("course_id", "give only one of course_id and course_code"),
            ("course_code", "give only one of course_id and course_code"),
        ],
        id="both-course-references",
    ),
    pytest.param(
        {"student_id": 1, "course_id": 1, "action": "enrol"},
        [("action", "must be one of enroll, drop")],
        id="unknown-action",
    ),
    pytest.param(
        {"student_id": 1, "course_id": 1, "action": "drop", "waitlist": True},
        [("waitlist", "applies to the action enroll only")],
        id="waitlist-on-drop",
    ),
    pytest.param(
        {"student_id": True, "course_id": 1},
        [("student_id", "must be an integer")],
        id="boolean-id",
    ),
    pytest.param(
        {"student_id": 1, "course_id": 7.0}, [("course_id", "must be an integer")], id="float-id"
    ),
    pytest.param(
        {"student_email": "no-at", "course_id": 1},
        [("student_email", "must contain exactly one @ with text on both sides")],
        id="malformed-email",
    ),
    pytest.param(
        {"student_id": 1, "course_code": "C 1"},
        [("course_code", "must not contain white space")],
        id="code-with-space",
    ),
    pytest.param(
        {"student_id": 1, "courseId": 1},
        [
            ("courseId", "is not a known field"),
            ("course_id", "is required, or course_code or course_sourced_id"),
        ],
        id="typo",
    ),
]


@pytest.mark.parametrize(("item", "errors"), ITEMS)
async def test_an_invalid_enrollment_item_is_its_own_422_and_others_apply(client, item, errors):
    await setup_catalog(client)

    before, invalid, after = await batch(
        client,
        "/enrollments/batch",
        [{"student_id": 1, "course_id": 3}, item, {"student_id": 2, "course_id": 3}],
    )

    assert (before["status"], before["outcome"]) == (201, "enrolled")
    assert (after["status"], after["outcome"]) == (201, "enrolled")
    assert (invalid["status"], invalid["outcome"]) == (422, "invalid")
    assert invalid["body"]["type"] == "/problems/validation-error"
    assert [(e["field"], e["message"]) for e in invalid["body"]["errors"]] == errors


async def test_a_drop_answers_204_with_no_body_and_promotes(client, db):
    await setup_catalog(client)
    await batch(
        client,
        "/enrollments/batch",
        [{"student_id": 1, "course_id": 1}, {"student_id": 2, "course_id": 1, "waitlist": True}],
    )

    (dropped,) = await batch(
        client, "/enrollments/batch", [{"action": "drop", "student_id": 1, "course_id": 1}]
    )

    assert dropped == {"status": 204, "outcome": "dropped", "body": None}
    assert await db.fetch("select student_id from student_courses where course_id = 1") == [(2,)]
    types = await db.fetch("select type, data::text from events where course_id = 1 order by id")
    assert [tuple(t) for t in types][-3:] == [
        ("enrollment.deleted", '{"reason": "dropped"}'),
        ("waitlist.left", '{"reason": "promoted"}'),
        ("enrollment.created", '{"via": "waitlist"}'),
    ]


# -- locks and retries ---------------------------------------------------------------------


async def waiting_for_a_lock(db, text: str) -> None:
    """Until a statement containing `text` waits for a row lock."""
    for _ in range(500):
        waiting = await db.fetchval(
            "select count(*) from pg_stat_activity"
            " where wait_event_type = 'Lock' and strpos(query, $1) > 0",
            text,
        )
        if waiting:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"nothing like {text!r} waited for a lock")


async def test_a_student_deleted_under_a_batch_is_not_found_rather_than_a_foreign_key_error(
    client, db, database_url
):
    # The batch locks the student (FOR KEY SHARE) before it enrolls them: a delete
    # committed meanwhile makes them not found. Without the lock, the enrollment's
    # foreign key check would meet the delete and fail the whole batch (500).
    await setup_catalog(client)
    deleter = await asyncpg.connect(database_url)
    try:
        deleting = deleter.transaction()
        await deleting.start()
        await deleter.execute("delete from students where id = 1")
        items = [{"student_id": 2, "course_id": 3}, {"student_id": 1, "course_id": 3}]
        posted = asyncio.create_task(client.post("/enrollments/batch", json={"items": items}))
        await waiting_for_a_lock(db, "batch_enroll")
        await deleting.commit()
        response = await posted
    finally:
        await deleter.close()

    assert response.status == 200, await response.text()
    first, second = (await response.json())["results"]
    assert (first["status"], first["outcome"]) == (201, "enrolled")
    assert (second["status"], second["outcome"]) == (404, "student-not-found")
    assert second["body"]["detail"] == "student 1 does not exist"


async def test_a_deadlocked_batch_runs_again_and_applies_once(client, db, database_url):
    # The batch locks course 3, then waits for course 2, which another transaction
    # holds while it waits for course 3: PostgreSQL aborts the batch (its
    # deadlock_timeout ends first), which runs again, whole, once the other commits.
    await setup_catalog(client)
    other = await asyncpg.connect(database_url)
    try:
        try:
            await other.execute("set deadlock_timeout = '30s'")
        except asyncpg.InsufficientPrivilegeError:
            pytest.skip("setting deadlock_timeout needs a superuser")
        holding = other.transaction()
        await holding.start()
        await other.execute("select 1 from courses where id = 2 for no key update")
        items = [{"student_id": 1, "course_id": 3}, {"student_id": 1, "course_id": 2}]
        posted = asyncio.create_task(client.post("/enrollments/batch", json={"items": items}))
        await waiting_for_a_lock(db, "batch_enroll")
        await other.execute("select 1 from courses where id = 3 for no key update")
        await holding.commit()
        response = await posted
    finally:
        await other.close()

    assert response.status == 200, await response.text()
    assert [r["outcome"] for r in (await response.json())["results"]] == ["enrolled", "enrolled"]
    created = await db.fetch(
        "select course_id from events where type = 'enrollment.created' order by id"
    )
    assert [r["course_id"] for r in created] == [3, 2]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE", "PUT"])
async def test_other_methods_on_a_batch_path_are_405_not_the_student_or_course_routes(
    client, path, method
):
    # /students/{student_id} matches /students/batch too: PATCH must not reach it.
    response = await client.request(method, path, json={"items": [{}]})

    assert response.status == 405
    assert response.headers["Allow"] == "POST"
    await problem(response)
