"""Enrollments: which students take which courses, and who waits for a seat."""

from __future__ import annotations

import enum

import asyncpg

from ..db import Work
from ..errors import conflict, not_found
from ..models import EnrolledStudent, Enrollment, Page, WaitlistEntry
from ..sql import QUERIES
from . import waitlist
from .retry import Contended, retried

Q = QUERIES.enrollments

# Refusals, named by the constraint or trigger that raised them (migration
# 0005's names, kept by the triggers of 0010 and 0012 that took over the
# counting), that only a concurrent change between this statement's
# snapshot and its lock can cause: run it again.
RACES = frozenset(
    {
        "course_waitlist_not_enrolled",
        "course_waitlist_course_full",
        "courses_enrolled_within_capacity",
        "courses_waitlisted_within_capacity",
        "student_courses_not_waiting",
    }
)


class Outcome(enum.Enum):
    CREATED = "created"  # newly enrolled
    EXISTING = "existing"  # was enrolled already
    WAITLISTED = "waitlisted"  # newly on the waitlist
    WAITING = "waiting"  # was on the waitlist already


class _Raced(Exception):
    pass


async def enroll(
    conn: asyncpg.Connection,
    *,
    student_id: int,
    course_id: int,
    waitlist: bool,
    actor: str,
    work: Work,
) -> tuple[Enrollment | WaitlistEntry, Outcome]:
    """Enroll once, or wait for a seat when the course is full and `waitlist` asks."""
    try:
        return await retried(
            work, _enroll, conn, student_id, course_id, waitlist, actor, races=(_Raced,)
        )
    except _Raced:
        raise Contended from None


async def _enroll(
    conn: asyncpg.Connection, student_id: int, course_id: int, waitlist_: bool, actor: str
) -> tuple[Enrollment | WaitlistEntry, Outcome]:
    try:
        row = await conn.fetchrow(Q.enroll, student_id, course_id, waitlist_, actor)
    except asyncpg.ForeignKeyViolationError as exc:
        if exc.constraint_name and "student_id" in exc.constraint_name:
            raise not_found(f"student {student_id} does not exist") from None
        raise not_found(f"course {course_id} does not exist") from None
    except asyncpg.CheckViolationError as exc:
        if exc.constraint_name not in RACES:
            raise
        raise _Raced from None
    if not row["student_exists"]:
        raise not_found(f"student {student_id} does not exist")
    if row["id"] is None:
        raise not_found(f"course {course_id} does not exist")
    course = row[:8]
    if row["enrolled_at"] is not None:
        outcome = Outcome.CREATED if row["created"] else Outcome.EXISTING
        return Enrollment(*course, row["enrolled_at"]), outcome
    if row["waitlisted_at"] is not None:
        outcome = Outcome.WAITLISTED if row["queued"] else Outcome.WAITING
        return WaitlistEntry(*course, row["waitlisted_at"], row["position"]), outcome
    # Neither a seat nor a place: full, unless a concurrent request enrolled
    # or queued this student after our snapshot was taken.
    if (existing := await get(conn, student_id=student_id, course_id=course_id)) is not None:
        return existing, Outcome.EXISTING
    entry = await waitlist.get(conn, student_id=student_id, course_id=course_id)
    if entry is not None:
        return entry, Outcome.WAITING
    if waitlist_ and row["waitlist_capacity"] > 0:
        raise conflict(f"course {course_id} is full and so is its waitlist", "waitlist-full")
    raise conflict(f"course {course_id} is full", "course-full")


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


async def delete(
    conn: asyncpg.Connection, *, student_id: int, course_id: int, actor: str, work: Work
) -> bool:
    """Unenroll; the freed seat goes to the head of the queue in the same statement."""
    return await retried(work, _delete, conn, student_id, course_id, actor)


async def _delete(conn: asyncpg.Connection, student_id: int, course_id: int, actor: str) -> bool:
    return await conn.fetchval(Q.delete_enrollment, student_id, course_id, actor) is not None
