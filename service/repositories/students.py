"""Students."""

from __future__ import annotations

import asyncpg

from ..db import Work
from ..errors import Problem, conflict, precondition_failed, sourced_id_taken
from ..models import Page, Student, Versioned, from_row, from_rows
from ..sql import QUERIES
from . import search
from .retry import retried

Q = QUERIES.students


def email_taken(email: str) -> Problem:
    """The 409 of a taken email (batches.py too)."""
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
    sourced_id: str | None = None,
    **bounds: int,
) -> Page[Student]:
    """A page after id `after`; with `email` (any letter case), `q` (contained) and
    `sourced_id` (exact), of those only."""
    if sourced_id is not None:
        if q is not None:
            await search.check(conn, q)
        statement = Q.list_students_by_sourced_id.bind(
            after=after, sourced_id=sourced_id, email=email, q=q
        )
        # At most one: the sourced_id is unique.
        return Page(from_rows(Student, await conn.fetch(*statement)), None)
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


async def create(
    conn: asyncpg.Connection,
    *,
    name: str,
    email: str,
    sourced_id: str | None = None,
    actor: str,
) -> Student:
    """A new student, with `sourced_id` or a new UUID; 409 when the email or the sourced_id is taken."""
    statement = Q.create_student.bind(name=name, email=email, sourced_id=sourced_id, actor=actor)
    try:
        row = await conn.fetchrow(*statement)
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "students_sourced_id_key":
            raise sourced_id_taken("student", sourced_id or "") from None
        raise email_taken(email) from None
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
        raise email_taken(email or "") from None
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
