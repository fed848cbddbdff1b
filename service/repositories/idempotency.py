"""Idempotency keys: the stored answers of POSTs sent with an Idempotency-Key.

Every function but `expire` runs inside the request's transaction, which
service/idempotency.py opens and commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from ..sql import QUERIES

Q = QUERIES.idempotency

# The keys one expire_keys statement deletes at most (its limit).
EXPIRE_BATCH = 5000


@dataclass(frozen=True, slots=True)
class Answer:
    """What was sent to the first request with a key, and what that request was."""

    fingerprint: bytes
    status: int
    content_type: str | None
    location: str | None
    body: bytes


async def lock(conn: asyncpg.Connection, *, lock_id: int) -> bool:
    """Take the key's advisory lock to the end of the transaction; False if another holds it."""
    return await conn.fetchval(Q.lock_key, lock_id)


async def get(conn: asyncpg.Connection, *, scope: str, key: str, ttl: timedelta) -> Answer | None:
    row = await conn.fetchrow(Q.get_answer, scope, key, ttl)
    return Answer(*row) if row else None


async def store(
    conn: asyncpg.Connection, *, key: str, answer: Answer, ttl: timedelta, actor: str
) -> None:
    """Keep `answer` under `key` in the scope of `actor` (its token's name, '' without tokens)."""
    stored = await conn.fetchval(
        Q.store_answer,
        key,
        answer.fingerprint,
        answer.status,
        answer.content_type,
        answer.location,
        answer.body,
        ttl,
        actor,
    )
    if stored is None:
        # The lock is held and no live answer was found under it: cannot happen.
        raise RuntimeError("an idempotency key's live answer was about to be replaced")


async def expire(conn: asyncpg.Connection, *, ttl: timedelta) -> int:
    """Delete up to EXPIRE_BATCH keys older than `ttl`; how many went."""
    return await conn.fetchval(Q.expire_keys, ttl)
