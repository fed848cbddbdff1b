"""Completions: the course codes students have passed."""

from __future__ import annotations

import functools
from datetime import datetime

import asyncpg

from ..db import Work
from ..errors import conflict
from ..models import Completion, Page, from_row, from_rows
from ..sql import QUERIES
from . import promotions

Q = QUERIES.completions


async def get(
    conn: asyncpg.Connection, *, student_id: int, completion_id: int
) -> Completion | None:
    row = await conn.fetchrow(Q.get_completion, student_id, completion_id)
    return from_row(Completion, row) if row else None


async def list_of_student(
    conn: asyncpg.Connection, *, student_id: int, after: int, limit: int
) -> Page[Completion] | None:
    """A page of the student's completions, or None when the student does not exist."""
    rows = await conn.fetch(Q.list_student_completions, student_id, after, limit + 1)
    if not rows:
        return None
    items = from_rows(Completion, [row for row in rows[:limit] if row["id"] is not None])
    return Page(items, items[-1].id if len(rows) > limit else None)


async def create(
    conn: asyncpg.Connection,
    *,
    student_id: int,
    code: str,
    completed_at: datetime | None,
    actor: str,
    work: Work,
) -> Completion | None:
    """The new completion (`completed_at` None: now), or None when the student does not exist.

    The student may be promoted at once (repositories/promotions.py). 409
    when they already have the code, in any letter case.
    """
    change = functools.partial(_create, student_id=student_id, code=code, completed_at=completed_at)
    try:
        row = await promotions.locked(
            conn, change, student_id=student_id, term_id=None, actor=actor, work=work
        )
    except asyncpg.UniqueViolationError:
        raise conflict(
            f"student {student_id} already has a completion of {code} (in any letter case)",
            "already-completed",
        ) from None
    except asyncpg.ForeignKeyViolationError:
        return None  # the student was deleted meanwhile
    return from_row(Completion, row) if row else None


async def _create(
    conn: asyncpg.Connection, *, student_id: int, code: str, completed_at: datetime | None
) -> asyncpg.Record | None:
    return await conn.fetchrow(Q.create_completion, student_id, code, completed_at)


async def delete(
    conn: asyncpg.Connection, *, student_id: int, completion_id: int, actor: str
) -> bool:
    """False when the student has no such completion."""
    row = await conn.fetchval(Q.delete_completion, student_id, completion_id, actor)
    return row is not None
