"""A student's settings in a term (time ticket, credit limit) and the credits they take there."""

from __future__ import annotations

import functools
from datetime import datetime
from decimal import Decimal

import asyncpg

from ..db import Work
from ..errors import not_found
from ..models import StudentTerm, from_row, number
from ..sql import QUERIES
from . import promotions

Q = QUERIES.student_terms


def _found(row: asyncpg.Record, student_id: int, term_id: int) -> StudentTerm:
    """The settings get_student_term read; 404 naming the student or the term that does not exist."""
    if row["student_id"] is None:
        raise not_found(f"student {student_id} does not exist")
    if row["term_id"] is None:
        raise not_found(f"term {term_id} does not exist")
    max_credits = row["max_credits"]
    return from_row(
        StudentTerm,
        row,
        max_credits=None if max_credits is None else number(max_credits),
        credits=number(row["credits"]),
    )


async def get(conn: asyncpg.Connection, *, student_id: int, term_id: int) -> StudentTerm:
    """Nulls and 0 credits when nothing was set and the student takes nothing there."""
    row = await conn.fetchrow(Q.get_student_term, student_id, term_id)
    return _found(row, student_id, term_id)


async def put(
    conn: asyncpg.Connection,
    *,
    student_id: int,
    term_id: int,
    registration_opens_at: datetime | None,
    max_credits: Decimal | None,
    actor: str,
    work: Work,
) -> StudentTerm:
    """Set both settings (None: not set); the student may be promoted at once.

    repositories/promotions.py says how. The answer is read after the change,
    in its transaction: a promotion it causes changes the credits in a
    trigger, which RETURNING does not see.
    """
    change = functools.partial(
        _put,
        student_id=student_id,
        term_id=term_id,
        registration_opens_at=registration_opens_at,
        max_credits=max_credits,
    )
    try:
        row = await promotions.locked(
            conn, change, student_id=student_id, term_id=term_id, actor=actor, work=work
        )
    except asyncpg.ForeignKeyViolationError:
        row = None  # the student or the term was deleted meanwhile
    if row is None:
        row = await conn.fetchrow(Q.get_student_term, student_id, term_id)
    return _found(row, student_id, term_id)


async def _put(
    conn: asyncpg.Connection,
    *,
    student_id: int,
    term_id: int,
    registration_opens_at: datetime | None,
    max_credits: Decimal | None,
) -> asyncpg.Record | None:
    args = (student_id, term_id, registration_opens_at, max_credits)
    if await conn.fetchval(Q.put_student_term, *args) is None:
        return None
    return await conn.fetchrow(Q.get_student_term, student_id, term_id)
