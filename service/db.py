"""The connection pool: one per process, opened and closed with the app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Coroutine
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from aiohttp import web

from .config import Config
from .keys import CONFIG, LENDER, METRICS, POOL
from .lending import Lender, Loan
from .sql import QUERIES

log = logging.getLogger(__name__)

REQUIRED_TABLES = ("students", "courses", "student_courses")
WATCHDOG_PERIOD = 0.25  # seconds between checks for overdue loans

# Errors that mean "the database is not there right now", answered with 503.
# TimeoutError (connect, acquire) and refused connections are OSErrors.
UNAVAILABLE = (
    OSError,
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.exceptions.OperatorInterventionError,  # class 57: shutdown, statement timeout
    asyncpg.exceptions.LockNotAvailableError,  # lock_timeout: the database is busy
    asyncpg.exceptions.InsufficientResourcesError,  # class 53: too many connections
    asyncpg.exceptions.ConnectionDoesNotExistError,  # the server went away mid-query
)


class SchemaNotReady(RuntimeError):
    pass


def masked(dsn: str) -> str:
    """The DSN with its password replaced, fit for logs."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


async def _reset(conn: asyncpg.Connection) -> None:
    # The service never changes session state, so asyncpg's default reset
    # (a round trip on every release) buys nothing; only a connection given
    # back inside a transaction (a cancelled request) needs cleaning.
    if conn.is_in_transaction():
        await conn.reset()


async def create_pool(config: Config) -> asyncpg.Pool:
    if not config.database_url:
        raise RuntimeError("DATABASE_URL is not set")
    return await asyncpg.create_pool(
        config.database_url,
        min_size=config.pool_min_size,
        max_size=config.pool_max_size,
        timeout=config.connect_timeout,
        # No command_timeout: the watchdog below bounds every loan instead.
        statement_cache_size=config.statement_cache_size,
        reset=_reset,
        server_settings=_session_settings(config),
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
    pool = await create_pool(config)
    try:
        async with pool.acquire() as conn:
            await check_schema(conn)
        app[POOL] = pool
        app[LENDER] = Lender(
            pool, config.pool_max_size, config.acquire_timeout, config.statement_timeout + 1
        )
        yield
    finally:
        try:
            await asyncio.wait_for(pool.close(), timeout=config.shutdown_timeout)
        except TimeoutError:
            log.warning("pool did not close in %ss; terminating", config.shutdown_timeout)
            pool.terminate()


def connection(request: web.Request) -> Loan:
    """A pooled connection for one request: `async with connection(request) as conn`."""
    return Loan(request.app[LENDER])


@contextlib.asynccontextmanager
async def _running(loop: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Run a background loop for the life of the block, then cancel it."""
    task = asyncio.create_task(loop)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def watchdog(app: web.Application) -> AsyncIterator[None]:
    """End every loan held past its limit (DB_STATEMENT_TIMEOUT + 1 s).

    PostgreSQL cancels a statement over statement_timeout itself; this is for
    a server or network that stopped answering, and for PgBouncer set-ups,
    where the timeout cannot be a session setting. The connection is closed,
    so the request waiting on it fails at once (503) and the pool opens a
    fresh one. Checked a few times a second: one timer per process, not two
    per request.
    """

    async def watch() -> None:
        while True:
            await asyncio.sleep(WATCHDOG_PERIOD)
            if (lender := app.get(LENDER)) is None:
                continue
            for loan in lender.overdue(time.monotonic()):
                log.warning(
                    "closing a database connection held over %ss: the database stopped answering",
                    lender.limit,
                )
                loan.conn.terminate()

    async with _running(watch()):
        yield


async def pool_metrics(app: web.Application) -> AsyncIterator[None]:
    """Refresh the sampled gauges every second (a scrape may land on any worker)."""
    metrics = app[METRICS]

    async def sample() -> None:
        while True:
            metrics.flush()
            metrics.in_flight.set(metrics.requests_in_flight)
            if (lender := app.get(LENDER)) is not None:
                metrics.pool_size.set(lender.pool.get_size())
                metrics.pool_in_use.set(min(lender.lent, lender.size))
            await asyncio.sleep(1)

    async with _running(sample()):
        yield
