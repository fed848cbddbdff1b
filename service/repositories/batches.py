"""Batches: many enrollments, students, courses or terms applied in one statement.

Each call runs one statement of sql/batches.sql, a function of
sql/functions/batches.sql (batch_terms: terms.sql) that applies the items
in order (batch_enroll hands each run of enroll items to enroll_run() and
each drop to drop_enrollment(), the functions of the single requests). It
commits alone, so a deadlock with another batch leaves nothing behind and
the whole call runs again (retry.py). Each item comes back as an `Applied`:
its outcome and what the single request would have answered, a model, a
Problem, or None (a drop's 204).
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
from .courses import as_json, term_missing
from .enrollments import Applied, applied
from .retry import retried
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


@dataclass(slots=True)
class TermItem:
    code: str
    title: str
    starts_on: date
    ends_on: date
    # The other fields the item gives, by name: an update keeps those it
    # does not give, a create stores null.
    given: dict[str, Any]


# The fields of a term item that apply only when given.
_OPTIONAL = ("registration_opens_at", "registration_closes_at", "drop_deadline", "max_credits")


async def enroll(
    conn: asyncpg.Connection, *, items: list[EnrollItem], actor: str, work: Work
) -> list[Applied]:
    """Enroll or drop, item by item; one Applied per item, in order."""
    arrays = (
        [i.drop for i in items],
        [i.student_id for i in items],
        [i.student_email for i in items],
        [i.course_id for i in items],
        [i.course_term for i in items],
        [i.course_code for i in items],
        [i.waitlist for i in items],
        [i.overrides for i in items],
    )
    rows = await retried(work, _fetch_enroll, conn, arrays, actor)
    return [
        applied(
            row,
            student_email=item.student_email if item.student_id is None else None,
            course_code=item.course_code if item.course_id is None else None,
        )
        for item, row in zip(items, rows, strict=True)
    ]


async def _fetch_enroll(
    conn: asyncpg.Connection, arrays: tuple[list, ...], actor: str
) -> list[asyncpg.Record]:
    return await conn.fetch(Q.enroll, *arrays, actor)


async def students(
    conn: asyncpg.Connection, *, names: list[str], emails: list[str], actor: str, work: Work
) -> list[Applied]:
    """Create, or rename the student with that email; one Applied per item, in order."""
    rows = await retried(work, _fetch_students, conn, names, emails, actor)
    return [Applied(Outcome(row["outcome"]), from_row(Student, row)) for row in rows]


async def _fetch_students(
    conn: asyncpg.Connection, names: list[str], emails: list[str], actor: str
) -> list[asyncpg.Record]:
    return await conn.fetch(Q.students, names, emails, actor)


async def courses(
    conn: asyncpg.Connection, *, items: list[CourseItem], actor: str, work: Work
) -> list[Applied]:
    """Create, or update the course with that code in that term; one Applied per item, in order."""
    arrays = (
        [i.code for i in items],
        [i.title for i in items],
        [i.set_capacity for i in items],
        [i.capacity for i in items],
        [i.waitlist_capacity for i in items],
        [i.term_id for i in items],
        [i.credits for i in items],
        [as_json(i.meetings) for i in items],
        [as_json(i.prerequisites) for i in items],
    )
    rows = await retried(work, _fetch_courses, conn, arrays, actor)
    return [_course(item, row) for item, row in zip(items, rows, strict=True)]


async def _fetch_courses(
    conn: asyncpg.Connection, arrays: tuple[list, ...], actor: str
) -> list[asyncpg.Record]:
    return await conn.fetch(Q.courses, *arrays, actor)


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
    return Applied(outcome, from_row(Course, row))


async def terms(
    conn: asyncpg.Connection, *, items: list[TermItem], actor: str, work: Work
) -> list[Applied]:
    """Create, or update the term with that code; one Applied per item, in order."""
    arrays: dict[str, list[Any]] = {
        "codes": [i.code for i in items],
        "titles": [i.title for i in items],
        "starts_on": [i.starts_on for i in items],
        "ends_on": [i.ends_on for i in items],
    }
    for name in _OPTIONAL:
        arrays[f"set_{name}"] = [name in i.given for i in items]
        arrays[name] = [i.given.get(name) for i in items]
    statement = Q.terms.bind(**arrays, actor=actor)
    rows = await retried(work, _fetch_terms, conn, statement)
    return [_term(item, row) for item, row in zip(items, rows, strict=True)]


async def _fetch_terms(
    conn: asyncpg.Connection, statement: tuple[Any, ...]
) -> list[asyncpg.Record]:
    return await conn.fetch(*statement)


def _term(item: TermItem, row: asyncpg.Record) -> Applied:
    outcome = Outcome(row["outcome"])
    if outcome is Outcome.INVALID:
        # The 422 PATCH /terms/{id} gives (repositories/terms.py).
        given = {"starts_on", "ends_on", *item.given}
        return Applied(outcome, out_of_order(row["out_of_order"], given))
    return Applied(outcome, term(row))
