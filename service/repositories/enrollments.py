"""Enrollments: which students take which courses."""

from __future__ import annotations

import asyncpg

from ..errors import conflict, not_found
from ..models import EnrolledStudent, Enrollment, Page
from ..sql import QUERIES

Q = QUERIES.enrollments


async def enroll(
    conn: asyncpg.Connection, *, student_id: int, course_id: int
) -> tuple[Enrollment, bool]:
    """Enroll once; return the enrollment and whether this call created it."""
    try:
        row = await conn.fetchrow(Q.enroll, student_id, course_id)
    except asyncpg.ForeignKeyViolationError as exc:
        if exc.constraint_name == "student_courses_student_id_fkey":
            raise not_found(f"student {student_id} does not exist") from None
        raise not_found(f"course {course_id} does not exist") from None
    except asyncpg.CheckViolationError as exc:
        if exc.constraint_name != "student_courses_capacity":
            raise
        raise conflict(f"course {course_id} is full", "course-full") from None
    if row is None:
        # The course was deleted between the insert and the select.
        raise not_found(f"course {course_id} does not exist")
    created = row["created"]
    if row["enrolled_at"] is None:
        # A concurrent request enrolled first, after our snapshot was taken.
        existing = await get(conn, student_id=student_id, course_id=course_id)
        if existing is None:
            raise not_found(f"course {course_id} does not exist")
        return existing, False
    # The first six columns are the enrollment; `created` follows them.
    return Enrollment(*row[:6]), created


async def get(conn: asyncpg.Connection, *, student_id: int, course_id: int) -> Enrollment | None:
    row = await conn.fetchrow(Q.get_enrollment, student_id, course_id)
    return Enrollment(*row) if row else None


async def list_courses_of_student(
    conn: asyncpg.Connection, *, student_id: int, after: int, limit: int
) -> Page[Enrollment] | None:
    """A page of the student's courses, or None when the student does not exist."""
    rows = await conn.fetch(Q.list_student_courses, student_id, after, limit + 1)
    if not rows:
        return None
    items = [Enrollment(*row) for row in rows[:limit] if row["id"] is not None]
    return Page(items, items[-1].id if len(rows) > limit else None)


async def list_students_of_course(
    conn: asyncpg.Connection, *, course_id: int, after: int, limit: int
) -> Page[EnrolledStudent] | None:
    """A page of the course's students, or None when the course does not exist."""
    rows = await conn.fetch(Q.list_course_students, course_id, after, limit + 1)
    if not rows:
        return None
    items = [EnrolledStudent(*row) for row in rows[:limit] if row["id"] is not None]
    return Page(items, items[-1].id if len(rows) > limit else None)


async def delete(conn: asyncpg.Connection, *, student_id: int, course_id: int) -> bool:
    return await conn.fetchval(Q.delete_enrollment, student_id, course_id) is not None
