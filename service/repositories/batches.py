"""Batches: many enrollments, students or courses applied in one statement.

Each call runs one statement of sql/batches.sql, a function that applies
the items in order under the same locks as the single statements
(batch_enroll as migration 0012 last defined it; batch_students and
batch_courses, migration 0007's). It commits alone, so a deadlock with
another batch leaves nothing behind and the whole call runs again
(retry.py). Each item comes
back as an `Applied`: its outcome slug and what the single request would
have answered, a model, a Problem, or None (a drop's 204).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from ..db import Work
from ..errors import conflict, not_found
from ..models import Course, Enrollment, Student, WaitlistEntry
from ..sql import QUERIES
from .enrollments import RACES
from .retry import Contended, retried

Q = QUERIES.batches


@dataclass(slots=True)
class EnrollItem:
    drop: bool
    student_id: int | None
    student_email: str | None
    course_id: int | None
    course_code: str | None
    waitlist: bool


@dataclass(slots=True)
class CourseItem:
    code: str
    title: str
    # None: keep (on an update) or no limit (on a create) when not set_capacity.
    set_capacity: bool
    capacity: int | None
    waitlist_capacity: int | None  # None: keep, or 0 on a create


@dataclass(slots=True)
class Applied:
    outcome: str
    value: Any  # a model, a Problem, or None


class _Raced(Exception):
    pass


async def enroll(
    conn: asyncpg.Connection, *, items: list[EnrollItem], actor: str, work: Work
) -> list[Applied]:
    """Enroll or drop, item by item; one Applied per item, in order."""
    arrays = (
        [i.drop for i in items],
        [i.student_id for i in items],
        [i.student_email for i in items],
        [i.course_id for i in items],
        [i.course_code for i in items],
        [i.waitlist for i in items],
    )
    try:
        rows = await retried(work, _fetch_enroll, conn, arrays, actor, races=(_Raced,))
    except _Raced:
        raise Contended from None
    return [_enrolled(item, row) for item, row in zip(items, rows, strict=True)]


async def _fetch_enroll(
    conn: asyncpg.Connection, arrays: tuple[list, ...], actor: str
) -> list[asyncpg.Record]:
    try:
        return await conn.fetch(Q.enroll, *arrays, actor)
    except asyncpg.CheckViolationError as exc:
        # Only a writer that skipped the course lock can cause these (see
        # repositories/enrollments.py): run the batch again.
        if exc.constraint_name not in RACES:
            raise
        raise _Raced from None


def _enrolled(item: EnrollItem, row: asyncpg.Record) -> Applied:
    outcome = row["outcome"]
    student_id, course_id = row["student_id"], row["course_id"]
    if outcome == "enrolled" or outcome == "already-enrolled":
        return Applied(outcome, Enrollment(course_id, *row[4:11], row["enrolled_at"]))
    if outcome == "waitlisted" or outcome == "already-waiting":
        entry = WaitlistEntry(course_id, *row[4:11], row["waitlisted_at"], row["queue_position"])
        return Applied(outcome, entry)
    if outcome == "dropped":
        return Applied(outcome, None)
    if outcome == "not-enrolled":
        detail = f"student {student_id} is not enrolled in course {course_id}"
        return Applied(outcome, not_found(detail))
    if outcome == "student-not-found":
        if item.student_id is None:
            return Applied(outcome, not_found(f"no student has email {item.student_email}"))
        return Applied(outcome, not_found(f"student {student_id} does not exist"))
    if outcome == "course-not-found":
        if item.course_id is None:
            return Applied(outcome, not_found(f"no course has code {item.course_code}"))
        return Applied(outcome, not_found(f"course {course_id} does not exist"))
    if outcome == "course-full":
        return Applied(outcome, conflict(f"course {course_id} is full", "course-full"))
    if outcome == "waitlist-full":
        detail = f"course {course_id} is full and so is its waitlist"
        return Applied(outcome, conflict(detail, "waitlist-full"))
    raise AssertionError(f"unknown outcome {outcome!r}")


async def students(
    conn: asyncpg.Connection, *, names: list[str], emails: list[str], actor: str, work: Work
) -> list[Applied]:
    """Create, or rename the student with that email; one Applied per item, in order."""
    rows = await retried(work, _fetch_students, conn, names, emails, actor)
    return [Applied(row["outcome"], Student(*row[2:])) for row in rows]


async def _fetch_students(
    conn: asyncpg.Connection, names: list[str], emails: list[str], actor: str
) -> list[asyncpg.Record]:
    return await conn.fetch(Q.students, names, emails, actor)


async def courses(
    conn: asyncpg.Connection, *, items: list[CourseItem], actor: str, work: Work
) -> list[Applied]:
    """Create, or update the course with that code; one Applied per item, in order."""
    arrays = (
        [i.code for i in items],
        [i.title for i in items],
        [i.set_capacity for i in items],
        [i.capacity for i in items],
        [i.waitlist_capacity for i in items],
    )
    rows = await retried(work, _fetch_courses, conn, arrays, actor)
    return [_course(item, row) for item, row in zip(items, rows, strict=True)]


async def _fetch_courses(
    conn: asyncpg.Connection, arrays: tuple[list, ...], actor: str
) -> list[asyncpg.Record]:
    return await conn.fetch(Q.courses, *arrays, actor)


def _course(item: CourseItem, row: asyncpg.Record) -> Applied:
    outcome = row["outcome"]
    # The details PATCH /courses/{id} gives (repositories/courses.py).
    if outcome == "capacity-below-enrollments":
        detail = f"course {row['id']} has more enrolled students than {item.capacity}"
        return Applied(outcome, conflict(detail, outcome))
    if outcome == "waitlist-capacity-below-waiting":
        detail = f"course {row['id']} has more students waiting than {item.waitlist_capacity}"
        return Applied(outcome, conflict(detail, outcome))
    return Applied(outcome, Course(*row[2:]))
