"""Lending pool connections to requests, with a bounded wait and a bounded loan."""

from __future__ import annotations

import time

import asyncpg


class Lender:
    """Lends the pool's connections to requests.

    Waiting for a connection is bounded by DB_ACQUIRE_TIMEOUT, but asyncpg's
    timeout costs a timer and a task per request. While fewer connections are
    lent than the pool holds, a free one is in the pool's queue and acquire
    returns without waiting, so the timeout is only armed when it can matter.

    Holding one is bounded too: the lender remembers when each loan began, and
    `overdue()` names those older than `limit` for the watchdog in db.py to
    end. This replaces asyncpg's command_timeout, which arms and cancels two
    timers on every request (one per query, one per release) to catch what
    PostgreSQL's own statement_timeout does not: a server or network that
    stopped answering.
    """

    __slots__ = ("lent", "limit", "loans", "pool", "size", "timeout")

    def __init__(self, pool: asyncpg.Pool, size: int, timeout: float, limit: float) -> None:
        self.pool = pool
        self.size = size
        self.timeout = timeout
        self.limit = limit
        self.lent = 0
        self.loans: dict[Loan, float] = {}  # loan -> time.monotonic() when it began

    def overdue(self, now: float) -> list[Loan]:
        return [loan for loan, since in self.loans.items() if now - since > self.limit]


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
        lender.loans[self] = time.monotonic()
        return self.conn

    async def __aexit__(self, *exc_info: object) -> None:
        lender = self.lender
        del lender.loans[self]
        try:
            await lender.pool.release(self.conn)
        finally:
            lender.lent -= 1
