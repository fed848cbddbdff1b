"""Batches: many enrollments, students, courses or terms applied in one statement.

Each call runs one statement of sql/batches.sql, a function of
sql/functions/batches.sql (batch_terms: terms.sql) that applies the items
in order (batch_enroll hands each run of enroll items to enroll_run() and
each drop to drop_enrollment(), the functions of the single requests). It
commits alone, so a deadlock with another batch leaves nothing behind and
the whole call runs again (retry.py). So does a unique violation: the
functions answer a taken email, code or sourced_id as that item's outcome
from what they read, and a concurrent transaction that took one since
makes the index refuse the whole statement; run again, it reads it. Each
item comes back as an `Applied`: its outcome and what the single request
would have answered, a model, a Problem, or None (a drop's 204).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg

from ..db import Work
from ..errors import conflict
from ..models import Course, Student, from_row
from ..outcomes import Outcome
from ..sql import QUERIES
from . import courses as courses_
from . import terms as terms_
from .courses import as_json, term_missing
from .enrollments import Applied, applied
from .retry import retried
from .students import email_taken
from .terms import out_of_order, term

Q = QUERIES.batches


@dataclass(slots=True)
class EnrollItem:
    drop: bool
    student_id: int | None
    student_email: str | None
    course_id: int | None
    course_term: int | None  # the term of course_code (None: no term)
    course_code: str | None
    waitlist: bool
    overrides: str | None  # the rules a registrar overrode, comma-separated
    student_sourced_id: str | None = None
    course_sourced_id: str | None = None
    sourced_id: str | None = None  # the new enrollment's (None: a new UUID)


@dataclass(slots=True)
class StudentItem:
    name: str
    email: str
    sourced_id: str | None = None  # None: the email is the key


@dataclass(slots=True)
class CourseItem:
    code: str
    title: str
    # None: keep (on an update) or no limit (on a create) when not set_capacity.
    set_capacity: bool
    capacity: int | None
    waitlist_capacity: int | None  # None: keep, or 0 on a create
    # The course's term, with the code its key (None: the courses without one).
    term_id: int | None = None
    # None: keep, or the default on a create.
    credits: Decimal | None = None
    meetings: list[dict[str, Any]] | None = None
    prerequisites: list[str] | None = None
    sourced_id: str | None = None  # None: the code in the term is the key


@dataclass(slots=True)
class TermItem:
    code: str
    title: str
    starts_on: date
    ends_on: date
    # The other fields the item gives, by name: an update keeps those it
    # does not give, a create stores null.
    given: dict[str, Any]
    sourced_id: str | None = None  # None: the code is the key


async def _run(work: Work, conn: asyncpg.Connection, statement: tuple[Any, ...]) -> list:
    """The batch's statement, run again on what retried() runs it again for, and once on a
    unique violation (see the module's docstring); a second one, or one in a
    transaction, is the whole request's 409."""
    attempts = 2 if work.retries_alone else 1
    for attempt in range(1, attempts + 1):
        try:
            return await retried(work, _fetch, conn, statement)
        except asyncpg.UniqueViolationError:
            if attempt == attempts:
                raise conflict(
                    "a concurrent request took an email, code or sourced_id an item names"
                    " while this batch ran; nothing of it was applied: send it again"
                ) from None
    raise AssertionError("unreachable")


async def _fetch(conn: asyncpg.Connection, statement: tuple[Any, ...]) -> list[asyncpg.Record]:
    return await conn.fetch(*statement)


# The fields of a term item that apply only when given.
_OPTIONAL = ("registration_opens_at", "registration_closes_at", "drop_deadline", "max_credits")


async def enroll(
    conn: asyncpg.Connection, *, items: list[EnrollItem], actor: str, work: Work
) -> list[Applied]:
    """Enroll or drop, item by item; one Applied per item, in order."""
    statement = Q.enroll.bind(
        drops=[i.drop for i in items],
        student_ids=[i.student_id for i in items],
        student_emails=[i.student_email for i in items],
        student_sourced_ids=[i.student_sourced_id for i in items],
        course_ids=[i.course_id for i in items],
        course_terms=[i.course_term for i in items],
        course_codes=[i.course_code for i in items],
        course_sourced_ids=[i.course_sourced_id for i in items],
        waitlists=[i.waitlist for i in items],
        overrides=[i.overrides for i in items],
        sourced_ids=[i.sourced_id for i in items],
        actor=actor,
    )
    rows = await _run(work, conn, statement)
    return [
        applied(
            row,
            student_email=item.student_email,
            student_sourced_id=item.student_sourced_id,
            course_code=item.course_code,
            course_sourced_id=item.course_sourced_id,
            sourced_id=item.sourced_id,
        )
        for item, row in zip(items, rows, strict=True)
    ]


async def students(
    conn: asyncpg.Connection, *, items: list[StudentItem], actor: str, work: Work
) -> list[Applied]:
    """Create, or update the student with that sourced_id, else email; one Applied per item."""
    statement = Q.students.bind(
        names=[i.name for i in items],
        emails=[i.email for i in items],
        sourced_ids=[i.sourced_id for i in items],
        actor=actor,
    )
    rows = await _run(work, conn, statement)
    return [_student(item, row) for item, row in zip(items, rows, strict=True)]


def _student(item: StudentItem, row: asyncpg.Record) -> Applied:
    outcome = Outcome(row["outcome"])
    if outcome is Outcome.EMAIL_TAKEN:
        return Applied(outcome, email_taken(item.email))
    return Applied(outcome, from_row(Student, row))


async def courses(
    conn: asyncpg.Connection, *, items: list[CourseItem], actor: str, work: Work
) -> list[Applied]:
    """Create, or update the course with that sourced_id, else that code in that term; one
    Applied per item, in order."""
    statement = Q.courses.bind(
        codes=[i.code for i in items],
        titles=[i.title for i in items],
        set_capacities=[i.set_capacity for i in items],
        capacities=[i.capacity for i in items],
        waitlist_capacities=[i.waitlist_capacity for i in items],
        term_ids=[i.term_id for i in items],
        credits=[i.credits for i in items],
        meetings=[as_json(i.meetings) for i in items],
        prerequisites=[as_json(i.prerequisites) for i in items],
        sourced_ids=[i.sourced_id for i in items],
        actor=actor,
    )
    rows = await _run(work, conn, statement)
    return [_course(item, row) for item, row in zip(items, rows, strict=True)]


def _course(item: CourseItem, row: asyncpg.Record) -> Applied:
    outcome = Outcome(row["outcome"])
    # The details PATCH /courses/{id} gives (repositories/courses.py).
    if outcome is Outcome.CAPACITY_BELOW_ENROLLMENTS:
        detail = f"course {row['id']} has more enrolled students than {item.capacity}"
        return Applied(outcome, conflict(detail, outcome))
    if outcome is Outcome.WAITLIST_CAPACITY_BELOW_WAITING:
        detail = f"course {row['id']} has more students waiting than {item.waitlist_capacity}"
        return Applied(outcome, conflict(detail, outcome))
    if outcome is Outcome.UNKNOWN_TERM:
        return Applied(outcome, term_missing(item.term_id))
    if outcome is Outcome.CODE_TAKEN:
        return Applied(outcome, courses_.code_taken(item.code))
    if outcome is Outcome.COURSE_NOT_EMPTY:
        return Applied(outcome, courses_.not_empty(row["id"]))
    return Applied(outcome, from_row(Course, row))


async def terms(
    conn: asyncpg.Connection, *, items: list[TermItem], actor: str, work: Work
) -> list[Applied]:
    """Create, or update the term with that sourced_id, else that code; one Applied per item."""
    arrays: dict[str, list[Any]] = {
        "codes": [i.code for i in items],
        "titles": [i.title for i in items],
        "starts_on": [i.starts_on for i in items],
        "ends_on": [i.ends_on for i in items],
    }
    for name in _OPTIONAL:
        arrays[f"set_{name}"] = [name in i.given for i in items]
        arrays[name] = [i.given.get(name) for i in items]
    arrays["sourced_ids"] = [i.sourced_id for i in items]
    statement = Q.terms.bind(**arrays, actor=actor)
    rows = await _run(work, conn, statement)
    return [_term(item, row) for item, row in zip(items, rows, strict=True)]


def _term(item: TermItem, row: asyncpg.Record) -> Applied:
    outcome = Outcome(row["outcome"])
    if outcome is Outcome.INVALID:
        # The 422 PATCH /terms/{id} gives (repositories/terms.py).
        given = {"starts_on", "ends_on", *item.given}
        return Applied(outcome, out_of_order(row["out_of_order"], given))
    if outcome is Outcome.CODE_TAKEN:
        return Applied(outcome, terms_.code_taken(item.code))
    return Applied(outcome, term(row))
