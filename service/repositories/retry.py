"""Running a one-statement change again when the database says it may succeed now.

A statement outside a transaction commits alone, so when PostgreSQL aborts
it, nothing of it is left: running it again is safe. The request's Work
says whether its statements run so (db.Autocommit); inside a transaction
(db.InTransaction) the first failure is raised, and the transaction's owner
runs it all again. Two aborts call for it: a deadlock (a promotion locks
a course, then a student; deleting a student locks the student, then their
courses), and a serialization failure (an event about a course its
transaction did not lock first: a student deleted while they joined another
course, reserve_events() in sql/functions/events.sql). When they outlast
the attempts, the request context answers 503 busy (db.BUSY).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from ..db import Work

T = TypeVar("T")
ATTEMPTS = 5


async def retried(
    work: Work,
    change: Callable[..., Awaitable[T]],
    conn: asyncpg.Connection,
    *args: Any,
) -> T:
    """`change(conn, *args)`, run again on a deadlock or a serialization failure if `work` allows."""
    attempts = ATTEMPTS if work.retries_alone else 1
    for attempt in range(1, attempts + 1):
        try:
            return await change(conn, *args)
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")
