"""Students."""

from __future__ import annotations

import asyncpg

from ..errors import Problem, conflict
from ..models import Page, Student
from ..sql import QUERIES
from . import search
from .retry import retried
from .search import contains

Q = QUERIES.students


def _email_taken(email: str) -> Problem:
    return conflict(f"a student with email {email} already exists", "email-taken")


async def get(conn: asyncpg.Connection, *, student_id: int) -> Student | None:
    row = await conn.fetchrow(Q.get_student, student_id)
    return Student(*row) if row else None


async def list_page(
    conn: asyncpg.Connection,
    *,
    after: int,
    limit: int,
    email: str | None = None,
    q: str | None = None,
    bound: int = search.BOUND,
) -> Page[Student]:
    """A page after id `after`; with `email` (any letter case) and `q` (contained), of those only."""
    if email is not None:
        pattern = contains(q) if q is not None else None
        rows = await conn.fetch(Q.list_students_by_email, after, email, limit + 1, pattern)
    elif q is not None:
        rows = await search.page(conn, Q, after=after, text=q, limit=limit + 1, bound=bound)
    else:
        rows = await conn.fetch(Q.list_students, after, limit + 1)
    items = [Student(*row) for row in rows[:limit]]
    return Page(items, items[-1].id if len(rows) > limit else None)


async def create(conn: asyncpg.Connection, *, name: str, email: str, actor: str) -> Student:
    try:
        row = await conn.fetchrow(Q.create_student, name, email, actor)
    except asyncpg.UniqueViolationError:
        raise _email_taken(email) from None
    return Student(*row)


async def update(
    conn: asyncpg.Connection,
    *,
    student_id: int,
    name: str | None,
    email: str | None,
    actor: str,
) -> Student | None:
    try:
        row = await conn.fetchrow(Q.update_student, student_id, name, email, actor)
    except asyncpg.UniqueViolationError:
        raise _email_taken(email or "") from None
    return Student(*row) if row else None


async def delete(conn: asyncpg.Connection, *, student_id: int, actor: str) -> bool:
    """Delete; their seats go to the heads of the queues in the same statement."""
    return await retried(_delete, conn, student_id, actor)


async def _delete(conn: asyncpg.Connection, student_id: int, actor: str) -> bool:
    return await conn.fetchval(Q.delete_student, student_id, actor) is not None
