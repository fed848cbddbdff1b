"""Courses."""

from __future__ import annotations

import asyncpg

from ..errors import Problem, conflict
from ..models import Course, Page
from ..sql import QUERIES

Q = QUERIES.courses

# Tells PATCH apart: "capacity absent" versus "capacity set to null".
UNCHANGED = object()


def _code_taken(code: str) -> Problem:
    return conflict(f"a course with code {code} already exists", "code-taken")


async def get(conn: asyncpg.Connection, *, course_id: int) -> Course | None:
    row = await conn.fetchrow(Q.get_course, course_id)
    return Course(*row) if row else None


async def list_page(conn: asyncpg.Connection, *, after: int, limit: int) -> Page[Course]:
    rows = await conn.fetch(Q.list_courses, after, limit + 1)
    items = [Course(*row) for row in rows[:limit]]
    return Page(items, items[-1].id if len(rows) > limit else None)


async def create(
    conn: asyncpg.Connection, *, code: str, title: str, capacity: int | None
) -> Course:
    try:
        row = await conn.fetchrow(Q.create_course, code, title, capacity)
    except asyncpg.UniqueViolationError:
        raise _code_taken(code) from None
    return Course(*row)


async def update(
    conn: asyncpg.Connection,
    *,
    course_id: int,
    code: str | None,
    title: str | None,
    capacity: int | object | None = UNCHANGED,
) -> Course | None:
    set_capacity = capacity is not UNCHANGED
    try:
        row = await conn.fetchrow(
            Q.update_course,
            course_id,
            code,
            title,
            set_capacity,
            capacity if set_capacity else None,
        )
    except asyncpg.UniqueViolationError:
        raise _code_taken(code or "") from None
    except asyncpg.CheckViolationError as exc:
        if exc.constraint_name != "courses_capacity_enrollments":
            raise
        raise conflict(
            f"course {course_id} has more enrolled students than {capacity}",
            "capacity-below-enrollments",
        ) from None
    return Course(*row) if row else None


async def delete(conn: asyncpg.Connection, *, course_id: int) -> bool:
    return await conn.fetchval(Q.delete_course, course_id) is not None
