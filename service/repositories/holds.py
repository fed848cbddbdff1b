"""Holds on students' registration."""

from __future__ import annotations

import functools

import asyncpg

from ..db import Work
from ..models import Hold, Page, from_row, from_rows
from ..sql import QUERIES
from . import promotions

Q = QUERIES.holds


async def get(conn: asyncpg.Connection, *, student_id: int, hold_id: int) -> Hold | None:
    row = await conn.fetchrow(Q.get_hold, student_id, hold_id)
    return from_row(Hold, row) if row else None


async def list_of_student(
    conn: asyncpg.Connection, *, student_id: int, after: int, limit: int
) -> Page[Hold] | None:
    """A page of the student's holds, or None when the student does not exist."""
    rows = await conn.fetch(Q.list_student_holds, student_id, after, limit + 1)
    if not rows:
        return None
    items = from_rows(Hold, [row for row in rows[:limit] if row["id"] is not None])
    return Page(items, items[-1].id if len(rows) > limit else None)


async def create(
    conn: asyncpg.Connection, *, student_id: int, reason: str, actor: str
) -> Hold | None:
    """The new hold, or None when the student does not exist."""
    try:
        row = await conn.fetchrow(Q.create_hold, student_id, reason, actor)
    except asyncpg.ForeignKeyViolationError:
        return None  # the student was deleted meanwhile
    return from_row(Hold, row) if row else None


async def delete(
    conn: asyncpg.Connection, *, student_id: int, hold_id: int, actor: str, work: Work
) -> bool:
    """Remove the hold; the student may be promoted at once (repositories/promotions.py).

    False when the student has no such hold.
    """
    change = functools.partial(_delete, student_id=student_id, hold_id=hold_id)
    return await promotions.locked(
        conn, change, student_id=student_id, term_id=None, actor=actor, work=work
    )


async def _delete(conn: asyncpg.Connection, *, student_id: int, hold_id: int) -> bool:
    return await conn.fetchval(Q.delete_hold, student_id, hold_id) is not None
