"""Fixtures: a real PostgreSQL, a migrated template, a fresh database per test.

Without TEST_DATABASE_URL the suite starts its own embedded PostgreSQL in a
temporary directory and removes it at the end. With TEST_DATABASE_URL (a role
allowed to CREATE DATABASE) it uses that server instead. Either way every test
gets its own database, cloned from a template migrated once per session.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service import migrations
from service.app import create_app
from service.config import Config
from service.embedded import EmbeddedPostgres, free_port


@dataclass
class Server:
    """A PostgreSQL server the tests may create databases on."""

    admin_url: str
    embedded: EmbeddedPostgres | None = None

    def url_for(self, database: str) -> str:
        parts = urlsplit(self.admin_url)
        return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield Server(admin_url=url)
        return
    datadir = Path(tempfile.mkdtemp(prefix="enrollment-test-pg-"))
    cluster = EmbeddedPostgres(datadir=datadir, port=free_port(), durable=False)
    try:
        cluster.start()
        yield Server(admin_url=cluster.dsn, embedded=cluster)
    finally:
        cluster.stop()
        shutil.rmtree(datadir, ignore_errors=True)


async def _admin(server: Server) -> asyncpg.Connection:
    return await asyncpg.connect(server.admin_url)


@pytest.fixture(scope="session")
def template_db(pg_server: Server) -> Iterator[str]:
    """A database with every migration applied, cloned by each test."""
    import asyncio

    name = f"enrollment_template_{uuid.uuid4().hex[:8]}"

    async def run(sql: str) -> None:
        conn = await _admin(pg_server)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'create database "{name}"'))
    migrations.apply(pg_server.url_for(name))
    try:
        yield name
    finally:
        asyncio.run(run(f'drop database if exists "{name}" with (force)'))


@asynccontextmanager
async def _fresh_database(server: Server, template: str | None = None) -> AsyncIterator[str]:
    """A new database (copied from `template` if given), dropped afterwards."""
    name = f"enrollment_test_{uuid.uuid4().hex[:12]}"
    conn = await _admin(server)
    try:
        clause = f' template "{template}"' if template else ""
        await conn.execute(f'create database "{name}"{clause}')
        yield server.url_for(name)
    finally:
        await conn.execute(f'drop database if exists "{name}" with (force)')
        await conn.close()


@pytest.fixture
async def empty_database(pg_server: Server) -> AsyncIterator[str]:
    """A database with no schema at all, for migration tests."""
    async with _fresh_database(pg_server) as url:
        yield url


@pytest.fixture
async def database_url(pg_server: Server, template_db: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test."""
    async with _fresh_database(pg_server, template_db) as url:
        yield url


@pytest.fixture
def config(database_url: str) -> Config:
    return Config(database_url=database_url, pool_min_size=1, pool_max_size=10, workers=1)


@pytest.fixture
async def client(config: Config, aiohttp_client) -> TestClient:
    """The real app, on a real socket, talking to the test's database.

    `config` (and so the database) comes first: fixtures are torn down in
    reverse, so the app and its pool close before the database is dropped.
    """
    return await aiohttp_client(create_app(config))


@pytest.fixture
async def wide(aiohttp_client, config: Config) -> TestClient:
    """The real app with a pool wide enough (40) that a burst really overlaps inside PostgreSQL."""
    return await aiohttp_client(create_app(replace(config, pool_min_size=40, pool_max_size=40)))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection to the test's database, to check what was stored."""
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()
