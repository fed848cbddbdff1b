"""The connection pool: one per process, opened and closed with the app.

And a request's Work: where its statements run, autocommitted on the pool or
inside its idempotency transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import asyncpg
from aiohttp import web

from .config import Config
from .keys import CONFIG, METRICS, POOL, WORK
from .pool import UNFIT, Loan, Pool, PoolExhausted
from .sql import QUERIES

log = logging.getLogger(__name__)

T = TypeVar("T")

REQUIRED_TABLES = (
    "students",
    "courses",
    "student_courses",
    "course_waitlist",
    "events",
    "idempotency_keys",
    "terms",
    "student_holds",
    "student_completions",
    "student_terms",
)
WATCHDOG_PERIOD = 0.25  # seconds between checks for overdue loans
IDLE_PERIOD = 300.0  # seconds a pool connection may go unused before it is closed

# Errors that mean "the database is not there right now", answered with 503
# database-unavailable and RETRY_AFTER: try again once it is back.
# TimeoutError (connect, acquire), refused connections and asyncpg's
# ConnectionError("unexpected connection_lost() call") are OSErrors. A
# failover adds pool.UNFIT, whose connections the pool closes on the spot:
# SQLSTATE 25006 from a node that is a standby now, and asyncpg's
# InternalClientError ("cannot switch to state ...", and the multi-host
# DSN's TargetServerAttributeNotMatched: no primary among the hosts).
UNAVAILABLE = (
    OSError,
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.exceptions.OperatorInterventionError,  # class 57: shutdown, cannot connect now
    asyncpg.exceptions.InsufficientResourcesError,  # class 53: too many connections
    asyncpg.exceptions.ConnectionDoesNotExistError,  # the server went away mid-query
    *UNFIT,
)


def in_doubt(exc: BaseException) -> bool:
    """Whether `exc` may have come after a write's COMMIT reached the server.

    A connection lost with a statement on its way: the server may have
    committed it (errors.unavailable says so). Not a connection refused or
    never made, nor a server that answered (25006, no primary): nothing was
    sent. When unsure, in doubt: saying "it may have been made" of a change
    that was not costs a retry; the other way round, a lost update.
    """
    return isinstance(
        exc,
        asyncpg.exceptions.ConnectionDoesNotExistError
        | ConnectionError
        | asyncpg.exceptions.InternalClientError,
    ) and not isinstance(
        exc,
        ConnectionRefusedError | asyncpg.exceptions.TargetServerAttributeNotMatched,
    )


# Errors that mean "it is there but this statement could not get its turn":
# a lock not granted within lock_timeout, a statement past statement_timeout,
# a deadlock or a serialization failure still there after the repositories'
# retries, every pooled connection in use past DB_ACQUIRE_TIMEOUT. Answered with 503 busy and a
# short Retry-After: the contention is usually gone by then. Checked before
# UNAVAILABLE (a query cancelled is also a class 57 error, a pool wait that
# timed out a TimeoutError).
BUSY = (
    PoolExhausted,
    asyncpg.exceptions.LockNotAvailableError,
    asyncpg.exceptions.QueryCanceledError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
)
# Either: what a background loop shrugs off and tries again at its next turn.
TRANSIENT = UNAVAILABLE + BUSY


class SchemaNotReady(RuntimeError):
    pass


def masked(dsn: str) -> str:
    """The DSN with every password replaced, fit for logs and error lines.

    libpq takes a password in the userinfo and as the query parameters
    password and sslpassword (the client key's); all three are hidden. A DSN
    that is not a URL (host=... password=...) is hidden whole.
    """
    try:
        parts = urlsplit(dsn)
    except ValueError:  # e.g. an unclosed [ in the host
        parts = None
    if parts is None or not parts.scheme or not dsn.startswith(f"{parts.scheme}://"):
        return "***" if dsn else dsn
    user, at, host = parts.netloc.rpartition("@")
    if ":" in user:
        user = user.partition(":")[0] + ":***"
    pairs = [
        (key, "***" if key in ("password", "sslpassword") else value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    query = "?" + urlencode(pairs, safe="/*") if pairs else ""
    # Not urlunsplit: it turns postgresql:///db (a unix socket) into postgresql:/db.
    return f"{parts.scheme}://{user}{at}{host}{parts.path}{query}"


def create_pool(config: Config) -> Pool:
    """A pool of connections to DATABASE_URL (none is opened until `open()`)."""
    if not config.database_url:
        raise RuntimeError("DATABASE_URL is not set")
    dsn = config.database_url
    settings = _session_settings(config)

    def connect() -> Coroutine[Any, Any, asyncpg.Connection]:
        # No command_timeout: the watchdog below bounds every loan instead.
        return asyncpg.connect(
            dsn,
            timeout=config.connect_timeout,
            statement_cache_size=config.statement_cache_size,
            server_settings=settings,
        )

    return Pool(
        connect,
        min_size=config.pool_min_size,
        max_size=config.pool_max_size,
        acquire_timeout=config.acquire_timeout,
    )


def _session_settings(config: Config) -> dict[str, str]:
    settings = {"application_name": "enrollment-service"}
    if config.session_settings:
        ms = int(config.statement_timeout * 1000)
        settings |= {
            "statement_timeout": str(ms),
            "lock_timeout": str(ms),
            "idle_in_transaction_session_timeout": str(2 * ms),
        }
    return settings


async def check_schema(conn: asyncpg.Connection) -> None:
    missing = await conn.fetch(QUERIES.health.missing_tables, list(REQUIRED_TABLES))
    if missing:
        names = ", ".join(row["name"] for row in missing)
        raise SchemaNotReady(f"the database has no table {names}: run the migrations first")


async def pool_context(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    log.info("connecting to %s", masked(config.database_url or ""))
    pool = create_pool(config)
    await pool.open()
    try:
        async with pool.lend() as conn:
            await check_schema(conn)
        app[POOL] = pool
        yield
    finally:
        try:
            await asyncio.wait_for(pool.close(), timeout=config.shutdown_timeout)
        except TimeoutError:
            log.warning("pool did not close in %ss; terminating", config.shutdown_timeout)
            pool.terminate()


class Work:
    """Where a request's statements run: `async with work.block() as conn`.

    Chosen by the request context for each request and set, through run()
    only, as request[WORK], where its handler takes it: Autocommit, or
    InTransaction for a POST with an Idempotency-Key (service/idempotency.py).
    The same handler code runs in either. `retries_alone` says whether a
    statement that failed may simply run again (repositories/retry.py).
    """

    __slots__ = ()
    retries_alone: bool

    def block(self) -> contextlib.AbstractAsyncContextManager[asyncpg.Connection]:
        raise NotImplementedError


class Autocommit(Work):
    """No transaction: each block on a connection lent from the pool, each statement committed alone.

    A statement that fails leaves nothing behind: it may run again.
    """

    __slots__ = ("app",)
    retries_alone = True

    def __init__(self, app: web.Application) -> None:
        self.app = app  # the pool is looked up per block: it opens after the routes are set up

    def block(self) -> Loan:
        return Loan(self.app[POOL])


class InTransaction(Work):
    """Inside the request's idempotency transaction, on its connection: each block a Savepoint.

    A statement that fails aborts its savepoint, which the block rolls back.
    It may not run again alone: the locks the transaction's earlier
    statements hold would deadlock it again, so idempotency.answer runs the
    whole transaction again instead.
    """

    __slots__ = ("conn",)
    retries_alone = False

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    def block(self) -> Savepoint:
        return Savepoint(self.conn)


def run(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    request: web.Request,
    work: Work,
) -> Awaitable[web.StreamResponse]:
    """`handler`'s answer to `request`, its statements run as `work` says.

    The one place request[WORK] is set: by the request context (endpoint.py)
    and by idempotency.answer, each with the Work it chose. Not a coroutine
    of its own: no extra layer on every request.
    """
    request[WORK] = work
    return handler(request)


async def uncancelled(write: Awaitable[T]) -> T:
    """`write`'s result, run so that cancelling the caller does not cancel it.

    Why: with synchronous replication (Patroni's synchronous_mode_strict) a
    COMMIT waits until the synchronous standby has the WAL. A cancel during
    that wait (asyncpg sends one whenever the task awaiting a query is
    cancelled, and Connection.close() sends one if a query runs; so would
    pg_cancel_backend or a pooler's query_timeout) ends the wait with only a
    WARNING: the commit stands, visible to every reader, yet no standby has
    it, and a failover then loses a change that looked acknowledged.
    statement_timeout does not end that wait; closing the socket
    (conn.terminate(), as the watchdog does) does not cancel it either: the
    server waits on and commits once a standby is back, and the request
    answers 503, its change in doubt. So a deployment must never set a
    pooler query_timeout nor pg_cancel_backend the service's writes.

    The request context (endpoint.py) runs every write request through this:
    `write` runs in a task of its own, awaited under asyncio.shield. If the
    caller is cancelled (run_app's shutdown cancels the handlers still running
    after SHUTDOWN_TIMEOUT), it waits for that task to end, then raises
    CancelledError. The wait is bounded: the watchdog terminates a loan held
    past DB_STATEMENT_TIMEOUT + 1 s, and so does the pool at shutdown. About
    5 us a request (uvloop); reads do without it.
    """
    task = asyncio.ensure_future(write)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        # Not done: the caller was cancelled; done, the write itself was
        # cancelled or ended as the caller was. Either way its end is seen.
        await _outlive(task)
        raise


async def _outlive(task: asyncio.Future[Any]) -> None:
    """Wait for `task` to end, through any further cancellations of the caller."""
    while not task.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait((task,))
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning(
            "a write whose request was cancelled ended with %s: %s", type(exc).__name__, exc
        )


class Savepoint:
    """A block of statements on a connection already inside a transaction.

    Outside a transaction a statement that fails leaves nothing behind and
    the next one runs as usual; handlers and repositories count on it when
    they turn a unique violation into a 409. In a transaction a failed
    statement would abort everything after it, the stored answer included,
    so each block runs in a savepoint, rolled back when the block raises.
    """

    __slots__ = ("conn", "transaction")

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def __aenter__(self) -> asyncpg.Connection:
        self.transaction = self.conn.transaction()  # nested: a savepoint
        await self.transaction.start()
        return self.conn

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        if exc_type is None:
            await self.transaction.commit()
        elif issubclass(exc_type, Exception) and not self.conn.is_closed():
            await self.transaction.rollback()
        # Cancelled: the outer transaction's owner retires the connection.


@contextlib.asynccontextmanager
async def running(loop: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Run a background loop for the life of the block, then cancel it."""
    task = asyncio.create_task(loop)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def watchdog(app: web.Application) -> AsyncIterator[None]:
    """End every loan held past its limit (DB_STATEMENT_TIMEOUT + 1 s); shrink the pool.

    PostgreSQL cancels a statement over statement_timeout itself; this is for
    a server or network that stopped answering, and for PgBouncer set-ups,
    where the timeout cannot be a session setting. The connection is closed,
    so the request waiting on it fails at once (503) and the pool opens a
    fresh one. Checked a few times a second: one timer per process, not two
    per request.

    Every IDLE_PERIOD it also closes the connections no request needed in
    that time (Pool.shrink), down to DB_POOL_MIN_SIZE.
    """
    limit = app[CONFIG].statement_timeout + 1

    async def watch() -> None:
        shrunk = time.monotonic()
        while True:
            await asyncio.sleep(WATCHDOG_PERIOD)
            if (pool := app.get(POOL)) is None:
                continue
            now = time.monotonic()
            for loan in pool.overdue(now, limit):
                log.warning(
                    "closing a database connection held over %ss: the database stopped answering",
                    limit,
                )
                loan.conn.terminate()
            if now - shrunk >= IDLE_PERIOD:
                shrunk = now
                if closed := pool.shrink():
                    log.info("closed %d database connection(s) idle for %ss", closed, IDLE_PERIOD)

    async with running(watch()):
        yield


async def pool_metrics(app: web.Application) -> AsyncIterator[None]:
    """Refresh the sampled gauges every second (a scrape may land on any worker)."""
    metrics = app[METRICS]

    async def sample() -> None:
        while True:
            metrics.in_flight.set(metrics.requests_in_flight)
            if (pool := app.get(POOL)) is not None:
                metrics.pool_size.set(pool.size)
                metrics.pool_in_use.set(len(pool.loans))
            await asyncio.sleep(1)

    async with running(sample()):
        yield
