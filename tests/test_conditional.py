"""Conditional requests on students and courses: ETag, If-None-Match (304), If-Match (412)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from .api import create_course, create_student, enroll, problem


@dataclass(frozen=True)
class Kind:
    """A resource with conditional requests, two different changes to it, and its SQL."""

    path: str
    create: Any
    change: dict[str, Any]
    other_change: dict[str, Any]
    updated_event: str
    row: str  # the stored row, by id
    lock: str  # the row locked, by id
    events: str  # how many events name the id

    def __str__(self) -> str:
        return self.path.strip("/")


STUDENTS = Kind(
    "/students",
    create_student,
    {"name": "Ada King"},
    {"name": "Ada Byron"},
    "student.updated",
    row="select * from students where id = $1",
    lock="select 1 from students where id = $1 for update",
    events="select count(*) from events where student_id = $1",
)
COURSES = Kind(
    "/courses",
    create_course,
    {"title": "Engines II"},
    {"title": "Engines III"},
    "course.updated",
    row="select * from courses where id = $1",
    lock="select 1 from courses where id = $1 for update",
    events="select count(*) from events where course_id = $1",
)
KINDS = pytest.mark.parametrize("kind", [STUDENTS, COURSES], ids=str)


def id_in(path: str) -> int:
    return int(path.rsplit("/", 1)[1])


async def made(client: TestClient, kind: Kind) -> tuple[str, str]:
    """A new resource's path and its current ETag."""
    created = await kind.create(client)
    path = f"{kind.path}/{created['id']}"
    return path, await etag_of(client, path)


async def etag_of(client: TestClient, path: str) -> str:
    response = await client.get(path)
    assert response.status == 200, await response.text()
    return response.headers["ETag"]


async def stored(db: asyncpg.Connection, kind: Kind, path: str) -> asyncpg.Record | None:
    return await db.fetchrow(kind.row, id_in(path))


async def events_about(db: asyncpg.Connection, kind: Kind, path: str) -> int:
    return await db.fetchval(kind.events, id_in(path))


# -- ETag -------------------------------------------------------------------------------


@KINDS
async def test_a_read_sends_a_strong_etag_that_stays_while_nothing_changes(client, kind):
    path, first = await made(client, kind)

    assert first.startswith('"') and first.endswith('"') and len(first) > 2  # strong: no W/
    # Spelled on the wire as RFC 9110 spells it.
    assert (b"ETag", first.encode()) in (await client.get(path)).raw_headers
    assert await etag_of(client, path) == first
    assert await etag_of(client, path) == first


@KINDS
async def test_a_patch_answers_with_the_new_etag_which_the_next_read_sends(client, kind):
    path, before = await made(client, kind)

    response = await client.patch(path, json=kind.change)

    assert response.status == 200, await response.text()
    after = response.headers["ETag"]
    assert after != before
    assert await etag_of(client, path) == after


async def test_a_patch_that_promotes_answers_with_the_etag_of_the_course_after_promotion(client):
    # Raising capacity promotes in a trigger after the UPDATE: the answer's ETag
    # is that of the course as it stands when the request ends.
    course = await create_course(client, capacity=1, waitlist_capacity=1)
    first, second = await create_student(client), await create_student(client)
    assert (await enroll(client, first["id"], course["id"])).status == 201
    waits = {"course_id": course["id"], "waitlist": True}
    assert (await client.post(f"/students/{second['id']}/courses", json=waits)).status == 202
    path = f"/courses/{course['id']}"

    response = await client.patch(path, json={"capacity": 2})

    assert (await response.json())["enrolled"] == 2
    assert response.headers["ETag"] == await etag_of(client, path)


async def test_a_course_etag_changes_with_each_enrollment_and_drop(client):
    course = await create_course(client, capacity=5)
    student = await create_student(client)
    path = f"/courses/{course['id']}"
    seen = [await etag_of(client, path)]

    assert (await enroll(client, student["id"], course["id"])).status == 201
    seen.append(await etag_of(client, path))
    dropped = await client.delete(f"/students/{student['id']}/courses/{course['id']}")
    assert dropped.status == 204
    seen.append(await etag_of(client, path))

    # enrolled went 0, 1, 0: each representation has a new tag, the last one too.
    assert len(set(seen)) == 3, seen


async def test_a_course_etag_changes_when_a_student_joins_its_waitlist(client):
    course = await create_course(client, capacity=1, waitlist_capacity=1)
    first, second = await create_student(client), await create_student(client)
    assert (await enroll(client, first["id"], course["id"])).status == 201
    path = f"/courses/{course['id']}"
    before = await etag_of(client, path)

    waits = {"course_id": course["id"], "waitlist": True}
    assert (await client.post(f"/students/{second['id']}/courses", json=waits)).status == 202

    assert await etag_of(client, path) != before


async def test_a_student_etag_does_not_change_when_they_enroll(client):
    # Enrollments are no part of a student's representation.
    path, before = await made(client, STUDENTS)
    course = await create_course(client)

    assert (await enroll(client, id_in(path), course["id"])).status == 201

    assert await etag_of(client, path) == before


@KINDS
async def test_a_201_carries_no_etag(client, kind):
    # A create's answer may be replayed later (Idempotency-Key): a tag in it could be stale.
    body = (
        {"name": "Ada", "email": "ada@example.org"}
        if kind is STUDENTS
        else {"code": "C1", "title": "T"}
    )

    response = await client.post(kind.path, json=body)

    assert response.status == 201
    assert "ETag" not in response.headers


# -- If-None-Match ----------------------------------------------------------------------


@KINDS
@pytest.mark.parametrize(
    "header",
    [
        "{tag}",  # the current tag
        "*",  # any current representation
        '"1", {tag}, "2"',  # a list holding it
        "W/{tag}",  # weak comparison: the weak form of the current tag matches
    ],
)
async def test_if_none_match_that_matches_is_304_with_the_etag_and_no_body(client, kind, header):
    path, tag = await made(client, kind)

    response = await client.get(path, headers={"If-None-Match": header.format(tag=tag)})

    assert response.status == 304
    assert response.headers["ETag"] == tag
    assert await response.read() == b""


@KINDS
@pytest.mark.parametrize(
    "header",
    [
        '"1"',  # another tag
        '"1", "2"',  # a list without it
        "not-a-tag",  # unquoted: names nothing
        '"*"',  # a quoted star is a tag like any other, not "any"
    ],
)
async def test_if_none_match_that_does_not_match_is_a_full_200(client, kind, header):
    path, tag = await made(client, kind)

    response = await client.get(path, headers={"If-None-Match": header})

    assert response.status == 200
    assert response.headers["ETag"] == tag
    assert (await response.json())["id"] == id_in(path)


@KINDS
async def test_if_none_match_on_a_missing_resource_is_still_404(client, kind):
    response = await client.get(f"{kind.path}/999999", headers={"If-None-Match": "*"})

    assert response.status == 404
    assert (await problem(response))["type"] == "/problems/not-found"


@KINDS
async def test_head_sends_the_etag_and_honours_if_none_match(client, kind):
    path, tag = await made(client, kind)

    head = await client.head(path)
    assert head.status == 200
    assert head.headers["ETag"] == tag
    assert await head.read() == b""

    matched = await client.head(path, headers={"If-None-Match": tag})
    assert matched.status == 304
    assert matched.headers["ETag"] == tag


async def test_a_304_after_an_enrollment_becomes_a_200(client):
    course = await create_course(client)
    path = f"/courses/{course['id']}"
    tag = await etag_of(client, path)
    assert (await client.get(path, headers={"If-None-Match": tag})).status == 304

    assert (await enroll(client, (await create_student(client))["id"], course["id"])).status == 201
    response = await client.get(path, headers={"If-None-Match": tag})

    assert response.status == 200
    assert (await response.json())["enrolled"] == 1


# -- If-Match ---------------------------------------------------------------------------


@KINDS
@pytest.mark.parametrize(
    "header",
    [
        "{tag}",  # the current tag
        "*",  # any current representation
        '"1", {tag}',  # a list holding it
    ],
)
async def test_a_patch_whose_if_match_matches_is_applied(client, db, kind, header):
    path, tag = await made(client, kind)

    response = await client.patch(
        path, json=kind.change, headers={"If-Match": header.format(tag=tag)}
    )

    assert response.status == 200, await response.text()
    assert response.headers["ETag"] != tag
    field, value = next(iter(kind.change.items()))
    assert (await response.json())[field] == value
    assert (await stored(db, kind, path))[field] == value


@KINDS
@pytest.mark.parametrize(
    "header",
    [
        '"1"',  # another tag
        "{stale}",  # the tag before the last change
        "W/{tag}",  # strong comparison: a weak tag never matches
        '"*"',  # a quoted star is a tag, not "any"
        # malformed: none names a version, so nothing is changed
        "{bare}",  # the tag without its quotes
        "garbage",
        '"unterminated',
        '""',
        "*, {tag}",  # a star is only valid alone
        ",",
        '"' + "9" * 4000 + '"',
        '"caf\u00e9"',  # not ASCII
    ],
)
async def test_a_patch_whose_if_match_does_not_match_is_412_and_changes_nothing(
    client, db, kind, header
):
    path, stale = await made(client, kind)
    done = await client.patch(path, json=kind.other_change)
    tag = done.headers["ETag"]
    row, events = await stored(db, kind, path), await events_about(db, kind, path)
    value = header.format(tag=tag, stale=stale, bare=tag.strip('"'))

    response = await client.patch(path, json=kind.change, headers={"If-Match": value})

    assert response.status == 412
    body = await problem(response)
    assert body["type"] == "/problems/precondition-failed"
    assert "If-Match" in body["detail"]
    assert await stored(db, kind, path) == row
    assert await events_about(db, kind, path) == events
    assert await etag_of(client, path) == tag


@KINDS
async def test_a_delete_whose_if_match_matches_deletes(client, db, kind):
    path, tag = await made(client, kind)

    response = await client.delete(path, headers={"If-Match": tag})

    assert response.status == 204
    assert await stored(db, kind, path) is None


@KINDS
async def test_a_delete_with_if_match_star_deletes(client, db, kind):
    path, _ = await made(client, kind)

    response = await client.delete(path, headers={"If-Match": "*"})

    assert response.status == 204
    assert await stored(db, kind, path) is None


@KINDS
async def test_a_delete_with_a_stale_if_match_is_412_and_deletes_nothing(client, db, kind):
    path, stale = await made(client, kind)
    assert (await client.patch(path, json=kind.change)).status == 200
    events = await events_about(db, kind, path)

    response = await client.delete(path, headers={"If-Match": stale})

    assert response.status == 412
    assert (await problem(response))["type"] == "/problems/precondition-failed"
    assert await stored(db, kind, path) is not None
    assert await events_about(db, kind, path) == events


@KINDS
@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
async def test_if_match_on_a_missing_resource_is_still_404(client, kind, method):
    # RFC 9110 13.2.1: without the header the answer would not be 2xx, so it is ignored.
    body = kind.change if method == "PATCH" else None

    response = await client.request(
        method, f"{kind.path}/999999", json=body, headers={"If-Match": '"1"'}
    )

    assert response.status == 404
    assert (await problem(response))["type"] == "/problems/not-found"


@KINDS
async def test_an_invalid_body_is_422_before_if_match_is_looked_at(client, db, kind):
    path, _ = await made(client, kind)
    row = await stored(db, kind, path)

    response = await client.patch(path, json={"unknown": 1}, headers={"If-Match": '"1"'})

    assert response.status == 422
    assert await stored(db, kind, path) == row


async def test_a_stale_if_match_is_412_even_when_the_change_would_conflict(client, db):
    # The version is compared before the change is tried: no 409 for a change not made.
    await create_student(client, email="taken@example.org")
    path, stale = await made(client, STUDENTS)
    assert (await client.patch(path, json={"name": "Changed"})).status == 200

    response = await client.patch(
        path, json={"email": "taken@example.org"}, headers={"If-Match": stale}
    )

    assert response.status == 412


# -- the compare and the write are one step ---------------------------------------------


async def wait_for_lock_waiters(db: asyncpg.Connection, count: int) -> None:
    """Until `count` of the service's sessions wait for a lock (10 s at most)."""
    deadline = time.monotonic() + 10
    while True:
        waiting = await db.fetchval(
            "select count(*) from pg_stat_activity"
            " where application_name = 'enrollment-service' and wait_event_type = 'Lock'"
        )
        if waiting >= count:
            return
        assert time.monotonic() < deadline, f"{waiting} of {count} requests wait for a lock"
        await asyncio.sleep(0.02)


@KINDS
async def test_of_two_concurrent_patches_with_the_same_if_match_exactly_one_wins(
    client, db, database_url, kind
):
    # Both requests are held at the row by a lock taken here, so both have read
    # the same version before either writes. A compare made by a read before
    # the write lets both through (two 200s); one in the write's WHERE clause
    # is re-checked on the version the first one committed.
    path, tag = await made(client, kind)
    holder = await asyncpg.connect(database_url)
    try:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute(kind.lock, id_in(path))
        requests = [
            asyncio.ensure_future(client.patch(path, json=change, headers={"If-Match": tag}))
            for change in (kind.change, kind.other_change)
        ]
        await wait_for_lock_waiters(db, 2)
        await transaction.rollback()
        responses = await asyncio.gather(*requests)
    finally:
        await holder.close()

    statuses = sorted(r.status for r in responses)
    assert statuses == [200, 412], statuses
    winner = next(r for r in responses if r.status == 200)
    field = next(iter(kind.change))
    assert (await stored(db, kind, path))[field] == (await winner.json())[field]
    assert await etag_of(client, path) == winner.headers["ETag"]
    updated = await db.fetchval("select count(*) from events where type = $1", kind.updated_event)
    assert updated == 1


async def test_an_enrollment_committed_while_a_patch_waits_makes_it_412(client, db, database_url):
    # The PATCH read the course before the enrollment; the enrollment's seat
    # trigger holds the course row until it commits, then the PATCH's WHERE is
    # re-checked on the new row version and no longer matches.
    course = await create_course(client, capacity=10)
    student = await create_student(client)
    path = f"/courses/{course['id']}"
    tag = await etag_of(client, path)
    enrolling = await asyncpg.connect(database_url)
    try:
        transaction = enrolling.transaction()
        await transaction.start()
        await enrolling.execute(
            "insert into student_courses (student_id, course_id) values ($1, $2)",
            student["id"],
            course["id"],
        )
        patch = asyncio.ensure_future(
            client.patch(path, json={"title": "Renamed"}, headers={"If-Match": tag})
        )
        await wait_for_lock_waiters(db, 1)
        await transaction.commit()
        response = await patch
    finally:
        await enrolling.close()

    assert response.status == 412
    assert (await db.fetchrow("select title, enrolled from courses where id = $1", course["id"]))[
        "enrolled"
    ] == 1
    assert (await (await client.get(path)).json())["title"] == course["title"]
