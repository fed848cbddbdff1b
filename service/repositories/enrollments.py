"""Enrollments: which students take which courses, and who waits for a seat."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from ..db import Work
from ..errors import conflict, not_found, sourced_id_taken
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
    overrides: str | None,
    sourced_id: str | None = None,
    actor: str,
    work: Work,
) -> Applied:
    """Enroll once, or wait for a seat when the course is full and `waitlist` asks.

    enroll_run() decides (sql/functions/enrollments.sql), as for every item
    of a batch; `overrides`: the rules a registrar overrode, comma-separated;
    `sourced_id`: the new enrollment's (None: a new UUID).
    """
    statement = Q.enroll.bind(
        student_id=student_id,
        course_id=course_id,
        waitlist=waitlist,
        overrides=overrides,
        sourced_id=sourced_id,
        actor=actor,
    )
    try:
        row = await retried(work, _fetch, conn, statement)
    except asyncpg.UniqueViolationError as exc:
        # Taken by a concurrent enroll since enroll_run() looked.
        if exc.constraint_name != "student_courses_sourced_id_key":
            raise
        raise sourced_id_taken("enrollment", sourced_id or "") from None
    return applied(row, sourced_id=sourced_id)


async def _fetch(conn: asyncpg.Connection, statement: tuple[Any, ...]) -> asyncpg.Record:
    return await conn.fetchrow(*statement)


def applied(
    row: asyncpg.Record,
    *,
    student_email: str | None = None,
    student_sourced_id: str | None = None,
    course_code: str | None = None,
    course_sourced_id: str | None = None,
    sourced_id: str | None = None,
) -> Applied:
    """One row of enroll_run() or drop_enrollment() as the single request answers it.

    student_email, student_sourced_id, course_code and course_sourced_id: how
    the item named them, when not by id; sourced_id: the enrollment's it asked for.
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
        if student_sourced_id is not None:
            return Applied(outcome, not_found(f"no student has sourced_id {student_sourced_id}"))
        return Applied(outcome, not_found(f"student {student_id} does not exist"))
    if outcome is Outcome.COURSE_NOT_FOUND:
        if course_code is not None:
            return Applied(outcome, not_found(f"no course has code {course_code}"))
        if course_sourced_id is not None:
            return Applied(outcome, not_found(f"no course has sourced_id {course_sourced_id}"))
        return Applied(outcome, not_found(f"course {course_id} does not exist"))
    if outcome is Outcome.SOURCED_ID_TAKEN:
        return Applied(outcome, sourced_id_taken("enrollment", sourced_id or ""))
    if outcome in RULE_DETAILS:
        detail = RULE_DETAILS[outcome](student_id, course_id, row["about"] or ())
        return Applied(outcome, conflict(detail, outcome))
    if outcome is Outcome.DROP_DEADLINE_PASSED:
        detail = (
            f"the drop deadline of the term of course {course_id} has passed:"
            f" only the registrar can drop student {student_id} from it now"
        )
        return Applied(outcome, conflict(detail, outcome))
    if outcome is Outcome.COURSE_FULL:
        return Applied(outcome, conflict(f"course {course_id} is full", outcome))
    if outcome is Outcome.WAITLIST_FULL:
        detail = f"course {course_id} is full and so is its waitlist"
        return Applied(outcome, conflict(detail, outcome))
    raise AssertionError(f"not an enrollment outcome: {outcome!r}")


# What each rule of registration says, and what to do about it; `about` is
# registration_blocker()'s (sql/functions/registration.sql).
RULE_DETAILS: dict[Outcome, Callable[[int, int, Sequence[str]], str]] = {
    Outcome.REGISTRATION_HOLD: lambda s, c, about: (
        f"student {s} has a hold: the registrar must remove it before they enroll in course {c}"
    ),
    Outcome.REGISTRATION_NOT_OPEN: lambda s, c, about: (
        f"registration for course {c} opens for student {s} at {about[0]}: try again then"
    ),
    Outcome.REGISTRATION_CLOSED: lambda s, c, about: (
        f"registration for course {c} closed at {about[0]}: ask the registrar"
    ),
    Outcome.PREREQUISITE_MISSING: lambda s, c, about: (
        f"student {s} has not completed the prerequisites of course {c}: {', '.join(about)};"
        " complete them first, or ask the registrar"
    ),
    Outcome.TIME_CONFLICT: lambda s, c, about: (
        f"course {c} meets at the same time as {about[0]}, which student {s} is enrolled in:"
        f" drop {about[0]} first, or choose another section"
    ),
    Outcome.CREDIT_LIMIT: lambda s, c, about: (
        f"student {s} is enrolled in {about[0]} credits this term and course {c} adds"
        f" {about[1]}, over their limit of {about[2]}: drop a course, or ask for a higher limit"
    ),
}


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
    conn: asyncpg.Connection,
    *,
    student_id: int,
    course_id: int,
    overrides: str | None,
    actor: str,
    work: Work,
) -> Applied:
    """Unenroll (drop_enrollment); the freed seat goes to the head of the queue at once."""
    return applied(await retried(work, _delete, conn, student_id, course_id, overrides, actor))


async def _delete(
    conn: asyncpg.Connection, student_id: int, course_id: int, overrides: str | None, actor: str
) -> asyncpg.Record:
    return await conn.fetchrow(Q.delete_enrollment, student_id, course_id, overrides, actor)
