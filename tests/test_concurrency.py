"""Concurrent requests against the real app: uniqueness, capacity and deletes hold under races.

Each test fires its requests with asyncio.gather on an app whose pool is large
enough (40 connections) that the statements really overlap inside PostgreSQL.
The racy scenarios run several rounds so that a lucky interleaving cannot pass
for a correct one.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from .api import create_course, create_student

ROUNDS = 3
POOL = 40


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: Any


async def call(client: TestClient, method: str, path: str, body: Any = None) -> Answer:
    async with client.request(method, path, json=body) as response:
        payload = await response.read()
        parsed = await response.json(content_type=None) if payload else None
        return Answer(response.status, response.content_type, parsed)


async def burst(client: TestClient, requests: list[tuple[str, str, Any]]) -> list[Answer]:
    """Send every request at once; answers come back in the order of the requests."""
    return list(await asyncio.gather(*(call(client, m, p, b) for m, p, b in requests)))


async def amid(
    client: TestClient, requests: list[tuple[str, str, Any]], interloper: tuple[str, str, Any]
) -> tuple[Answer, list[Answer]]:
    """Send `requests` at once, and `interloper` as soon as the first of them is answered.

    Sent with the others, the interloper often lands before all of them; waiting for one
    answer puts it among them, with the rest still in flight.
    """
    answered = asyncio.Event()

    async def one(method: str, path: str, body: Any) -> Answer:
        answer = await call(client, method, path, body)
        answered.set()
        return answer

    async def interlope() -> Answer:
        await answered.wait()
        return await call(client, *interloper)

    first, *answers = await asyncio.gather(interlope(), *(one(*r) for r in requests))
    return first, answers


def statuses(answers: list[Answer]) -> Counter[int]:
    return Counter(a.status for a in answers)


def assert_problem(answer: Answer, status: int, type_: str) -> None:
    assert answer.status == status, answer
    assert answer.content_type == "application/problem+json", answer
    assert answer.body["type"] == type_, answer.body
    assert answer.body["status"] == status


async def enrollment_count(db, course_id: int) -> int:
    return await db.fetchval("select count(*) from student_courses where course_id = $1", course_id)


async def students(client: TestClient, n: int) -> list[dict[str, Any]]:
    return list(await asyncio.gather(*(create_student(client) for _ in range(n))))


@pytest.mark.parametrize(
    "capacity",
    [
        None,  # no limit: only the primary key decides
        1,  # one seat: a repeated enrollment must not count as a second seat (or as "full")
    ],
)
async def test_identical_enrollments_create_one_row(wide, db, capacity):
    for _ in range(ROUNDS):
        student = await create_student(wide)
        course = await create_course(wide, capacity=capacity)
        path = f"/students/{student['id']}/courses"

        answers = await burst(wide, [("POST", path, {"course_id": course["id"]})] * 50)

        assert statuses(answers) == {201: 1, 200: 49}, statuses(answers)
        enrolled_at = {a.body["enrolled_at"] for a in answers}
        assert len(enrolled_at) == 1, enrolled_at
        assert {a.body["id"] for a in answers} == {course["id"]}
        stored = await db.fetch(
            "select student_id, enrolled_at from student_courses where course_id = $1",
            course["id"],
        )
        assert [r["student_id"] for r in stored] == [student["id"]]
        (answered,) = enrolled_at
        assert datetime.fromisoformat(answered.replace("Z", "+00:00")) == stored[0]["enrolled_at"]


async def test_capacity_holds_when_many_students_enroll_at_once(wide, db):
    for _ in range(ROUNDS):
        course = await create_course(wide, capacity=10)
        applicants = await students(wide, 40)

        answers = await burst(
            wide,
            [
                ("POST", f"/students/{s['id']}/courses", {"course_id": course["id"]})
                for s in applicants
            ],
        )

        assert statuses(answers) == {201: 10, 409: 30}, statuses(answers)
        for answer in answers:
            if answer.status == 409:
                assert_problem(answer, 409, "/problems/course-full")
        admitted = {s["id"] for s, a in zip(applicants, answers, strict=True) if a.status == 201}
        stored = await db.fetch(
            "select student_id from student_courses where course_id = $1", course["id"]
        )
        assert {r["student_id"] for r in stored} == admitted
        response = await wide.get(f"/courses/{course['id']}/students", params={"limit": 500})
        assert len((await response.json())["items"]) == 10


async def test_same_email_from_many_clients_creates_one_student(wide, db):
    for round_ in range(ROUNDS):
        address = f"race{round_}@example.org"
        # Letter case differs between clients; uniqueness ignores it.
        variants = [address, address.upper(), address.title(), f"RACE{round_}@example.org"]
        bodies = [{"name": f"Racer {i}", "email": variants[i % len(variants)]} for i in range(20)]

        answers = await burst(wide, [("POST", "/students", body) for body in bodies])

        assert statuses(answers) == {201: 1, 409: 19}, statuses(answers)
        for answer in answers:
            if answer.status == 409:
                assert_problem(answer, 409, "/problems/email-taken")
        (created,) = [a.body for a in answers if a.status == 201]
        stored = await db.fetch(
            "select id, email from students where lower(email) = $1", address.lower()
        )
        assert [(r["id"], r["email"]) for r in stored] == [(created["id"], created["email"])]


@pytest.mark.parametrize(
    "capacity",
    [
        None,  # enrollments race the delete through the foreign key only
        10,  # enrollments also lock the course row for the capacity check
    ],
)
async def test_course_deleted_while_students_enroll(wide, db, capacity):
    for _ in range(ROUNDS):
        course = await create_course(wide, capacity=capacity)
        applicants = await students(wide, 30)
        enrollments = [
            ("POST", f"/students/{s['id']}/courses", {"course_id": course["id"]})
            for s in applicants
        ]
        deleted, answers = await amid(
            wide, enrollments, ("DELETE", f"/courses/{course['id']}", None)
        )

        assert deleted.status == 204, deleted
        # Each student enrolls once, so 200 cannot happen; 409 only when the course is full.
        allowed = {201, 404} if capacity is None else {201, 404, 409}
        assert set(statuses(answers)) <= allowed, statuses(answers)
        for answer in answers:
            if answer.status == 404:
                assert_problem(answer, 404, "/problems/not-found")
                assert f"course {course['id']}" in answer.body["detail"]
            elif answer.status == 409:
                assert_problem(answer, 409, "/problems/course-full")
        if capacity is not None:
            assert statuses(answers)[201] <= capacity
        assert await enrollment_count(db, course["id"]) == 0
        assert await db.fetchval("select count(*) from courses where id = $1", course["id"]) == 0
        assert (await wide.get(f"/courses/{course['id']}")).status == 404


async def test_lowering_capacity_while_students_enroll_never_overfills(wide, db):
    for _ in range(ROUNDS):
        course = await create_course(wide, capacity=30)
        applicants = await students(wide, 30)
        enrollments = [
            ("POST", f"/students/{s['id']}/courses", {"course_id": course["id"]})
            for s in applicants
        ]
        requests = [*enrollments[:3], ("PATCH", f"/courses/{course['id']}", {"capacity": 5})]
        requests += enrollments[3:]

        answers = await burst(wide, requests)

        patched = answers.pop(3)
        assert set(statuses(answers)) <= {201, 409}, statuses(answers)
        for answer in answers:
            if answer.status == 409:
                assert_problem(answer, 409, "/problems/course-full")
        stored = await enrollment_count(db, course["id"])
        assert stored == statuses(answers)[201]
        capacity = await db.fetchval("select capacity from courses where id = $1", course["id"])
        if patched.status == 200:
            # The new limit won: it was set while at most 5 were enrolled, and the rest filled it.
            assert patched.body["capacity"] == 5
            assert capacity == 5
            assert stored == 5
        else:
            # Too many had enrolled already: the limit stays and everyone got in.
            assert_problem(patched, 409, "/problems/capacity-below-enrollments")
            assert capacity == 30
            assert stored == 30
