"""Running a one-statement change again when the database says it may succeed now.

A statement outside a transaction commits alone, so when PostgreSQL aborts
it, nothing of it is left: running it again is safe. Two aborts call for it:
a deadlock (a promotion locks a course, then a student; deleting a student
locks the student, then their courses), and a refusal by a trigger that only
a concurrent change can cause (the caller names those exceptions).

When the races outlast the attempts, the caller raises Contended: the HTTP
layer answers it with 503 busy, and a request's idempotency transaction
runs again whole.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

T = TypeVar("T")
ATTEMPTS = 5


class Contended(Exception):
    """A change that lost every race with concurrent ones: the same change later may succeed."""


async def retried(
    change: Callable[..., Awaitable[T]],
    conn: asyncpg.Connection,
    *args: Any,
    races: tuple[type[Exception], ...] = (),
) -> T:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return await change(conn, *args)
        except (asyncpg.DeadlockDetectedError, *races):
            if attempt == ATTEMPTS or conn.is_in_transaction():
                raise
    raise AssertionError("unreachable")
