"""Waitlists: who waits for a seat in which course, in queue order."""

from __future__ import annotations

import asyncpg

from ..db import Work
from ..models import Page, WaitlistedStudent, WaitlistEntry, from_row, from_rows
from ..sql import QUERIES
from .retry import retried

Q = QUERIES.waitlist


async def get(conn: asyncpg.Connection, *, student_id: int, course_id: int) -> WaitlistEntry | None:
    row = await conn.fetchrow(Q.get_entry, student_id, course_id)
    return from_row(WaitlistEntry, row) if row else None


async def list_courses_of_student(
    conn: asyncpg.Connection, *, student_id: int, after: int, limit: int
) -> Page[WaitlistEntry] | None:
    """A page of the queues the student is in, or None when the student does not exist."""
    rows = await conn.fetch(Q.list_student_waitlist, student_id, after, limit + 1)
    if not rows:
        return None
    items = from_rows(WaitlistEntry, [row for row in rows[:limit] if row["id"] is not None])
    return Page(items, items[-1].id if len(rows) > limit else None)


async def list_students_of_course(
    conn: asyncpg.Connection, *, course_id: int, after: int, limit: int
) -> Page[WaitlistedStudent] | None:
    """A page of the course's queue, head first, or None when the course does not exist.

    The page's key is the queue key (seq) of its last entry, not a student id.
    """
    rows = await conn.fetch(Q.list_course_waitlist, course_id, after, limit + 1)
    if not rows:
        return None
    shown = [row for row in rows[:limit] if row["id"] is not None]
    items = from_rows(WaitlistedStudent, shown)
    return Page(items, shown[-1]["seq"] if len(rows) > limit else None)


async def leave(
    conn: asyncpg.Connection, *, student_id: int, course_id: int, actor: str, work: Work
) -> bool:
    return await retried(work, _leave, conn, student_id, course_id, actor)


async def _leave(conn: asyncpg.Connection, student_id: int, course_id: int, actor: str) -> bool:
    return await conn.fetchval(Q.leave, student_id, course_id, actor) is not None
