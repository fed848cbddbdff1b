"""Courses."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

from ..db import Work
from ..errors import (
    FieldError,
    Problem,
    conflict,
    invalid,
    precondition_failed,
    sourced_id_taken,
)
from ..models import Course, Page, Versioned, from_row, from_rows
from ..sql import QUERIES
from . import search
from .retry import retried

Q = QUERIES.courses

# Tells PATCH apart: "capacity absent" versus "capacity set to null" (term_id too).
UNCHANGED = object()


def code_taken(code: str) -> Problem:
    """The 409 of a code taken in the course's term (batches.py too)."""
    return conflict(f"a course with code {code} already exists in its term", "code-taken")


def not_empty(course_id: int) -> Problem:
    """The 409 of a course with students moved to another term (batches.py too)."""
    return conflict(
        f"course {course_id} has students enrolled or waiting: its term cannot change"
        " until they have left",
        "course-not-empty",
    )


def term_missing(term_id: object) -> Problem:
    """The 422 of a course naming a term that does not exist (batches.py too)."""
    return invalid([FieldError("term_id", f"term {term_id} does not exist")])


def as_json(value: list[Any] | None) -> str | None:
    """A list as the JSON text the statements take for jsonb (no asyncpg codec is set)."""
    return None if value is None else orjson.dumps(value).decode()


def _changed(course_id: int) -> Problem:
    return precondition_failed(f"course {course_id} has changed: If-Match names no current version")


def _versioned(row: asyncpg.Record) -> Versioned[Course]:
    # The version is the row's xmin (sql/courses.sql).
    return Versioned(from_row(Course, row), row["xmin"])


async def get(conn: asyncpg.Connection, *, course_id: int) -> Versioned[Course] | None:
    row = await conn.fetchrow(Q.get_course, course_id)
    return _versioned(row) if row else None


async def list_page(
    conn: asyncpg.Connection,
    *,
    after: int,
    limit: int,
    code: str | None = None,
    q: str | None = None,
    term_id: int | None = None,
    sourced_id: str | None = None,
    **bounds: int,
) -> Page[Course]:
    """A page after id `after`; with `code` (any letter case), `q` (contained),
    `term_id` and `sourced_id` (exact), of those only."""
    if sourced_id is not None:
        if q is not None:
            await search.check(conn, q)
        statement = Q.list_courses_by_sourced_id.bind(
            after=after, sourced_id=sourced_id, code=code, q=q, term_id=term_id
        )
        # At most one: the sourced_id is unique.
        return Page(from_rows(Course, await conn.fetch(*statement)), None)
    if code is not None:
        if q is not None:
            await search.check(conn, q)
        rows = await conn.fetch(Q.list_courses_by_code, after, code, limit + 1, q, term_id)
    elif q is not None:
        found = await search.page(
            conn, "courses", after=after, text=q, limit=limit + 1, term_id=term_id, **bounds
        )
        items = from_rows(Course, found.rows[:limit])
        if len(found.rows) > limit:
            return Page(items, items[-1].id)
        # A walk that stopped short of the table's end: the next page resumes there.
        return Page(items, found.walked_to)
    elif term_id is not None:
        rows = await conn.fetch(Q.list_courses_by_term, after, term_id, limit + 1)
    else:
        rows = await conn.fetch(Q.list_courses, after, limit + 1)
    items = from_rows(Course, rows[:limit])
    return Page(items, items[-1].id if len(rows) > limit else None)


async def create(
    conn: asyncpg.Connection,
    *,
    code: str,
    title: str,
    capacity: int | None,
    waitlist_capacity: int = 0,
    term_id: int | None = None,
    credits: Decimal = Decimal(0),
    meetings: list[dict[str, Any]] | None = None,
    prerequisites: list[str] | None = None,
    sourced_id: str | None = None,
    actor: str,
) -> Course:
    """A new course, with `sourced_id` or a new UUID; 409 when the code (in the term) or
    the sourced_id is taken, 422 naming term_id when its term does not exist."""
    statement = Q.create_course.bind(
        code=code,
        title=title,
        capacity=capacity,
        waitlist_capacity=waitlist_capacity,
        term_id=term_id,
        credits=credits,
        meetings=as_json(meetings or []),
        prerequisites=prerequisites or [],
        sourced_id=sourced_id,
        actor=actor,
    )
    try:
        row = await conn.fetchrow(*statement)
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "courses_sourced_id_key":
            raise sourced_id_taken("course", sourced_id or "") from None
        raise code_taken(code) from None
    except asyncpg.ForeignKeyViolationError as exc:
        if exc.constraint_name == "courses_term_id_fkey":
            raise term_missing(term_id) from None
        raise
    return from_row(Course, row)


async def update(
    conn: asyncpg.Connection,
    *,
    course_id: int,
    code: str | None,
    title: str | None,
    capacity: int | object | None = UNCHANGED,
    waitlist_capacity: int | None = None,
    term_id: int | object | None = UNCHANGED,
    credits: Decimal | None = None,
    meetings: list[dict[str, Any]] | None = None,
    prerequisites: list[str] | None = None,
    if_match: tuple[str, ...] | None = None,
    actor: str,
    work: Work,
) -> Versioned[Course] | None:
    """Change the given fields (None, or UNCHANGED where None is a value: keep).

    A raised capacity promotes from the waitlist at once, and so may changed
    credits, meetings or prerequisites (the rules' triggers). Only if the
    row's version is one `if_match` names (None: any). None when the course
    does not exist; 412 when it does, at another version.
    """
    changes = _Changes(
        code, title, capacity, waitlist_capacity, term_id, credits, meetings, prerequisites
    )
    updated = await retried(work, _update, conn, course_id, changes, if_match, actor)
    if updated is None and if_match is not None and await conn.fetchrow(Q.get_course, course_id):
        raise _changed(course_id)
    return updated


@dataclass(frozen=True, slots=True)
class _Changes:
    code: str | None
    title: str | None
    capacity: int | object | None
    waitlist_capacity: int | None
    term_id: int | object | None
    credits: Decimal | None
    meetings: list[dict[str, Any]] | None
    prerequisites: list[str] | None


async def _update(
    conn: asyncpg.Connection,
    course_id: int,
    c: _Changes,
    if_match: tuple[str, ...] | None,
    actor: str,
) -> Versioned[Course] | None:
    set_capacity = c.capacity is not UNCHANGED
    set_term = c.term_id is not UNCHANGED
    promoting = set_capacity or c.credits is not None or c.meetings is not None
    promoting = promoting or c.prerequisites is not None
    try:
        # One transaction: the promotions a raised capacity (or a change to
        # the rules a student must meet) makes happen in AFTER triggers,
        # which RETURNING does not see, so the course is read again before
        # anything else can change it.
        async with conn.transaction():
            row = await conn.fetchrow(
                Q.update_course,
                course_id,
                c.code,
                c.title,
                set_capacity,
                c.capacity if set_capacity else None,
                c.waitlist_capacity,
                if_match,
                actor,
                set_term,
                c.term_id if set_term else None,
                c.credits,
                as_json(c.meetings),
                c.prerequisites,
            )
            if row is not None and promoting:
                row = await conn.fetchrow(Q.get_course, course_id)
    except asyncpg.UniqueViolationError:
        if c.code is not None:
            raise code_taken(c.code) from None
        where = "among courses without a term" if c.term_id is None else f"in term {c.term_id}"
        raise conflict(f"the code of course {course_id} is taken {where}", "code-taken") from None
    except asyncpg.ForeignKeyViolationError as exc:
        if exc.constraint_name == "courses_term_id_fkey":
            raise term_missing(c.term_id) from None
        raise
    except asyncpg.CheckViolationError as exc:
        if exc.constraint_name == "courses_enrolled_within_capacity":
            raise conflict(
                f"course {course_id} has more enrolled students than {c.capacity}",
                "capacity-below-enrollments",
            ) from None
        if exc.constraint_name == "courses_waitlisted_within_capacity":
            raise conflict(
                f"course {course_id} has more students waiting than {c.waitlist_capacity}",
                "waitlist-capacity-below-waiting",
            ) from None
        if exc.constraint_name == "courses_term_id_not_empty":
            raise not_empty(course_id) from None
        raise
    return _versioned(row) if row else None


async def delete(
    conn: asyncpg.Connection,
    *,
    course_id: int,
    if_match: tuple[str, ...] | None = None,
    actor: str,
    work: Work,
) -> bool:
    """False when the course does not exist; 412 when it does, at a version `if_match` does not name."""
    deleted = await retried(work, _delete, conn, course_id, if_match, actor)
    if not deleted and if_match is not None and await conn.fetchrow(Q.get_course, course_id):
        raise _changed(course_id)
    return deleted


async def _delete(
    conn: asyncpg.Connection, course_id: int, if_match: tuple[str, ...] | None, actor: str
) -> bool:
    return await conn.fetchval(Q.delete_course, course_id, if_match, actor) is not None
