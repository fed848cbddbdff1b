"""Idempotency keys: the stored answers of POSTs sent with an Idempotency-Key.

Every function but `expire` runs inside the request's transaction, which
service/idempotency.py opens and commits.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from ..models import from_row
from ..sql import QUERIES

Q = QUERIES.idempotency

# The keys one expire_keys statement deletes at most (its limit).
EXPIRE_BATCH = 5000
# The most bytes a stored body may take, compressed: a larger one is not kept
# (the status, content type and Location are). The service's answers compress
# to a few hundred bytes; a batch of 1,000 items rarely to more than 30 KiB.
MAX_STORED_BODY = 64 * 1024
# Bodies this long or longer are compressed off the event loop (zlib lets go
# of the GIL): a few milliseconds per MiB.
COMPRESS_IN_THREAD = 64 * 1024


@dataclass(frozen=True, slots=True)
class Answer:
    """What was sent to the first request with a key, and what that request was."""

    fingerprint: bytes
    status: int
    content_type: str | None
    location: str | None
    body: bytes | None  # None: not kept (too large, or redacted when a student was deleted)


@dataclass(frozen=True, slots=True)
class Found:
    """What get() found under a key: its answer, or else the scope's live keys (see get())."""

    answer: Answer | None
    held: int


async def lock(conn: asyncpg.Connection, *, lock_id: int) -> bool:
    """Take the key's advisory lock to the end of the transaction; False if another holds it."""
    return await conn.fetchval(Q.lock_key, lock_id)


async def get(
    conn: asyncpg.Connection, *, scope: str, key: str, ttl: timedelta, limit: int
) -> Found:
    """The live answer under `key`, or, when there is none, how many live keys `scope` holds.

    The count is kept by triggers (sql/functions/idempotency.sql), not
    counted: a few rows read, however many keys the scope holds. It is exact
    below `limit`; from `limit` on, only as far as needed to compare with it
    (`limit` - 1 when expired keys not yet deleted bring the live ones below
    it).
    """
    row = await conn.fetchrow(Q.get_answer, scope, key, ttl, limit)
    if row["status"] is None:
        return Found(None, row["held"])
    body = row["body"]
    if body is not None and row["compressed"]:
        body = zlib.decompress(body)
    return Found(from_row(Answer, row, body=body), 0)


async def first_expiry(conn: asyncpg.Connection, *, scope: str, ttl: timedelta) -> int | None:
    """Seconds until the oldest live key of `scope` expires (None when it has none)."""
    return await conn.fetchval(Q.first_expiry, scope, ttl)


async def store(
    conn: asyncpg.Connection,
    *,
    key: str,
    answer: Answer,
    ttl: timedelta,
    actor: str,
    emails: Sequence[str] = (),
    student_id: int | None = None,
) -> bool:
    """Keep `answer` under `key` in the scope of `actor` (its token's name, '' without tokens).

    The body is stored compressed when that is shorter, and not at all when
    it would still take more than MAX_STORED_BODY bytes; `emails` are those
    it carries, which link it to their students (deleting one drops the
    body), as does `student_id`, the student the request's path names.
    Whether the body was kept.
    """
    body, compressed = await _compress(answer.body) if answer.body is not None else (None, False)
    if body is not None and len(body) > MAX_STORED_BODY:
        body, compressed = None, False
    stored = await conn.fetchval(
        Q.store_answer,
        key,
        answer.fingerprint,
        answer.status,
        answer.content_type,
        answer.location,
        body,
        ttl,
        actor,
        compressed,
        list(emails),
        student_id,
    )
    if stored is None:
        # The lock is held and no live answer was found under it: cannot happen.
        raise RuntimeError("an idempotency key's live answer was about to be replaced")
    return body is not None or answer.body is None


async def _compress(body: bytes) -> tuple[bytes, bool]:
    """`body` as stored: zlib-compressed when that is shorter, and whether it is."""
    if len(body) >= COMPRESS_IN_THREAD:
        packed = await asyncio.to_thread(zlib.compress, body)
    else:
        packed = zlib.compress(body)
    return (packed, True) if len(packed) < len(body) else (body, False)


async def expire(conn: asyncpg.Connection, *, ttl: timedelta) -> int:
    """Delete up to EXPIRE_BATCH keys older than `ttl`; how many went."""
    return await conn.fetchval(Q.expire_keys, ttl)
