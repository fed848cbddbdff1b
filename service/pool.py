"""The connection pool: asyncpg connections lent to one request at a time.

asyncpg's own pool costs about 100k instructions to lend and take back one
connection (callgrind, a sixth of a whole GET): a proxy object, a future and
an inactivity timer per loan, and on release a task for `asyncio.shield`, a
timeout context and two reset coroutines. The service needs none of that:
it never changes session state, so a connection goes back as it is unless
something went wrong. This pool keeps its free connections in a list, and
lending one is a `pop()`. Kept by make bench before and after it (28 Nov,
same data, 4-8 rounds a run): GET a student's courses from 0.81-0.86 to
1.01-1.02 of the reference, enroll from 0.85-0.96 to 1.00-1.04.

- Free connections are a stack: the most recently used goes out first, and
  those no request needed sink to the bottom, where `shrink()` closes them.
- When none is free, a request opens a new connection (up to `max_size`)
  or waits, first come first served, at most `acquire_timeout` seconds
  (then TimeoutError, a 503). No timer is armed unless a request waits.
- A connection that comes back closed (the server went away, the watchdog
  ended it) frees its place at once. So does one that comes back with an
  error of `UNFIT` (it reaches a read-only node, or asyncpg lost track of
  its protocol state): closed on the spot, not lent again. One that comes
  back from a cancelled request, or inside a transaction, is closed
  gracefully first, which has PostgreSQL cancel a query still running
  (`_retire`).
- Every loan's start is remembered, so `overdue()` can name those held too
  long for the watchdog in db.py to end. This replaces asyncpg's
  command_timeout, which arms and cancels two timers per request to catch
  what PostgreSQL's statement_timeout does not: a server or network that
  stopped answering.

Not carried over from asyncpg's pool: recycling a connection after a number
of queries (max_queries) and `expire_connections()`; nothing here used them.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

import asyncpg

CLOSE_TIMEOUT = 10.0  # seconds a graceful close of a retired connection may take

Connect = Callable[[], Awaitable[asyncpg.Connection]]

# Errors after which a connection is never lent again but terminated, so that
# the next request opens a fresh one. During a failover HAProxy may still
# route to a node that is (or has just become) a standby: every write on that
# connection would answer 25006 however long it stays, while a new connection
# reaches the new leader. asyncpg's InternalClientError ("cannot switch to
# state ...") means its protocol lost track of the connection's state: a
# graceful close could wait on it, so it is terminated too.
UNFIT = (asyncpg.exceptions.ReadOnlySQLTransactionError, asyncpg.exceptions.InternalClientError)


class PoolExhausted(TimeoutError):
    """No connection became free within acquire_timeout: every one is busy (db.BUSY)."""


class PoolClosed(ConnectionError):
    """The pool is closing: no more connections are lent (a 503, like any OSError)."""


class Pool:
    __slots__ = (
        "_connect",
        "_drained",
        "acquire_timeout",
        "closing",
        "free",
        "loans",
        "max_size",
        "min_size",
        "peak",
        "retiring",
        "size",
        "waiters",
    )

    def __init__(
        self, connect: Connect, *, min_size: int, max_size: int, acquire_timeout: float
    ) -> None:
        self._connect = connect
        self.min_size = min_size
        self.max_size = max_size
        self.acquire_timeout = acquire_timeout
        self.free: list[asyncpg.Connection] = []
        self.size = 0  # open connections, and those being opened
        self.loans: dict[Loan, float] = {}  # loan -> time.monotonic() when it began
        self.peak = 0  # the most loans at once since the last shrink()
        # Requests waiting for a connection; a None result means "a place is
        # free: open one".
        self.waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self.retiring: set[asyncio.Task[None]] = set()  # closing connections, see _retire
        self.closing = False
        self._drained: asyncio.Future[None] | None = None

    async def open(self) -> None:
        """Open `min_size` connections; if any fails, close the others and raise."""
        self.size += self.min_size
        results = await asyncio.gather(
            *(self._connect() for _ in range(self.min_size)), return_exceptions=True
        )
        opened = [r for r in results if isinstance(r, asyncpg.Connection)]
        self.size -= self.min_size - len(opened)
        self.free.extend(opened)
        for result in results:
            if isinstance(result, BaseException):
                self.terminate()
                raise result

    def lend(self) -> Loan:
        """`async with pool.lend() as conn`: a connection for the block."""
        return Loan(self)

    async def _get(self) -> asyncpg.Connection:
        """A connection when none was free at first sight: open one or wait."""
        while True:
            if self.closing:
                raise PoolClosed("the connection pool is closing")
            while self.free:
                conn = self.free.pop()
                if not conn.is_closed():
                    return conn
                self.size -= 1
            if self.size < self.max_size:
                self.size += 1
                try:
                    return await self._connect()
                except BaseException:
                    self._forget()
                    raise
            got = await self._wait()
            if got is not None:
                return got

    async def _wait(self) -> asyncpg.Connection | None:
        waiter: asyncio.Future[asyncpg.Connection | None] = (
            asyncio.get_running_loop().create_future()
        )
        self.waiters.append(waiter)
        try:
            async with asyncio.timeout(self.acquire_timeout):
                return await waiter
        except TimeoutError:
            if _handed(waiter):
                return waiter.result()  # the timeout lost the race: use what came
            raise PoolExhausted(
                f"no database connection became free within {self.acquire_timeout:g} s"
            ) from None
        except BaseException:
            if _handed(waiter):
                # Cancelled just after a connection (or a place) was handed
                # over: pass it on rather than lose it.
                if (conn := waiter.result()) is not None:
                    self._release(conn)
                else:
                    self._hand_over(None)
            raise

    def _hand_over(self, conn: asyncpg.Connection | None) -> bool:
        """Give `conn` (or a free place) to the first request still waiting."""
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False

    def _release(self, conn: asyncpg.Connection) -> None:
        """Take back a connection in good order."""
        if not self._hand_over(conn):
            self.free.append(conn)
        self._check_drained()

    def _forget(self, conn: asyncpg.Connection | None = None) -> None:
        """Close `conn` for good (if given) and free its place."""
        if conn is not None:
            conn.terminate()
        self.size -= 1
        self._hand_over(None)
        self._check_drained()

    def _retire(self, conn: asyncpg.Connection) -> None:
        """Close `conn` gracefully in the background, then free its place.

        For a connection no longer needed, or in a state nothing here can
        vouch for. A graceful close first has PostgreSQL cancel a query
        still running (a cancelled request's, say), which `terminate()` would
        leave running on the server. Its place stays taken until it is closed.
        """
        task = asyncio.get_running_loop().create_task(self._close(conn))
        self.retiring.add(task)
        task.add_done_callback(self.retiring.discard)

    async def _close(self, conn: asyncpg.Connection) -> None:
        try:
            await conn.close(timeout=CLOSE_TIMEOUT)
        except Exception:
            pass  # close() has aborted the connection; nothing more to do
        finally:
            self._forget()

    def _check_drained(self) -> None:
        if self._drained is not None and not self.loans and not self._drained.done():
            self._drained.set_result(None)

    def overdue(self, now: float, limit: float) -> list[Loan]:
        """Loans that began more than `limit` seconds before `now`."""
        return [loan for loan, since in self.loans.items() if now - since > limit]

    def shrink(self) -> int:
        """Close the free connections no moment since the last call needed.

        The pool never had more than `peak` connections lent at once since
        then, so `size - peak` of them sat free all along; those at the bottom
        of the stack are closed, down to `min_size`. The watchdog in db.py
        calls it every IDLE_PERIOD. Returns how many it closes.
        """
        spare = min(len(self.free), self.size - max(self.peak, self.min_size))
        self.peak = len(self.loans)
        if spare <= 0:
            return 0
        idle, self.free[:spare] = self.free[:spare], []
        for conn in idle:
            self._retire(conn)
        return spare

    async def close(self) -> None:
        """Lend no more, wait for every loan to end, then close every connection."""
        self.closing = True
        self._refuse_waiters()
        if self.loans:
            self._drained = asyncio.get_running_loop().create_future()
            await self._drained
        if self.retiring:
            await asyncio.gather(*self.retiring, return_exceptions=True)
        free, self.free = self.free, []
        self.size -= len(free)
        await asyncio.gather(*(conn.close() for conn in free), return_exceptions=True)

    def terminate(self) -> None:
        """Close every connection at once, lent or not."""
        self.closing = True
        self._refuse_waiters()
        free, self.free = self.free, []
        for conn in free + [loan.conn for loan in self.loans]:
            conn.terminate()
        self.size -= len(free)
        for task in self.retiring:
            task.cancel()  # which aborts its connection

    def _refuse_waiters(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(PoolClosed("the connection pool is closing"))


def _handed(waiter: asyncio.Future[asyncpg.Connection | None]) -> bool:
    return waiter.done() and not waiter.cancelled() and waiter.exception() is None


class Loan:
    """One request's use of one connection, from `__aenter__` to `__aexit__`."""

    __slots__ = ("conn", "pool")

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def __aenter__(self) -> asyncpg.Connection:
        pool = self.pool
        free = pool.free
        if free and not pool.closing:
            conn = free.pop()
            if conn.is_closed():
                pool.size -= 1
                conn = await pool._get()
        else:
            conn = await pool._get()
        self.conn = conn
        loans = pool.loans
        loans[self] = time.monotonic()
        if len(loans) > pool.peak:
            pool.peak = len(loans)
        return conn

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        pool = self.pool
        conn = self.conn
        del pool.loans[self]
        if conn.is_closed() or (exc_type is not None and issubclass(exc_type, UNFIT)):
            pool._forget(conn)
        elif conn.is_in_transaction() or (
            exc_type is not None and not issubclass(exc_type, Exception)
        ):
            # Cancelled (its query may still be running) or left inside a
            # transaction: not fit to lend again.
            pool._retire(conn)
        elif pool.waiters or pool._drained is not None:
            pool._release(conn)
        else:
            pool.free.append(conn)  # what _release comes to, most of the time
