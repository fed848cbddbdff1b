"""Changes that may let a waiting student take a seat at once, made after the locks that needs.

Removing a hold, adding a completion, setting a time ticket or a credit
limit: the triggers of sql/functions/registration.sql promote the student,
in the change's transaction, into every course they wait in where a seat is
free and they are now first among those who may take it. A promotion writes
events, which need the feed locks of those courses held before any row lock
(lock_courses(), sql/functions/events.sql), so lock_student_waits() takes
them first (sql/promotions.sql).

It runs as a statement of its own in the change's transaction, not in a CTE
of the change: PostgreSQL gives the parts of one statement one snapshot,
taken before a lock is waited for, so the change would not see what the
holder of that lock committed (a student who joined a queue meanwhile).
Every statement after it reads a snapshot taken once the locks are held.

A course joined after the locks were taken makes the promotion's event
refuse the whole transaction (serialization_failure, reserve_events() in
sql/functions/events.sql): retried() runs it all again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from ..db import Work
from ..sql import QUERIES
from .retry import retried

Q = QUERIES.promotions
T = TypeVar("T")

Change = Callable[[asyncpg.Connection], Awaitable[T]]


async def locked(
    conn: asyncpg.Connection,
    change: Change[T],
    *,
    student_id: int,
    term_id: int | None,
    actor: str,
    work: Work,
) -> T:
    """`change(conn)`, after the feed locks of the courses the student waits in during the term.

    `term_id` None: in every term. `actor` is set for the transaction's events.
    """
    return await retried(work, _locked, conn, change, student_id, term_id, actor)


async def _locked(
    conn: asyncpg.Connection,
    change: Change[T],
    student_id: int,
    term_id: int | None,
    actor: str,
) -> T:
    # One transaction: the locks are held from before the change's first
    # statement until it commits (inside a request's idempotency transaction,
    # a savepoint of it).
    async with conn.transaction():
        await conn.execute(Q.lock_student_waits, student_id, actor, term_id)
        return await change(conn)
