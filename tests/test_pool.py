"""The connection pool on its own, against a real PostgreSQL.

Every test counts the pool's sessions in pg_stat_activity, by an
application_name of its own, so what the pool says is checked against what
the server sees.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace

import asyncpg
import pytest

from service.app import create_app
from service.keys import POOL
from service.pool import Pool, PoolClosed


@pytest.fixture
def app_name() -> str:
    return f"pool-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def make_pool(database_url: str, app_name: str) -> Callable[..., Pool]:
    def make(min_size: int = 0, max_size: int = 2, acquire_timeout: float = 5.0) -> Pool:
        def connect() -> Awaitable[asyncpg.Connection]:
            return asyncpg.connect(database_url, server_settings={"application_name": app_name})

        return Pool(connect, min_size=min_size, max_size=max_size, acquire_timeout=acquire_timeout)

    return make


@asynccontextmanager
async def opened(pool: Pool) -> AsyncIterator[Pool]:
    await pool.open()
    try:
        yield pool
    finally:
        pool.terminate()


async def sessions(db: asyncpg.Connection, app_name: str) -> int:
    return await db.fetchval(
        "select count(*) from pg_stat_activity where application_name = $1", app_name
    )


async def eventually(probe: Callable[[], Awaitable[bool]], what: str, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not await probe():
        assert time.monotonic() < deadline, f"{what}: not within {within}s"
        await asyncio.sleep(0.05)


async def until_waiting(pool: Pool, count: int) -> None:
    for _ in range(1000):
        if sum(not w.done() for w in pool.waiters) == count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{count} requests never queued for a connection")


async def lend_at_once(pool: Pool, count: int) -> None:
    """Lend `count` connections at the same time, then take them all back."""
    loans = [pool.lend() for _ in range(count)]
    for loan in loans:
        await loan.__aenter__()
    for loan in loans:
        await loan.__aexit__(None, None, None)


async def test_open_starts_min_size_connections_and_lending_reuses_them(make_pool, db, app_name):
    async with opened(make_pool(min_size=2, max_size=4)) as pool:
        assert pool.size == 2
        assert await sessions(db, app_name) == 2
        pids = set()
        for _ in range(5):
            async with pool.lend() as conn:
                pids.add(conn.get_server_pid())
                assert len(pool.loans) == 1
        assert len(pool.loans) == 0
        # One request at a time needs one connection: the most recent one.
        assert len(pids) == 1
        assert pool.size == 2
        assert await sessions(db, app_name) == 2


async def test_the_pool_grows_to_max_size_then_requests_wait_in_arrival_order(
    make_pool, db, app_name
):
    async with opened(make_pool(min_size=0, max_size=2)) as pool:
        first, second = pool.lend(), pool.lend()
        await first.__aenter__()
        await second.__aenter__()
        assert pool.size == 2
        order: list[str] = []

        async def request(name: str) -> None:
            async with pool.lend() as conn:
                order.append(name)
                assert await conn.fetchval("select 1") == 1

        waiting = []
        for name in ("a", "b", "c"):
            waiting.append(asyncio.create_task(request(name)))
            await until_waiting(pool, len(waiting))
        assert await sessions(db, app_name) == 2
        await first.__aexit__(None, None, None)
        await second.__aexit__(None, None, None)
        await asyncio.gather(*waiting)
        assert order == ["a", "b", "c"]
        assert pool.size == 2
        assert await sessions(db, app_name) == 2


async def test_a_request_waits_at_most_the_acquire_timeout(make_pool):
    async with opened(make_pool(max_size=1, acquire_timeout=0.2)) as pool:
        async with pool.lend():
            started = time.monotonic()
            with pytest.raises(TimeoutError, match="no database connection became free"):
                async with pool.lend():
                    pass
            assert 0.15 < time.monotonic() - started < 2
        # The wait left nothing behind: the connection is lent again at once.
        async with pool.lend() as conn:
            assert await conn.fetchval("select 1") == 1
        assert pool.size == 1


async def test_connections_the_server_closed_are_replaced(make_pool, db, app_name):
    async with opened(make_pool(min_size=2, max_size=2)) as pool:
        idle = list(pool.free)
        old_pids = {conn.get_server_pid() for conn in idle}
        await db.execute("select pg_terminate_backend(pid) from unnest($1::int[]) pid", old_pids)
        await eventually(
            lambda: _true(all(conn.is_closed() for conn in idle)), "the client sees the close"
        )
        async with pool.lend() as conn:
            assert await conn.fetchval("select pg_backend_pid()") not in old_pids
        assert pool.size == 1
        assert await sessions(db, app_name) == 1


async def test_a_connection_closed_during_its_loan_frees_its_place(make_pool, db, app_name):
    async with opened(make_pool(min_size=1, max_size=1)) as pool:
        async with pool.lend() as conn:
            old_pid = conn.get_server_pid()
            query = asyncio.create_task(conn.execute("select pg_sleep(60)"))
            await asyncio.sleep(0.1)
            conn.terminate()  # what the watchdog does to an overdue loan
            with pytest.raises(asyncpg.ConnectionDoesNotExistError):
                await query
        assert pool.size == 0
        async with pool.lend() as conn:
            assert await conn.fetchval("select 1") == 1
            assert conn.get_server_pid() != old_pid
        assert pool.size == 1
        # (The old backend sleeps on until it next writes to its socket.)
        await db.execute("select pg_terminate_backend($1)", old_pid)
        await eventually(lambda: _is(sessions(db, app_name), 1), "one session left")


async def test_a_cancelled_request_has_its_query_cancelled_and_its_connection_closed(
    make_pool, db, app_name
):
    async with opened(make_pool(min_size=1, max_size=1)) as pool:
        pids: list[int] = []

        async def slow() -> None:
            async with pool.lend() as conn:
                pids.append(conn.get_server_pid())
                await conn.execute("select pg_sleep(60)")

        task = asyncio.create_task(slow())

        async def running() -> bool:
            return bool(
                await db.fetchval(
                    "select count(*) from pg_stat_activity"
                    " where application_name = $1 and query like 'select pg_sleep%' "
                    " and state = 'active'",
                    app_name,
                )
            )

        await eventually(running, "the query runs")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Not lent again while its query may still run; the place comes back
        # once the connection is closed, and the server has no session left.
        async with pool.lend() as conn:
            assert conn.get_server_pid() not in pids
            assert not await running()
        assert pool.size == 1
        await eventually(lambda: _is(sessions(db, app_name), 1), "one session left")


async def test_a_connection_left_in_a_transaction_is_not_lent_again(make_pool, db, app_name):
    async with opened(make_pool(min_size=1, max_size=1)) as pool:
        async with pool.lend() as conn:
            pid = conn.get_server_pid()
            await conn.execute("begin")
            await conn.execute("create temporary table leftover (id int)")
        async with pool.lend() as conn:
            assert conn.get_server_pid() != pid
            assert not conn.is_in_transaction()
            assert await conn.fetchval("select to_regclass('leftover')") is None
        await eventually(lambda: _is(sessions(db, app_name), 1), "one session left")


async def test_a_waiter_cancelled_as_it_is_handed_a_connection_passes_it_on(make_pool):
    async with opened(make_pool(min_size=1, max_size=1)) as pool:
        holder = pool.lend()
        await holder.__aenter__()
        got: list[int] = []

        async def request() -> None:
            async with pool.lend() as conn:
                got.append(await conn.fetchval("select 1"))

        first = asyncio.create_task(request())
        await until_waiting(pool, 1)
        second = asyncio.create_task(request())
        await until_waiting(pool, 2)
        # The release hands the connection to `first`, which is cancelled
        # before it can run: the connection must reach `second`.
        await holder.__aexit__(None, None, None)
        first.cancel()
        await asyncio.wait_for(second, 5)
        assert got == [1]
        with pytest.raises(asyncio.CancelledError):
            await first
        assert pool.size == 1
        assert not pool.loans


async def test_shrink_closes_the_connections_no_moment_needed(make_pool, db, app_name):
    async with opened(make_pool(min_size=1, max_size=4)) as pool:
        await lend_at_once(pool, 3)
        assert pool.size == 3
        # Three were needed at once since the pool opened: none is spare yet.
        assert pool.shrink() == 0
        assert pool.size == 3
        # Since then one at most was lent at a time.
        async with pool.lend():
            pass
        assert pool.shrink() == 2
        await eventually(lambda: _true(pool.size == 1), "the pool closes two")
        await eventually(lambda: _is(sessions(db, app_name), 1), "one session left")
        # And never below min_size.
        assert pool.shrink() == 0
        async with pool.lend() as conn:
            assert await conn.fetchval("select 1") == 1


async def test_close_lends_no_more_and_waits_for_every_loan(make_pool, db, app_name):
    pool = make_pool(min_size=2, max_size=2)
    await pool.open()
    loan = pool.lend()
    conn = await loan.__aenter__()
    closing = asyncio.create_task(pool.close())
    await asyncio.sleep(0.1)
    assert not closing.done()
    with pytest.raises(PoolClosed):
        async with pool.lend():
            pass
    # The loan in progress still works, and ends the close when it ends.
    assert await conn.fetchval("select 1") == 1
    await loan.__aexit__(None, None, None)
    await asyncio.wait_for(closing, 5)
    assert pool.size == 0
    await eventually(lambda: _is(sessions(db, app_name), 0), "no session left")


async def test_a_request_waiting_when_the_pool_closes_is_refused(make_pool):
    async with opened(make_pool(min_size=1, max_size=1)) as pool:
        holder = pool.lend()
        await holder.__aenter__()
        waiting = asyncio.create_task(pool.lend().__aenter__())
        await until_waiting(pool, 1)
        closing = asyncio.create_task(pool.close())
        with pytest.raises(PoolClosed):
            await asyncio.wait_for(waiting, 5)
        await holder.__aexit__(None, None, None)
        await asyncio.wait_for(closing, 5)


async def test_a_failed_connect_frees_its_place(make_pool, database_url, app_name):
    attempts = 0

    def connect() -> Awaitable[asyncpg.Connection]:
        nonlocal attempts
        attempts += 1
        url = database_url if attempts > 1 else database_url + "_no_such_database"
        return asyncpg.connect(url, server_settings={"application_name": app_name})

    async with opened(Pool(connect, min_size=0, max_size=1, acquire_timeout=1)) as pool:
        with pytest.raises(asyncpg.InvalidCatalogNameError):
            async with pool.lend():
                pass
        assert pool.size == 0
        async with pool.lend() as conn:
            assert await conn.fetchval("select 1") == 1
        assert pool.size == 1


async def _true(value: bool) -> bool:
    return value


async def _is(count: Awaitable[int], expected: int) -> bool:
    return await count == expected


async def test_the_service_closes_the_connections_no_request_needed(
    aiohttp_client, config, monkeypatch
):
    monkeypatch.setattr("service.db.IDLE_PERIOD", 0.3)
    client = await aiohttp_client(create_app(replace(config, pool_min_size=1, pool_max_size=4)))
    pool = client.app[POOL]
    await lend_at_once(pool, 3)
    assert pool.size == 3
    await eventually(lambda: _true(pool.size == 1), "down to DB_POOL_MIN_SIZE", within=5)
    response = await client.get("/readyz")
    assert response.status == 200
