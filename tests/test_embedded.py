"""The embedded PostgreSQL of `make run`, as the other make targets find it."""

from __future__ import annotations

import asyncpg

from service.embedded import EmbeddedPostgres, free_port


async def test_a_running_cluster_is_found_on_the_port_it_was_started_on(tmp_path):
    # `EMBEDDED_PG_PORT=54900 make run`, then `make migrate` with the default port.
    started_on, asked_for = free_port(), free_port()
    running = EmbeddedPostgres(datadir=tmp_path / "pg", port=started_on, durable=False)
    running.start()
    try:
        other = EmbeddedPostgres(datadir=tmp_path / "pg", port=asked_for, durable=False)
        dsn = other.start()

        assert other.port == started_on
        conn = await asyncpg.connect(dsn)
        try:
            assert await conn.fetchval("select current_setting('port')::int") == started_on
        finally:
            await conn.close()
    finally:
        running.stop()
