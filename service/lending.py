"""Lending pool connections to requests, with a bounded wait."""

from __future__ import annotations

import asyncpg


class Lender:
    """Lends the pool's connections to requests.

    Waiting for a connection is bounded by DB_ACQUIRE_TIMEOUT, but asyncpg's
    timeout costs a timer and a task per request. While fewer connections are
    lent than the pool holds, a free one is in the pool's queue and acquire
    returns without waiting, so the timeout is only armed when it can matter.
    """

    __slots__ = ("lent", "pool", "size", "timeout")

    def __init__(self, pool: asyncpg.Pool, size: int, timeout: float) -> None:
        self.pool = pool
        self.size = size
        self.timeout = timeout
        self.lent = 0


class Loan:
    __slots__ = ("conn", "lender")

    def __init__(self, lender: Lender) -> None:
        self.lender = lender

    async def __aenter__(self) -> asyncpg.Connection:
        lender = self.lender
        lender.lent += 1  # counted before awaiting: the check below is atomic
        try:
            timeout = None if lender.lent <= lender.size else lender.timeout
            self.conn = await lender.pool.acquire(timeout=timeout)
        except BaseException:
            lender.lent -= 1
            raise
        return self.conn

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await self.lender.pool.release(self.conn)
        finally:
            self.lender.lent -= 1
