"""Courses."""

from __future__ import annotations

import asyncpg

from ..db import Work
from ..errors import Problem, conflict, precondition_failed
from ..models import Course, Page, Versioned, from_row, from_rows
from ..sql import QUERIES
from . import search
from .retry import retried

Q = QUERIES.courses

# Tells PATCH apart: "capacity absent" versus "capacity set to null".
UNCHANGED = object()


def _code_taken(code: str) -> Problem:
    return conflict(f"a course with code {code} already exists", "code-taken")


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
    **bounds: int,
) -> Page[Course]:
    """A page after id `after`; with `code` (any letter case) and `q` (contained), of those only."""
    if code is not None:
        if q is not None:
            await search.check(conn, q)
        rows = await conn.fetch(Q.list_courses_by_code, after, code, limit + 1, q)
    elif q is not None:
        found = await search.page(conn, "courses", after=after, text=q, limit=limit + 1, **bounds)
        items = from_rows(Course, found.rows[:limit])
        if len(found.rows) > limit:
            return Page(items, items[-1].id)
        # A walk that stopped short of the table's end: the next page resumes there.
        return Page(items, found.walked_to)
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
    actor: str,
) -> Course:
    try:
        row = await conn.fetchrow(Q.create_course, code, title, capacity, waitlist_capacity, actor)
    except asyncpg.UniqueViolationError:
        raise _code_taken(code) from None
    return from_row(Course, row)


async def update(
    conn: asyncpg.Connection,
    *,
    course_id: int,
    code: str | None,
    title: str | None,
    capacity: int | object | None = UNCHANGED,
    waitlist_capacity: int | None = None,
    if_match: tuple[str, ...] | None = None,
    actor: str,
    work: Work,
) -> Versioned[Course] | None:
    """Change the given fields; a raised capacity promotes from the waitlist at once.

    Only if the row's version is one `if_match` names (None: any). None when
    the course does not exist; 412 when it does, at another version.
    """
    updated = await retried(
        work, _update, conn, course_id, code, title, capacity, waitlist_capacity, if_match, actor
    )
    if updated is None and if_match is not None and await conn.fetchrow(Q.get_course, course_id):
        raise _changed(course_id)
    return updated


async def _update(
    conn: asyncpg.Connection,
    course_id: int,
    code: str | None,
    title: str | None,
    capacity: int | object | None,
    waitlist_capacity: int | None,
    if_match: tuple[str, ...] | None,
    actor: str,
) -> Versioned[Course] | None:
    set_capacity = capacity is not UNCHANGED
    try:
        # One transaction: the promotions a raised capacity makes happen in an
        # AFTER trigger, which RETURNING does not see, so the course is read
        # again before anything else can change it.
        async with conn.transaction():
            row = await conn.fetchrow(
                Q.update_course,
                course_id,
                code,
                title,
                set_capacity,
                capacity if set_capacity else None,
                waitlist_capacity,
                if_match,
                actor,
            )
            if row is not None and set_capacity:
                row = await conn.fetchrow(Q.get_course, course_id)
    except asyncpg.UniqueViolationError:
        raise _code_taken(code or "") from None
    except asyncpg.CheckViolationError as exc:
        if exc.constraint_name == "courses_enrolled_within_capacity":
            raise conflict(
                f"course {course_id} has more enrolled students than {capacity}",
                "capacity-below-enrollments",
            ) from None
        if exc.constraint_name == "courses_waitlisted_within_capacity":
            raise conflict(
                f"course {course_id} has more students waiting than {waitlist_capacity}",
                "waitlist-capacity-below-waiting",
            ) from None
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
