"""Students."""

from __future__ import annotations

import asyncpg

from ..db import Work
from ..errors import Problem, conflict, precondition_failed
from ..models import Page, Student, Versioned, from_row, from_rows
from ..sql import QUERIES
from . import search
from .retry import retried

Q = QUERIES.students


def _email_taken(email: str) -> Problem:
    return conflict(f"a student with email {email} already exists", "email-taken")


def _changed(student_id: int) -> Problem:
    return precondition_failed(
        f"student {student_id} has changed: If-Match names no current version"
    )


def _versioned(row: asyncpg.Record) -> Versioned[Student]:
    # The version is the row's xmin (sql/students.sql).
    return Versioned(from_row(Student, row), row["xmin"])


async def get(conn: asyncpg.Connection, *, student_id: int) -> Versioned[Student] | None:
    row = await conn.fetchrow(Q.get_student, student_id)
    return _versioned(row) if row else None


async def list_page(
    conn: asyncpg.Connection,
    *,
    after: int,
    limit: int,
    email: str | None = None,
    q: str | None = None,
    **bounds: int,
) -> Page[Student]:
    """A page after id `after`; with `email` (any letter case) and `q` (contained), of those only."""
    if email is not None:
        if q is not None:
            await search.check(conn, q)
        rows = await conn.fetch(Q.list_students_by_email, after, email, limit + 1, q)
    elif q is not None:
        found = await search.page(conn, "students", after=after, text=q, limit=limit + 1, **bounds)
        items = from_rows(Student, found.rows[:limit])
        if len(found.rows) > limit:
            return Page(items, items[-1].id)
        # A walk that stopped short of the table's end: the next page resumes there.
        return Page(items, found.walked_to)
    else:
        rows = await conn.fetch(Q.list_students, after, limit + 1)
    items = from_rows(Student, rows[:limit])
    return Page(items, items[-1].id if len(rows) > limit else None)


async def create(conn: asyncpg.Connection, *, name: str, email: str, actor: str) -> Student:
    try:
        row = await conn.fetchrow(Q.create_student, name, email, actor)
    except asyncpg.UniqueViolationError:
        raise _email_taken(email) from None
    return from_row(Student, row)


async def update(
    conn: asyncpg.Connection,
    *,
    student_id: int,
    name: str | None,
    email: str | None,
    if_match: tuple[str, ...] | None = None,
    actor: str,
) -> Versioned[Student] | None:
    """Change the given fields if the row's version is one `if_match` names (None: any).

    None when the student does not exist; 412 when it does, at another version.
    """
    try:
        row = await conn.fetchrow(Q.update_student, student_id, name, email, if_match, actor)
    except asyncpg.UniqueViolationError:
        raise _email_taken(email or "") from None
    if row is None and if_match is not None and await conn.fetchrow(Q.get_student, student_id):
        raise _changed(student_id)
    return _versioned(row) if row else None


async def delete(
    conn: asyncpg.Connection,
    *,
    student_id: int,
    if_match: tuple[str, ...] | None = None,
    actor: str,
    work: Work,
) -> bool:
    """Delete; their seats go to the heads of the queues in the same statement.

    False when the student does not exist; 412 when it does, at a version
    `if_match` does not name.
    """
    deleted = await retried(work, _delete, conn, student_id, if_match, actor)
    if not deleted and if_match is not None and await conn.fetchrow(Q.get_student, student_id):
        raise _changed(student_id)
    return deleted


async def _delete(
    conn: asyncpg.Connection, student_id: int, if_match: tuple[str, ...] | None, actor: str
) -> bool:
    return await conn.fetchval(Q.delete_student, student_id, if_match, actor) is not None
