"""Migration helpers for async tests: yoyo is synchronous, so it runs in a thread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from service import migrations


async def apply(dsn: str, target: str | None = None) -> list[str]:
    return await asyncio.to_thread(migrations.apply, dsn, target=target)


async def rollback(dsn: str, count: int = 1) -> list[str]:
    return await asyncio.to_thread(migrations.rollback, dsn, count=count)


async def applied(dsn: str) -> list[str]:
    return await asyncio.to_thread(migrations.applied, dsn)


@asynccontextmanager
async def connected(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()
