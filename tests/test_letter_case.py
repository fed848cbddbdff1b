"""Emails and course codes are unique regardless of letter case, the Unicode way.

Migration 0004 makes students_email_key and courses_code_key unique indexes
on fold_case(email) and fold_case(code): Unicode simple case folding, written
into the database as a translate() table that tests/fold_case_table.py
generated. So É is é, Ж is ж and ẞ is ß on every PostgreSQL, whatever its
locale and with or without ICU. The embedded server of `make test` shows
why it has to be so: its locale is C, where lower() folds A to Z only.
"""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psycopg
import pytest

from service import migrations
from tests import fold_case_table
from tests.api import create_course, create_student, problem
from tests.migrating import applied, apply, connected, rollback

CAPACITY = "0003_course_capacity"
LETTER_CASE = "0004_unicode_letter_case"
MIGRATION = migrations.MIGRATIONS_DIR / f"{LETTER_CASE}.sql"
UP_TO_CAPACITY = ["0001_students_and_courses", "0002_student_courses", CAPACITY]

# Two emails that differ only in letter case, the first one stored first.
SAME_EMAILS = [
    # ASCII letters, as lower() always did
    ("ada@example.org", "ADA@Example.ORG"),
    # é/É and ä/Ä, Latin-1 letters that lower() in the C locale leaves alone
    ("élodie@exämple.test", "ÉLODIE@EXÄMPLE.TEST"),
    # ж/Ж and the rest of a Cyrillic address
    ("жанна@пример.рф", "ЖАННА@ПРИМЕР.РФ"),
    # Greek: the final small sigma folds like the other small sigma, as the capital does
    ("οδυσσευς@example.gr", "ΟΔΥΣΣΕΥΣ@example.gr"),
    # the capital sharp s ẞ folds to ß (not to ss: that would be full folding)
    ("straße@example.de", "STRAẞE@example.de"),
    # the Kelvin sign is a capital K to case folding
    ("kelvin@example.org", "\N{KELVIN SIGN}elvin@example.org"),
]

# Two course codes that differ only in letter case.
SAME_CODES = [
    # ASCII letters
    ("cs-101", "CS-101"),
    # umlauts only
    ("äöü-1", "ÄÖÜ-1"),
    # one capital umlaut at the start
    ("Ärzte-1", "ärzte-1"),
    # Cyrillic
    ("ФИЗ-1", "физ-1"),
]

# Two emails made of different letters: both are students.
DIFFERENT_EMAILS = [
    # an accent makes another letter
    ("e@example.org", "é@example.org"),
    # a dotless i is not i (only Turkish folding says so)
    ("i@example.org", "\N{LATIN SMALL LETTER DOTLESS I}@example.org"),
    # İ has no simple case folding: it is not i either
    ("i@example.org", "İ@example.org"),
    # ß is not ss (full case folding would say so, simple folding does not)
    ("ss@example.de", "ß@example.de"),
]

# Two course codes made of different letters: both are courses.
DIFFERENT_CODES = [
    # an accent makes another letter
    ("E-1", "É-1"),
    # a dotless i is not i
    ("i-1", "\N{LATIN SMALL LETTER DOTLESS I}-1"),
    # Ä as one character and as A with a combining diaeresis: letter case is
    # not normalization, so they stay apart
    ("Ä-1", "A\N{COMBINING DIAERESIS}-1"),
]


async def add_student(conn: asyncpg.Connection, email: str) -> int:
    return await conn.fetchval(
        "insert into students (name, email) values ('Student', $1) returning id", email
    )


async def add_course(conn: asyncpg.Connection, code: str) -> int:
    return await conn.fetchval(
        "insert into courses (code, title) values ($1, 'Course') returning id", code
    )


async def contents(conn: asyncpg.Connection) -> dict[str, Any]:
    """Every row of students and courses, the unique indexes and fold_case() if any."""
    return {
        "students": [tuple(r) for r in await conn.fetch("select * from students order by id")],
        "courses": [tuple(r) for r in await conn.fetch("select * from courses order by id")],
        "indexes": await key_indexes(conn),
        "fold_case": await conn.fetchval("select to_regprocedure('fold_case(text)')::text"),
    }


async def key_indexes(conn: asyncpg.Connection) -> dict[str, str]:
    rows = await conn.fetch(
        "select indexname, indexdef from pg_indexes"
        " where indexname in ('students_email_key', 'courses_code_key')"
    )
    return {r["indexname"]: r["indexdef"] for r in rows}


# --- the API -------------------------------------------------------------------


@pytest.mark.parametrize(("first", "second"), SAME_EMAILS)
async def test_an_email_in_other_letter_case_is_taken(client, db, first, second):
    await create_student(client, email=first)

    response = await client.post("/students", json={"name": "Other", "email": second})

    assert response.status == 409, await response.text()
    assert (await problem(response))["type"] == "/problems/email-taken"
    assert await db.fetchval("select array_agg(email) from students") == [first]


@pytest.mark.parametrize(("first", "second"), SAME_EMAILS)
async def test_patching_to_an_email_in_other_letter_case_is_409(client, db, first, second):
    await create_student(client, email=first)
    other = await create_student(client, email="other@example.org")

    response = await client.patch(f"/students/{other['id']}", json={"email": second})

    assert response.status == 409, await response.text()
    assert (await problem(response))["type"] == "/problems/email-taken"
    stored = await db.fetchval("select email from students where id = $1", other["id"])
    assert stored == "other@example.org"


@pytest.mark.parametrize(("first", "second"), SAME_CODES)
async def test_a_code_in_other_letter_case_is_taken(client, db, first, second):
    await create_course(client, code=first)

    response = await client.post("/courses", json={"code": second, "title": "Other"})

    assert response.status == 409, await response.text()
    assert (await problem(response))["type"] == "/problems/code-taken"
    assert await db.fetchval("select array_agg(code) from courses") == [first]


@pytest.mark.parametrize(("first", "second"), SAME_CODES)
async def test_patching_to_a_code_in_other_letter_case_is_409(client, db, first, second):
    await create_course(client, code=first)
    other = await create_course(client, code="OTHER-1")

    response = await client.patch(f"/courses/{other['id']}", json={"code": second})

    assert response.status == 409, await response.text()
    assert (await problem(response))["type"] == "/problems/code-taken"
    assert await db.fetchval("select code from courses where id = $1", other["id"]) == "OTHER-1"


@pytest.mark.parametrize(("first", "second"), DIFFERENT_EMAILS)
async def test_emails_of_different_letters_are_two_students(client, db, first, second):
    await create_student(client, email=first)
    await create_student(client, email=second)

    stored = await db.fetchval("select array_agg(email order by id) from students")
    assert stored == [first, second]


@pytest.mark.parametrize(("first", "second"), DIFFERENT_CODES)
async def test_codes_of_different_letters_are_two_courses(client, db, first, second):
    await create_course(client, code=first)
    await create_course(client, code=second)

    assert await db.fetchval("select array_agg(code order by id) from courses") == [first, second]


@pytest.mark.parametrize(
    "replacement",
    [
        # no unique index at all: the service itself does not compare
        None,
        # 0001's lower() as the C locale (the embedded server's) has it: A to Z only
        'lower({column} collate "C")',
    ],
)
@pytest.mark.parametrize(
    ("index", "table", "column", "path", "bodies"),
    [
        # students: the é/É pair
        (
            "students_email_key",
            "students",
            "email",
            "/students",
            [{"name": "Student", "email": email} for email in SAME_EMAILS[1]],
        ),
        # courses: the äöü/ÄÖÜ pair
        (
            "courses_code_key",
            "courses",
            "code",
            "/courses",
            [{"code": code, "title": "Course"} for code in SAME_CODES[1]],
        ),
    ],
)
async def test_without_fold_case_the_other_letter_case_gets_in(
    client, db, replacement, index, table, column, path, bodies
):
    # What the tests above would meet without 0004.
    await db.execute(f"drop index {index}")
    if replacement:
        expression = replacement.format(column=column)
        await db.execute(f"create unique index {index} on {table} ({expression})")
    for body in bodies:
        response = await client.post(path, json=body)
        assert response.status == 201, await response.text()


# --- fold_case() in the database ---------------------------------------------


def python_folds_as_the_migration() -> bool:
    """Whether this Python's unicodedata generates the function in the migration."""
    return fold_case_table.create_function() in MIGRATION.read_text(encoding="utf-8")


def skip_unless_python_folds_as_the_migration() -> None:
    if not python_folds_as_the_migration():
        pytest.skip(
            f"Python's Unicode {unicodedata.unidata_version} has other case pairs than "
            f"the migration's Unicode {fold_case_table.UNICODE_VERSION}"
        )


def test_the_migration_holds_the_table_python_generates():
    # Python 3.11 (Unicode 14.0) printed it; 3.12 and 3.13 print the same.
    if unicodedata.unidata_version != fold_case_table.UNICODE_VERSION:
        skip_unless_python_folds_as_the_migration()
    assert python_folds_as_the_migration(), (
        "migrations/0004_unicode_letter_case.sql does not hold the function that"
        " `python -m tests.fold_case_table` prints"
    )


async def test_fold_case_is_python_simple_case_folding_for_every_code_point(db):
    # Character by character, all 1,112,062 of them (but NUL), in chunks: the
    # database's fold_case() and Python agree whatever the server's locale.
    skip_unless_python_folds_as_the_migration()
    chars = fold_case_table.code_points()
    chunk = 1 << 16
    for start in range(0, len(chars), chunk):
        part = chars[start : start + chunk]
        folded = await db.fetchval(
            "select array_agg(fold_case(c) order by n) from unnest($1::text[]) with ordinality t(c, n)",
            part,
        )
        wrong = [
            f"U+{ord(c):04X} {c!r}: {got!r}, not {fold_case_table.fold(c)!r}"
            for c, got in zip(part, folded, strict=True)
            if got != fold_case_table.fold(c)
        ]
        assert not wrong, wrong[:20]


@pytest.mark.parametrize(
    "text",
    [
        # only ASCII: the function's 26-letter shortcut
        "Ada.Lovelace+CS@Example.ORG",
        # mostly ASCII with one É: the whole table
        "Élodie.Lovelace@EXAMPLE.org",
        # every cased script of the table in one string
        "ÄΣΑΣЖԱႠᏸᲐḀἈⰀⲀꙀＡ𐐀𐒰𐕰𐲀𑢠𖹀𞤀",
    ],
)
async def test_fold_case_folds_a_string_character_by_character(db, text):
    assert await db.fetchval("select fold_case($1)", text) == fold_case_table.fold_text(text)


async def test_fold_case_of_null_is_null(db):
    assert await db.fetchval("select fold_case(null)") is None


# --- the migration -----------------------------------------------------------


async def test_the_indexes_compare_folded_values(db):
    indexes = await key_indexes(db)
    assert "(fold_case(email))" in indexes["students_email_key"]
    # A code per term since migration 0016: the folded code first.
    assert "(fold_case(code), COALESCE(term_id, " in indexes["courses_code_key"]
    assert all(definition.startswith("CREATE UNIQUE INDEX") for definition in indexes.values())


@asynccontextmanager
async def database_beside(url: str, suffix: str, options: str) -> AsyncIterator[str]:
    """A new empty database on the server of `url`, made from template0 with `options`."""
    name = f"{urlsplit(url).path.lstrip('/')}_{suffix}"
    async with connected(url) as conn:
        await conn.execute(f'create database "{name}" template template0 {options}')
        try:
            yield urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
        finally:
            await conn.execute(f'drop database "{name}" with (force)')


def c_locale(url: str) -> AbstractAsyncContextManager[str]:
    """A database like those of the embedded server: UTF8 in the C locale.

    There 0001's lower() folds A to Z only, so rows that differ only in the
    case of other letters got in; servers with another locale refused many
    of them already.
    """
    return database_beside(url, "c", "encoding 'UTF8' locale 'C' locale_provider libc")


async def test_the_migration_names_the_rows_that_would_collide_and_changes_nothing(
    empty_database,
):
    async with c_locale(empty_database) as dsn:
        await apply(dsn, target=CAPACITY)
        async with connected(dsn) as conn:
            # Two students and two courses that lower() in the C locale keeps
            # apart, and a student who collides with nobody.
            await add_student(conn, "ada@example.org")
            elodie = await add_student(conn, "élodie@exämple.test")
            capital = await add_student(conn, "ÉLODIE@EXÄMPLE.TEST")
            umlauts = await add_course(conn, "äöü-1")
            capitals = await add_course(conn, "ÄÖÜ-1")
            before = await contents(conn)

        with pytest.raises(psycopg.errors.UniqueViolation) as caught:
            await apply(dsn, target=LETTER_CASE)

        message = caught.value.diag.message_primary
        assert (
            f"students {elodie} and {capital} have emails that differ only in letter case:"
            " 'élodie@exämple.test' and 'ÉLODIE@EXÄMPLE.TEST'"
        ) in message
        assert (
            f"courses {umlauts} and {capitals} have codes that differ only in letter case:"
            " 'äöü-1' and 'ÄÖÜ-1'"
        ) in message
        assert await applied(dsn) == UP_TO_CAPACITY
        async with connected(dsn) as conn:
            assert await contents(conn) == before
            assert "(lower(email))" in before["indexes"]["students_email_key"]
            assert before["fold_case"] is None

            # With one of each pair gone, the migration goes through.
            await conn.execute("delete from students where id = $1", capital)
            await conn.execute("delete from courses where id = $1", capitals)
        assert await apply(dsn, target=LETTER_CASE) == [LETTER_CASE]


async def test_many_collisions_are_named_up_to_five_and_counted(empty_database):
    async with c_locale(empty_database) as dsn:
        await apply(dsn, target=CAPACITY)
        async with connected(dsn) as conn:
            for n in range(8):
                await add_student(conn, f"ä{n}@example.org")
                await add_student(conn, f"Ä{n}@example.org")
            await add_course(conn, "ж-1")
            await add_course(conn, "Ж-1")

        with pytest.raises(psycopg.errors.UniqueViolation) as caught:
            await apply(dsn, target=LETTER_CASE)

        named = caught.value.diag.message_primary.split("; ")
        assert named[:5] == [
            f"students {2 * n + 1} and {2 * n + 2} have emails that differ only in letter case:"
            f" 'ä{n}@example.org' and 'Ä{n}@example.org'"
            for n in range(5)
        ]
        # Students come first; three more pairs of students and the courses are only counted.
        assert named[5:] == ["and 4 more groups like these"]
        assert "then apply 0004_unicode_letter_case again" in caught.value.diag.message_hint
        assert await applied(dsn) == UP_TO_CAPACITY


async def test_three_values_of_one_group_are_all_named(empty_database):
    async with c_locale(empty_database) as dsn:
        await apply(dsn, target=CAPACITY)
        async with connected(dsn) as conn:
            ids = [await add_course(conn, code) for code in ("жж", "Жж", "ЖЖ")]

        with pytest.raises(psycopg.errors.UniqueViolation) as caught:
            await apply(dsn, target=LETTER_CASE)

        assert caught.value.diag.message_primary == (
            f"courses {ids[0]}, {ids[1]} and {ids[2]} have codes that differ only in letter case:"
            " 'жж', 'Жж' and 'ЖЖ'"
        )


async def test_the_migration_and_its_rollback_keep_every_row(empty_database):
    dsn = empty_database
    await apply(dsn, target=CAPACITY)
    async with connected(dsn) as conn:
        for email in ("ada@example.org", "Zoë@bücher.de", "ЖАННА@пример.рф", "ß@example.de"):
            await add_student(conn, email)
        for code in ("CS-101", "ÄÖÜ-1", "ss-1", "ß-1", "ẞ-2"):
            await add_course(conn, code)
        before = await contents(conn)

    assert await apply(dsn, target=LETTER_CASE) == [LETTER_CASE]
    async with connected(dsn) as conn:
        after = await contents(conn)
        assert (after["students"], after["courses"]) == (before["students"], before["courses"])
        assert after["indexes"] == {
            "students_email_key": before["indexes"]["students_email_key"].replace(
                "lower(email)", "fold_case(email)"
            ),
            "courses_code_key": before["indexes"]["courses_code_key"].replace(
                "lower(code)", "fold_case(code)"
            ),
        }

    assert await rollback(dsn) == [LETTER_CASE]
    async with connected(dsn) as conn:
        assert await contents(conn) == before


async def test_a_database_not_in_utf8_is_refused_with_the_reason(empty_database):
    # In Latin-1, fold_case()'s table would fold the wrong bytes.
    options = "encoding 'LATIN1' locale 'C' locale_provider libc"
    async with database_beside(empty_database, "latin1", options) as dsn:
        await apply(dsn, target=CAPACITY)

        with pytest.raises(psycopg.errors.FeatureNotSupported) as caught:
            await apply(dsn, target=LETTER_CASE)

        name = urlsplit(dsn).path.lstrip("/")
        assert caught.value.diag.message_primary == (
            f"database {name} has encoding LATIN1, but emails and course codes are"
            " compared by Unicode letter case, which needs UTF8"
        )
        assert await applied(dsn) == UP_TO_CAPACITY
