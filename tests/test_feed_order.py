"""The feed in causal order: replaying a course's events gives states it really had.

Concurrent joins, drops, leaves and capacity changes on a few hot courses,
through the real app and its pool (every request its own transaction), many
rounds; then the whole feed is read a page at a time and each course's
events replayed in feed order, every step checked against what the course
could have been (docs/api.md, "Causal order").
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from .api import create_course, create_student, walk

ROUNDS = 25
REQUESTS_PER_ROUND = 48
PAGE = 13  # pages cut across transactions' events


@dataclass
class Course:
    """A course as its events say it is."""

    enrolled: set[int] = field(default_factory=set)
    queue: list[int] = field(default_factory=list)  # head first
    promoting: int | None = None  # left the queue "promoted", not yet seated


class Replay:
    def __init__(self) -> None:
        self.courses: dict[int, Course] = {}
        self.wrong: list[str] = []

    def apply(self, event: dict[str, Any]) -> None:
        kind, student, course_id = event["type"], event["student_id"], event["course_id"]
        if not kind.startswith(("enrollment.", "waitlist.")):
            return
        course = self.courses.setdefault(course_id, Course())
        where = f"event {event['id']} {kind} of student {student} in course {course_id}"

        def wrong(why: str) -> None:
            self.wrong.append(f"{where}: {why}")

        if course.promoting is not None and not (
            kind == "enrollment.created" and student == course.promoting
        ):
            wrong(f"student {course.promoting} left the queue promoted but was never seated")
            course.promoting = None
        if kind == "waitlist.joined":
            if student in course.enrolled or student in course.queue:
                wrong("joined while enrolled or waiting already")
            course.queue.append(student)
        elif kind == "waitlist.left":
            if student not in course.queue:
                wrong("left a queue it was not in")
                return
            if event["data"]["reason"] == "promoted":
                if course.queue[0] != student:
                    wrong(f"promoted from position {course.queue.index(student) + 1}")
                course.promoting = student
            course.queue.remove(student)
        elif kind == "enrollment.created":
            if student in course.enrolled:
                wrong("enrolled twice")
            if event["data"]["via"] == "waitlist":
                if course.promoting != student:
                    wrong("seated from the waitlist without leaving it promoted")
                course.promoting = None
            elif course.queue:
                # A request takes a seat only while one is free, and no one
                # waits while a seat is free.
                wrong(f"took a seat while {len(course.queue)} waited")
            course.enrolled.add(student)
        elif kind == "enrollment.deleted":
            if student not in course.enrolled:
                wrong("dropped while not enrolled")
            course.enrolled.discard(student)


async def _traffic(client: TestClient, students: list[int], courses: list[int], seed: int) -> None:
    rng = random.Random(seed)

    async def one() -> None:
        student, course = rng.choice(students), rng.choice(courses)
        roll = rng.random()
        if roll < 0.45:
            await client.post(
                f"/students/{student}/courses", json={"course_id": course, "waitlist": True}
            )
        elif roll < 0.75:
            await client.delete(f"/students/{student}/courses/{course}")
        elif roll < 0.9:
            await client.delete(f"/students/{student}/waitlist/{course}")
        else:
            await client.patch(f"/courses/{course}", json={"capacity": rng.randint(2, 6)})

    await asyncio.gather(*(one() for _ in range(REQUESTS_PER_ROUND)))


async def test_replaying_each_course_in_feed_order_gives_states_it_really_had(client):
    students = [(await create_student(client))["id"] for _ in range(24)]
    courses = [
        (await create_course(client, capacity=3, waitlist_capacity=40))["id"] for _ in range(3)
    ]
    for round_ in range(ROUNDS):
        await _traffic(client, students, courses, seed=round_)

    replay = Replay()
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": PAGE}
        if cursor is not None:
            params["cursor"] = cursor
        response = await client.get("/events", params=params)
        assert response.status == 200, await response.text()
        page = await response.json()
        ids = [e["id"] for e in page["items"]]
        assert ids == sorted(ids)
        for event in page["items"]:
            replay.apply(event)
        pages += 1
        if not page["items"]:
            break
        cursor = page["next_cursor"]

    assert pages > 20
    assert not replay.wrong, "\n".join(replay.wrong[:10])
    # And the end of the replay is the courses' state, queue order included.
    for course_id in courses:
        seen = replay.courses.get(course_id, Course())
        enrolled = {s["id"] for s in await walk(client, f"/courses/{course_id}/students", 100)}
        queue = [s["id"] for s in await walk(client, f"/courses/{course_id}/waitlist", 100)]
        assert seen.enrolled == enrolled
        assert seen.queue == queue
        assert seen.promoting is None


async def test_a_change_to_a_course_not_locked_first_is_refused(client, db):
    student = (await create_student(client))["id"]
    locked, other = [(await create_course(client))["id"] for _ in range(2)]

    async with db.transaction():
        await db.execute("select lock_courses($1::bigint[])", [locked])
        with pytest.raises(asyncpg.SerializationError, match=f"course {other} changed"):
            await db.execute(
                "insert into student_courses (student_id, course_id) values ($1, $2)",
                student,
                other,
            )
    # Nor may a course be locked once the transaction has written: its id
    # came before the lock.
    async with db.transaction():
        await db.execute("select lock_courses($1::bigint[])", [locked])
        await db.execute(
            "insert into student_courses (student_id, course_id) values ($1, $2)", student, locked
        )
        with pytest.raises(asyncpg.SerializationError, match=f"course {other} is locked after"):
            await db.execute("select lock_courses($1::bigint[])", [other])
    # An operator's SQL, which locks nothing, is let through.
    await db.execute(
        "insert into student_courses (student_id, course_id) values ($1, $2)", student, other
    )
    assert await db.fetchval("select count(*) from student_courses") == 1
