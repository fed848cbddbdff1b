"""Enrollments: which students take which courses, and who waits for a seat."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from ..db import Work
from ..errors import conflict, not_found
from ..models import EnrolledStudent, Enrollment, Page, WaitlistEntry, from_row, from_rows
from ..outcomes import Outcome
from ..sql import QUERIES
from .retry import retried

Q = QUERIES.enrollments


@dataclass(slots=True)
class Applied:
    """An enroll or a drop as the database decided it, and what the request answers."""

    outcome: Outcome
    value: Any  # an Enrollment, a WaitlistEntry, a Problem, or None (a drop's 204)


async def enroll(
    conn: asyncpg.Connection,
    *,
    student_id: int,
    course_id: int,
    waitlist: bool,
    actor: str,
    work: Work,
) -> Applied:
    """Enroll once, or wait for a seat when the course is full and `waitlist` asks.

    enroll_run() decides (sql/functions/enrollments.sql), as for every item
    of a batch.
    """
    row = await retried(work, _enroll, conn, student_id, course_id, waitlist, actor)
    return applied(row)


async def _enroll(
    conn: asyncpg.Connection, student_id: int, course_id: int, waitlist_: bool, actor: str
) -> asyncpg.Record:
    return await conn.fetchrow(Q.enroll, student_id, course_id, waitlist_, actor)


def applied(
    row: asyncpg.Record, *, student_email: str | None = None, course_code: str | None = None
) -> Applied:
    """One row of enroll_run() or drop_enrollment() as the single request answers it.

    student_email and course_code: how the item named them, when not by id.
    """
    outcome = Outcome(row["outcome"])
    student_id, course_id = row["student_id"], row["course_id"]
    if outcome in (Outcome.ENROLLED, Outcome.ALREADY_ENROLLED):
        return Applied(outcome, from_row(Enrollment, row, id=course_id))
    if outcome in (Outcome.WAITLISTED, Outcome.ALREADY_WAITING):
        entry = from_row(WaitlistEntry, row, id=course_id, position=row["queue_position"])
        return Applied(outcome, entry)
    if outcome is Outcome.DROPPED:
        return Applied(outcome, None)
    if outcome is Outcome.NOT_ENROLLED:
        detail = f"student {student_id} is not enrolled in course {course_id}"
        return Applied(outcome, not_found(detail))
    if outcome is Outcome.STUDENT_NOT_FOUND:
        if student_email is not None:
            return Applied(outcome, not_found(f"no student has email {student_email}"))
        return Applied(outcome, not_found(f"student {student_id} does not exist"))
    if outcome is Outcome.COURSE_NOT_FOUND:
        if course_code is not None:
            return Applied(outcome, not_found(f"no course has code {course_code}"))
        return Applied(outcome, not_found(f"course {course_id} does not exist"))
    if outcome is Outcome.COURSE_FULL:
        return Applied(outcome, conflict(f"course {course_id} is full", outcome))
    if outcome is Outcome.WAITLIST_FULL:
        detail = f"course {course_id} is full and so is its waitlist"
        return Applied(outcome, conflict(detail, outcome))
    raise AssertionError(f"not an enrollment outcome: {outcome!r}")


async def get(conn: asyncpg.Connection, *, student_id: int, course_id: int) -> Enrollment | None:
    row = await conn.fetchrow(Q.get_enrollment, student_id, course_id)
    return from_row(Enrollment, row) if row else None


async def list_courses_of_student(
    conn: asyncpg.Connection, *, student_id: int, after: int, limit: int
) -> Page[Enrollment] | None:
    """A page of the student's courses, or None when the student does not exist."""
    rows = await conn.fetch(Q.list_student_courses, student_id, after, limit + 1)
    if not rows:
        return None
    items = from_rows(Enrollment, [row for row in rows[:limit] if row["id"] is not None])
    return Page(items, items[-1].id if len(rows) > limit else None)


async def list_students_of_course(
    conn: asyncpg.Connection, *, course_id: int, after: int, limit: int
) -> Page[EnrolledStudent] | None:
    """A page of the course's students, or None when the course does not exist."""
    rows = await conn.fetch(Q.list_course_students, course_id, after, limit + 1)
    if not rows:
        return None
    items = from_rows(EnrolledStudent, [row for row in rows[:limit] if row["id"] is not None])
    return Page(items, items[-1].id if len(rows) > limit else None)


async def delete(
    conn: asyncpg.Connection, *, student_id: int, course_id: int, actor: str, work: Work
) -> Applied:
    """Unenroll (drop_enrollment); the freed seat goes to the head of the queue at once."""
    return applied(await retried(work, _delete, conn, student_id, course_id, actor))


async def _delete(
    conn: asyncpg.Connection, student_id: int, course_id: int, actor: str
) -> asyncpg.Record:
    return await conn.fetchrow(Q.delete_enrollment, student_id, course_id, actor)
