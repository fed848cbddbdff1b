"""The functions and triggers of sql/functions: one place, applied on every migrate.

Migrations move tables, constraints, indexes and data once; the current
definition of each function and trigger is in sql/functions/*.sql, applied
after the migrations whenever its file changed (service/migrations.py).
"""

from __future__ import annotations

import asyncio
import re

import asyncpg
import psycopg
import pytest

from service import migrations
from tests.conftest import _fresh_database
from tests.migrating import apply, connected
from tests.test_database_migrations import MIGRATION_IDS, SCHEMA_QUERIES

# Ours: not those of an extension (pg_trgm's, btree_gist's).
FUNCTIONS = """
    select p.proname as name, pg_get_functiondef(p.oid) as definition
    from pg_proc p
    where p.pronamespace = 'public'::regnamespace
      and not exists (
          select 1 from pg_depend d
          where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e'
      )
    order by 1, 2
"""
DEFINED = re.compile(r"^create or replace (function|trigger) (\w+)", re.MULTILINE)


def defined_in_files() -> dict[str, set[str]]:
    """{"function": names, "trigger": names} as sql/functions defines them."""
    found: dict[str, set[str]] = {"function": set(), "trigger": set()}
    for text in migrations.function_files().values():
        for kind, name in DEFINED.findall(text):
            found[kind].add(name)
    return found


async def definitions(conn: asyncpg.Connection) -> dict[str, list[tuple]]:
    return {
        "functions": [tuple(r) for r in await conn.fetch(FUNCTIONS)],
        "triggers": [tuple(r) for r in await conn.fetch(SCHEMA_QUERIES["triggers"])],
    }


async def test_every_function_and_trigger_in_the_database_is_defined_in_sql_functions(
    database_url,
):
    async with connected(database_url) as conn:
        held = await definitions(conn)
    files = defined_in_files()

    assert {name for name, _ in held["functions"]} == files["function"]
    assert {name for _, name, _ in held["triggers"]} == files["trigger"]


async def test_migrated_from_empty_and_step_by_step_the_functions_are_the_same(pg_server):
    async with _fresh_database(pg_server) as at_once, _fresh_database(pg_server) as stepwise:
        await apply(at_once)
        # As a database kept up to date release by release: each migration
        # alone, then the migrate that reaches the newest schema.
        for migration in MIGRATION_IDS:
            assert await apply(stepwise, target=migration) == [migration]
        assert await apply(stepwise) == []

        async with connected(at_once) as a, connected(stepwise) as b:
            assert await definitions(a) == await definitions(b)
            assert await b.fetchval("select count(*) from schema_functions") == len(
                migrations.function_files()
            )


async def test_a_migrate_applies_a_file_again_only_when_its_text_changed(database_url):
    async with connected(database_url) as conn:
        before = dict(await conn.fetch("select file, applied_at from schema_functions"))
        # A function changed behind the service's back, and the record of
        # events.sql changed as a new release's file would.
        await conn.execute(
            "create or replace function departure(student bigint, course bigint, otherwise text)"
            " returns text language sql as $$ select 'tampered' $$"
        )
        await conn.execute("update schema_functions set digest = 'old' where file = 'events.sql'")
        await conn.execute(
            "create or replace function search_fold(v text) returns text"
            " language sql as $$ select 'tampered' $$"
        )

        assert await apply(database_url) == []

        after = dict(await conn.fetch("select file, applied_at from schema_functions"))
        assert {f for f in after if after[f] != before[f]} == {"events.sql"}
        assert await conn.fetchval("select departure(1, 1, 'left')") != "tampered"
        # search.sql's text did not change: it was not applied again, so what
        # was done to its function by hand stays (a migrate is not a repair).
        assert await conn.fetchval("select search_fold('X')") == "tampered"


async def test_a_file_that_fails_leaves_every_function_as_it_was(database_url, tmp_path):
    broken = tmp_path / "functions"
    broken.mkdir()
    for name, text in migrations.function_files().items():
        (broken / name).write_text(text)
    (broken / "events.sql").write_text(
        "create or replace function departure(student bigint, course bigint, otherwise text)"
        " returns text language sql as $$ select 'tampered' $$;\n"
        "create or replace function nothing_here( returns;\n"
    )
    async with connected(database_url) as conn:
        await conn.execute("update schema_functions set digest = 'old'")
        digests = dict(await conn.fetch("select file, digest from schema_functions"))
        with pytest.raises(psycopg.errors.SyntaxError):
            await asyncio.to_thread(migrations.apply, database_url, functions=broken)

        assert await conn.fetchval("select departure(1, 1, 'left')") != "tampered"
        assert dict(await conn.fetch("select file, digest from schema_functions")) == digests
