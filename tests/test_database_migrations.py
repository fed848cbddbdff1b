"""Schema migrations on a real PostgreSQL: stairway, data safety, constraints, capacity.

Every test starts from `empty_database` (a fresh database with no schema) and
drives yoyo through `service.migrations`. yoyo is synchronous (psycopg), so it
runs in a worker thread while the test looks at the database with asyncpg.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import psycopg
import pytest
from yoyo import read_migrations
from yoyo.migrations import read_sql_migration

from service import migrations
from tests.migrating import applied, apply, connected, rollback

SQL_FILES = sorted(migrations.MIGRATIONS_DIR.glob("*.sql"))
FORWARD_FILES = [p for p in SQL_FILES if not p.name.endswith(".rollback.sql")]
ROLLBACK_FILES = [p for p in SQL_FILES if p.name.endswith(".rollback.sql")]
MIGRATION_IDS = [p.stem for p in FORWARD_FILES]


def _transactional() -> dict[str, bool]:
    """id -> whether yoyo applies (and rolls back) the migration in one transaction."""
    found = {}
    for migration in read_migrations(str(migrations.MIGRATIONS_DIR)):
        migration.load()  # reads the file's directives
        found[migration.id] = migration.use_transactions
    return found


TRANSACTIONAL = _transactional()

FIRST = "0001_students_and_courses"
ENROLLMENTS = "0002_student_courses"
CAPACITY = "0003_course_capacity"
BEFORE_TERMS = "0015_functions_in_one_place"
TERMS = "0016_terms"
MEETING_TIMES = "0017_meeting_times"
SOURCED_IDS = "0018_sourced_ids"
SOURCED_IDS_FILLED = "0019_sourced_ids_filled"
OUR_TABLES = ["students", "courses", "student_courses"]


# --- helpers -----------------------------------------------------------------


# Everything a migration may create in the public schema, in a form that does
# not depend on OIDs; yoyo's own bookkeeping tables (_yoyo_*, yoyo_lock) are left out.
SCHEMA_QUERIES = {
    "relations": """
        select relname, relkind::text
        from pg_class
        where relnamespace = 'public'::regnamespace and relname !~ '^_?yoyo_'
        order by 1
    """,
    "columns": """
        -- The place among the live columns: a column dropped by a rollback
        -- keeps its number, so ordinal_position alone would differ on re-apply.
        select table_name,
               row_number() over (partition by table_name order by ordinal_position),
               column_name, data_type, is_nullable,
               column_default, is_identity, identity_generation
        from information_schema.columns
        where table_schema = 'public' and table_name !~ '^_?yoyo_'
        order by 1, 2
    """,
    "constraints": """
        select conrelid::regclass::text, conname, pg_get_constraintdef(oid)
        from pg_constraint
        where connamespace = 'public'::regnamespace and conrelid::regclass::text !~ '^_?yoyo_'
        order by 1, 2
    """,
    "indexes": """
        select tablename, indexname, indexdef
        from pg_indexes
        where schemaname = 'public' and tablename !~ '^_?yoyo_'
        order by 1, 2
    """,
    "triggers": """
        select t.tgrelid::regclass::text, t.tgname, pg_get_triggerdef(t.oid)
        from pg_trigger t
        join pg_class c on c.oid = t.tgrelid
        where c.relnamespace = 'public'::regnamespace and not t.tgisinternal
        order by 1, 2
    """,
    "functions": """
        select proname, pg_get_functiondef(oid)
        from pg_proc
        where pronamespace = 'public'::regnamespace
        order by 1, 2  -- overloads share a name
    """,
}


async def schema(conn: asyncpg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    return {name: [tuple(r) for r in await conn.fetch(sql)] for name, sql in SCHEMA_QUERIES.items()}


async def signatures(conn: asyncpg.Connection) -> set[str]:
    """Every function of the public schema as name(argument types): overloads apart."""
    rows = await conn.fetch(
        "select format('%s(%s)', proname, pg_get_function_identity_arguments(oid)) from pg_proc"
        " where pronamespace = 'public'::regnamespace"
    )
    return {r[0] for r in rows}


async def tables(conn: asyncpg.Connection) -> set[str]:
    """Which of our tables exist."""
    rows = await conn.fetch(
        "select relname from pg_class"
        " where relnamespace = 'public'::regnamespace and relkind = 'r' and relname = any($1)",
        OUR_TABLES,
    )
    return {r["relname"] for r in rows}


async def add_student(conn: asyncpg.Connection, email: str) -> int:
    return await conn.fetchval(
        "insert into students (name, email) values ('Student', $1) returning id", email
    )


async def add_course(conn: asyncpg.Connection, code: str, capacity: int | None = None) -> int:
    return await conn.fetchval(
        "insert into courses (code, title, capacity) values ($1, 'Course', $2) returning id",
        code,
        capacity,
    )


async def enroll(conn: asyncpg.Connection, student_id: int | None, course_id: int | None) -> None:
    await conn.execute(
        "insert into student_courses (student_id, course_id) values ($1, $2)",
        student_id,
        course_id,
    )


async def enrolled(conn: asyncpg.Connection, course_id: int) -> list[int]:
    rows = await conn.fetch(
        "select student_id from student_courses where course_id = $1 order by student_id",
        course_id,
    )
    return [r["student_id"] for r in rows]


async def wait_for_lock_waiters(monitor: asyncpg.Connection, count: int) -> None:
    """Until `count` sessions of this database wait for a lock (10 s at most).

    `monitor` must not be inside a transaction: pg_stat_activity is read once
    per transaction.
    """
    deadline = time.monotonic() + 10
    while True:
        waiting = await monitor.fetchval(
            "select count(*) from pg_stat_activity"
            " where datname = current_database() and wait_event_type = 'Lock'"
        )
        if waiting >= count:
            return
        assert time.monotonic() < deadline, f"{waiting} of {count} sessions wait for a lock"
        await asyncio.sleep(0.02)


# Data meant to survive migrations byte for byte: scripts that are not ASCII,
# decomposed accents, astral-plane characters, characters that the row's text
# form has to quote, and the longest and shortest values the checks allow.
NAMES = [
    "Ada Lovelace",
    "Zoë Ångström",
    "Łukasz Żółć",
    "李小龙",
    "\u0645\u062d\u0645\u062f \u0627\u0644\u062e\u0648\u0627\u0631\u0632\u0645\u064a",  # Arabic, RTL
    "Jose\u0301 Garci\u0301a",  # combining acute accents, not precomposed
    "\U0001f642 Smiley",
    'O\'Brien, "Danny" (the 2nd)',
    "back\\slash {braces}",
    "x" * 200,
    "A",
]
EMAIL_LOCALS = ["ada", "ADA", "Zoë", "MiXeD.Case", "o'brien"]
EMAIL_DOMAINS = ["example.org", "Example.ORG", "UNI.EDU", "bücher.de"]
CODE_PREFIXES = ["CS", "cs", "Math", "ÉCON", "ml"]
TITLES = [
    "Algorithms",
    "Théorie des catégories",
    "線形代数",
    "Intro \U0001f4d0 Geometry",
    "T" * 200,
]


async def seed(conn: asyncpg.Connection) -> None:
    """A few thousand students and courses, with gaps in their ids."""
    rng = random.Random(20240601)
    epoch = datetime(2015, 1, 1, tzinfo=UTC)

    def moment() -> datetime:
        return epoch + timedelta(microseconds=rng.randrange(10 * 365 * 86_400 * 10**6))

    students = [
        (
            NAMES[i % len(NAMES)],
            f"{rng.choice(EMAIL_LOCALS)}.{i}@{rng.choice(EMAIL_DOMAINS)}",
            moment(),
        )
        for i in range(3000)
    ]
    courses = [
        (
            f"{rng.choice(CODE_PREFIXES)}-{i}",
            TITLES[i % len(TITLES)],
            # a third without a limit; the rest includes both bounds of the check
            None if i % 3 == 0 else rng.choice([1, 100_000, rng.randint(2, 99_999)]),
            moment(),
        )
        for i in range(2000)
    ]
    await conn.copy_records_to_table(
        "students", records=students, columns=["name", "email", "created_at"]
    )
    await conn.copy_records_to_table(
        "courses", records=courses, columns=["code", "title", "capacity", "created_at"]
    )
    # Holes, and the newest rows deleted: each identity sequence is ahead of max(id).
    await conn.execute("delete from students where id % 7 = 0 or id > 2990")
    await conn.execute("delete from courses where id % 5 = 0 or id > 1995")


async def snapshot(conn: asyncpg.Connection) -> dict[str, Any]:
    """Every row of students and courses, their definitions and their sequences."""
    definition = await schema(conn)
    ours = ("students", "courses")
    return {
        # select *: a snapshot must see every column, including ones we do not know of.
        "students": [tuple(r) for r in await conn.fetch("select * from students order by id")],
        "courses": [tuple(r) for r in await conn.fetch("select * from courses order by id")],
        # The server's own text of every row, in case a Python round trip hides a change.
        "checksums": tuple(
            await conn.fetchrow(
                "select (select md5(string_agg(s::text, ',' order by s.id)) from students s),"
                " (select md5(string_agg(c::text, ',' order by c.id)) from courses c)"
            )
        ),
        "sequences": [
            tuple(r)
            for r in await conn.fetch(
                "select sequencename, last_value, increment_by from pg_sequences"
                " where schemaname = 'public' and sequencename !~ '^_?yoyo_' order by 1"
            )
        ],
        "definition": {
            kind: [row for row in definition[kind] if row[0] in ours]
            for kind in ("columns", "constraints", "indexes")
        },
    }


def assert_same_data(after: dict[str, Any], before: dict[str, Any]) -> None:
    # Small parts first, so a failure names what changed before dumping rows.
    assert after["checksums"] == before["checksums"]
    assert after["sequences"] == before["sequences"]
    assert after["definition"] == before["definition"]
    assert len(after["students"]) == len(before["students"])
    assert after["students"] == before["students"]
    assert len(after["courses"]) == len(before["courses"])
    assert after["courses"] == before["courses"]


# --- the files ---------------------------------------------------------------


def test_migration_files_are_numbered_in_order_and_yoyo_reads_them_so():
    assert MIGRATION_IDS[:3] == [FIRST, ENROLLMENTS, CAPACITY]
    for number, path in enumerate(FORWARD_FILES, start=1):
        assert re.fullmatch(r"\d{4}_[a-z0-9_]+\.sql", path.name), path.name
        assert path.name.startswith(f"{number:04d}_"), f"{path.name}: numbers must not skip"
    assert [m.id for m in read_migrations(str(migrations.MIGRATIONS_DIR))] == MIGRATION_IDS


def test_every_migration_has_a_rollback_and_every_rollback_a_migration():
    forward = {p.name.removesuffix(".sql") for p in FORWARD_FILES}
    backward = {p.name.removesuffix(".rollback.sql") for p in ROLLBACK_FILES}
    assert forward == backward


def test_every_migration_after_the_first_depends_on_its_predecessor():
    # Read by yoyo itself: a `-- depends:` below the first statement would be ignored.
    by_id = {m.id: m for m in read_migrations(str(migrations.MIGRATIONS_DIR))}
    assert {d.id for d in by_id[MIGRATION_IDS[0]].depends} == set()
    for previous, current in itertools.pairwise(MIGRATION_IDS):
        assert {d.id for d in by_id[current].depends} == {previous}, current


@pytest.mark.parametrize(
    "path",
    # every file, forward and rollback: a rollback's DROP TABLE takes an ACCESS
    # EXCLUSIVE lock and must not queue every reader behind it either
    SQL_FILES,
    ids=[p.name for p in SQL_FILES],
)
def test_every_migration_file_sets_lock_timeout_before_its_first_ddl(path):
    statements = [
        line.strip().lower()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.strip().startswith("--")
    ]
    assert statements, f"{path.name} is empty"
    # Whether yoyo runs the file in one transaction is the forward file's
    # directive, for its rollback too.
    migration = path.name.removesuffix(".sql").removesuffix(".rollback")
    if TRANSACTIONAL[migration]:
        # SET LOCAL: scoped to the migration's transaction, not left on yoyo's connection.
        expected = r"set local lock_timeout = '\d+m?s';"
    else:
        # `-- transactional: false`: each statement commits on its own, so a
        # SET LOCAL would end with its own statement (PostgreSQL only warns)
        # and leave every later one waiting for a lock without a bound. The
        # session's setting lasts to the file's end, and yoyo's connection
        # is closed after the migrate.
        expected = r"set lock_timeout = '\d+m?s';"
    assert re.fullmatch(expected, statements[0]), f"{path.name} starts with {statements[0]!r}"


def test_a_rollback_says_it_is_not_transactional_exactly_when_its_migration_does():
    # yoyo reads the directive of the forward file only; the rollback's is for its reader.
    for path in ROLLBACK_FILES:
        migration = path.name.removesuffix(".rollback.sql")
        said = re.search(r"^-- transactional: false$", path.read_text(encoding="utf-8"), re.M)
        assert bool(said) == (not TRANSACTIONAL[migration]), path.name


# --- stairway ----------------------------------------------------------------


async def test_stairway_apply_rollback_apply_each_migration(empty_database):
    dsn = empty_database
    async with connected(dsn) as conn:
        empty = await schema(conn)
        assert not any(empty.values()), empty
        assert await applied(dsn) == []

        for step, migration in enumerate(MIGRATION_IDS):
            before = await schema(conn)

            assert await apply(dsn, target=migration) == [migration]
            after = await schema(conn)
            assert after != before, f"{migration} changed nothing"
            assert await applied(dsn) == MIGRATION_IDS[: step + 1]

            assert await rollback(dsn) == [migration]
            assert await schema(conn) == before, f"rolling back {migration} left traces"
            assert await applied(dsn) == MIGRATION_IDS[:step]

            assert await apply(dsn, target=migration) == [migration]
            assert await schema(conn) == after, f"{migration} applied twice differs"
            assert await applied(dsn) == MIGRATION_IDS[: step + 1]

        assert await tables(conn) == set(OUR_TABLES)

        assert await rollback(dsn, count=len(MIGRATION_IDS)) == MIGRATION_IDS[::-1]
        assert await applied(dsn) == []
        assert await tables(conn) == set()
        assert await schema(conn) == empty


async def test_applying_twice_applies_nothing_the_second_time(empty_database):
    dsn = empty_database
    assert await apply(dsn) == MIGRATION_IDS
    async with connected(dsn) as conn:
        migrated = await schema(conn)

    assert await apply(dsn) == []
    assert await apply(dsn, target=FIRST) == []
    assert await applied(dsn) == MIGRATION_IDS
    async with connected(dsn) as conn:
        assert await schema(conn) == migrated


async def test_a_migration_gives_up_when_its_tables_are_busy(empty_database):
    dsn = empty_database
    await apply(dsn, target=FIRST)
    async with connected(dsn) as holder:
        # An open write transaction on students: the foreign key of 0002 needs a
        # SHARE ROW EXCLUSIVE lock on students, which waits for it.
        busy = holder.transaction()
        await busy.start()
        await holder.execute("insert into students (name, email) values ('Ada', 'ada@example.org')")
        attempt = asyncio.create_task(apply(dsn, target=ENROLLMENTS))
        try:
            # 0002 sets lock_timeout = 5s; without it the attempt waits as long as we do.
            done, _ = await asyncio.wait({attempt}, timeout=15)
        finally:
            await busy.rollback()
        assert attempt in done, "the migration waited for the lock beyond its lock_timeout"
        with pytest.raises(psycopg.errors.LockNotAvailable):
            await attempt

        # The failed migration left nothing behind and can run once the lock is free.
        assert await applied(dsn) == [FIRST]
        assert await tables(holder) == {"students", "courses"}
        assert await apply(dsn, target=ENROLLMENTS) == [ENROLLMENTS]


# --- existing data -----------------------------------------------------------


async def test_adding_enrollments_leaves_students_and_courses_untouched(empty_database):
    dsn = empty_database
    assert await apply(dsn, target=FIRST) == [FIRST]
    async with connected(dsn) as conn:
        await seed(conn)
        before = await snapshot(conn)
    assert len(before["students"]) > 2500 and len(before["courses"]) > 1500
    assert any(row[3] is None for row in before["courses"])
    assert any(row[3] is not None for row in before["courses"])

    # 0004 and 0005 change the courses' definition (indexes, columns): their
    # own tests show they keep every row.
    assert await apply(dsn, target=CAPACITY) == [ENROLLMENTS, CAPACITY]

    async with connected(dsn) as conn:
        assert_same_data(await snapshot(conn), before)

        # New rows continue each sequence, past the deleted ones.
        sequences = {name: last for name, last, _ in before["sequences"]}
        student = await add_student(conn, "new@example.org")
        course = await add_course(conn, "NEW-1")
        assert student == sequences["students_id_seq"] + 1
        assert course == sequences["courses_id_seq"] + 1
        assert student > max(row[0] for row in before["students"]) + 1
        assert course > max(row[0] for row in before["courses"]) + 1

        # Old rows take part in the new relation.
        old_student, old_course = before["students"][0][0], before["courses"][-1][0]
        await enroll(conn, old_student, old_course)
        assert await enrolled(conn, old_course) == [old_student]


async def test_rolling_back_enrollments_drops_only_student_courses(empty_database):
    dsn = empty_database
    await apply(dsn, target=FIRST)
    async with connected(dsn) as conn:
        await seed(conn)
        before = await snapshot(conn)
    await apply(dsn, target=MIGRATION_IDS[-1])
    async with connected(dsn) as conn:
        by_migrations = await signatures(conn)
    await apply(dsn)
    async with connected(dsn) as conn:
        # What only sql/functions defines: a function, or an overload of one
        # (batch_enroll's), that no migration creates.
        functions_only = await signatures(conn) - by_migrations
        assert {s.partition("(")[0] for s in functions_only} >= {
            "enroll_run",
            "registration_blocker",
            "batch_enroll",
        }
        # Enrollments to throw away with the table.
        await conn.execute(
            "insert into student_courses (student_id, course_id)"
            " select s.id, c.id"
            " from (select id from students order by id limit 20) s"
            " cross join (select id from courses where capacity is null order by id limit 5) c"
        )

    # Down the later migrations one at a time: the enrollments stay.
    for migration in reversed(MIGRATION_IDS[3:]):
        assert await rollback(dsn) == [migration]
        async with connected(dsn) as conn:
            assert await conn.fetchval("select count(*) from student_courses") == 100

    assert await rollback(dsn) == [CAPACITY]
    async with connected(dsn) as conn:
        definition = await schema(conn)
        assert definition["triggers"] == []
        # What only sql/functions defines stays, unused: no migration made it
        # (docs/development.md, "Functions and triggers").
        assert await signatures(conn) == functions_only
        assert await conn.fetchval("select count(*) from student_courses") == 100

    assert await rollback(dsn) == [ENROLLMENTS]
    assert await applied(dsn) == [FIRST]
    async with connected(dsn) as conn:
        assert await tables(conn) == {"students", "courses"}
        assert not any("student_courses" in row[0] for row in (await schema(conn))["relations"])
        assert_same_data(await snapshot(conn), before)

    assert await apply(dsn, target=CAPACITY) == [ENROLLMENTS, CAPACITY]
    async with connected(dsn) as conn:
        assert await conn.fetchval("select count(*) from student_courses") == 0
        assert_same_data(await snapshot(conn), before)
        student = before["students"][0][0]
        full = next(row[0] for row in before["courses"] if row[3] == 1)
        await enroll(conn, student, full)
        assert await enrolled(conn, full) == [student]
        # The capacity triggers are back too.
        with pytest.raises(asyncpg.CheckViolationError):
            await enroll(conn, before["students"][1][0], full)


# --- terms (0016) ------------------------------------------------------------


async def seed_places(conn: asyncpg.Connection) -> None:
    """On top of seed(): enrollments in courses without a limit, a full course with a queue."""
    await conn.execute(
        "insert into student_courses (student_id, course_id)"
        " select s.id, c.id"
        " from (select id from students order by id limit 20) s"
        " cross join (select id from courses where capacity is null order by id limit 5) c"
    )
    full = await conn.fetchval(
        "update courses set waitlist_capacity = 3"
        " where id = (select min(id) from courses where capacity = 1) returning id"
    )
    last = [r["id"] for r in await conn.fetch("select id from students order by id desc limit 4")]
    await enroll(conn, last[0], full)
    for student in last[1:]:
        await conn.execute(
            "insert into course_waitlist (student_id, course_id) values ($1, $2)", student, full
        )


async def places(conn: asyncpg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    # select *: the columns 0016 adds show up.
    return {
        "student_courses": [
            tuple(r)
            for r in await conn.fetch(
                "select * from student_courses order by student_id, course_id"
            )
        ],
        "course_waitlist": [
            tuple(r)
            for r in await conn.fetch("select * from course_waitlist order by course_id, seq")
        ],
    }


async def test_terms_keep_every_row_and_so_does_their_rollback(empty_database):
    dsn = empty_database
    await apply(dsn, target=BEFORE_TERMS)
    async with connected(dsn) as conn:
        await seed(conn)
        await seed_places(conn)
        before, held = await snapshot(conn), await places(conn)
        triggers = {(table, name) for table, name, _ in (await schema(conn))["triggers"]}
    assert len(held["student_courses"]) == 101 and len(held["course_waitlist"]) == 3

    # The migrations of the release that brought terms: 0016 and 0017.
    assert await apply(dsn, target=MEETING_TIMES) == [TERMS, MEETING_TIMES]
    async with connected(dsn) as conn:
        after, added = await snapshot(conn), await places(conn)
    # Every row as it was, the new columns at their defaults: no term, no
    # credits, meetings (nor their minutes) or prerequisites, no hold,
    # nothing overridden.
    old = {name for name, *_ in before["sequences"]}
    assert [s for s in after["sequences"] if s[0] in old] == before["sequences"]
    for table, defaults in (("students", (0,)), ("courses", (None, 0, "[]", [], []))):
        width = len(before[table][0])
        assert [row[:width] for row in after[table]] == before[table], table
        assert [row[width:] for row in after[table]] == [defaults] * len(before[table]), table
    for table, rows in held.items():
        assert added[table] == [(*row, None) for row in rows], table
    # Then the newest schema (the later migrations, whose own tests show
    # they keep every row) and the functions.
    later = MIGRATION_IDS[MIGRATION_IDS.index(MEETING_TIMES) + 1 :]
    assert await apply(dsn) == later
    async with connected(dsn) as conn:
        definitions = await schema(conn)

    # Back to 0015: its rows and definitions exactly, and only the triggers of
    # the release before (whose migrate puts back their bodies); none of
    # 0016's functions would find their columns.
    assert await rollback(dsn, count=len(later) + 2) == [*later[::-1], MEETING_TIMES, TERMS]
    async with connected(dsn) as conn:
        assert_same_data(await snapshot(conn), before)
        assert await places(conn) == held
        definition = await schema(conn)
        assert {(table, name) for table, name, _ in definition["triggers"]} == triggers

    # And forward again: as the first time, registration.sql's triggers included.
    assert await apply(dsn, target=MEETING_TIMES) == [TERMS, MEETING_TIMES]
    async with connected(dsn) as conn:
        assert_same_data(await snapshot(conn), after)
        assert await places(conn) == added
    assert await apply(dsn) == later
    async with connected(dsn) as conn:
        assert await schema(conn) == definitions


async def test_the_terms_rollback_refuses_while_a_code_is_in_two_terms(empty_database):
    dsn = empty_database
    await apply(dsn)
    contents = {
        "terms": "select id, code from terms order by id",
        "courses": "select id, code, term_id from courses order by id",
        "holds": "select student_id, reason from student_holds order by id",
        "students": "select id, holds from students order by id",
    }
    async with connected(dsn) as conn:
        spring, fall = [
            await conn.fetchval(
                "insert into terms (code, title, starts_on, ends_on)"
                " values ($1, 'Term', '2027-01-01', '2027-12-31') returning id",
                code,
            )
            for code in ("2027-SPRING", "2027-FALL")
        ]
        # One code in two terms, as 0016 allows; 0015 allowed it once in all.
        for code, term in (("MATH101", spring), ("math101", fall), ("PHYS101", spring)):
            await conn.execute(
                "insert into courses (code, title, term_id) values ($1, 'Course', $2)", code, term
            )
        student = await add_student(conn, "ada@example.org")
        await conn.execute(
            "insert into student_holds (student_id, reason) values ($1, 'Fees')", student
        )
        before = {key: [tuple(r) for r in await conn.fetch(sql)] for key, sql in contents.items()}
    assert before["students"] == [(student, 1)]

    # Down to 0016, whose rollback is the one that refuses.
    later = MIGRATION_IDS[MIGRATION_IDS.index(TERMS) + 1 :]
    assert await rollback(dsn, count=len(later)) == later[::-1]
    with pytest.raises(psycopg.errors.UniqueViolation) as caught:
        await rollback(dsn)
    assert (
        caught.value.diag.message_primary == 'could not create unique index "courses_code_folded"'
    )
    # Key (public.fold_case(code))=(math101) is duplicated: the folded code.
    assert caught.value.diag.message_detail.endswith("=(math101) is duplicated.")

    # Refused as a whole: 0016 stays, and so does every row it would drop.
    assert await applied(dsn) == MIGRATION_IDS[: MIGRATION_IDS.index(TERMS) + 1]
    async with connected(dsn) as conn:
        assert {
            k: [tuple(r) for r in await conn.fetch(sql)] for k, sql in contents.items()
        } == before
        await conn.execute("delete from courses where code = 'math101'")
    assert await rollback(dsn) == [TERMS]
    async with connected(dsn) as conn:
        codes = await conn.fetch("select code from courses order by id")
        assert [r["code"] for r in codes] == ["MATH101", "PHYS101"]


# --- sourced ids, modified_at and tombstones (0018, 0019) ---------------------

SOURCED = ["students", "courses", "terms", "student_courses"]
KEYS = {
    "students": ("id",),
    "courses": ("id",),
    "terms": ("id",),
    "student_courses": ("student_id", "course_id"),
}
# What 0018 adds to each table; the rest of a row must come through 0018 and 0019 as it was.
ADDED = {"sourced_id", "modified_at"}
FILLED_FILE = migrations.MIGRATIONS_DIR / f"{SOURCED_IDS_FILLED}.sql"
FILLED_ROLLBACK = migrations.MIGRATIONS_DIR / f"{SOURCED_IDS_FILLED}.rollback.sql"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


async def seed_terms(conn: asyncpg.Connection) -> None:
    """On top of seed() and seed_places(): three terms, every tenth course in one."""
    await conn.execute(
        "insert into terms (code, title, starts_on, ends_on)"
        " select '2027-' || n, 'Term ' || n, '2027-01-01', '2027-06-30'"
        " from generate_series(1, 3) n"
    )
    await conn.execute(
        "update courses set term_id = (select min(id) from terms) + id % 3 where id % 10 = 1"
    )


async def keyed(conn: asyncpg.Connection, table: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Every row of `table` by its key, as {column: value}; select *: the columns 0018 adds too."""
    # select *: a table's every column (no name formatted into SQL, so one statement each)
    rows = await conn.fetch(
        {
            "students": "select * from students",
            "courses": "select * from courses",
            "terms": "select * from terms",
            "student_courses": "select * from student_courses",
        }[table]
    )
    return {tuple(r[k] for k in KEYS[table]): dict(r) for r in rows}


def without_added(rows: dict[Any, dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    return {key: {c: v for c, v in row.items() if c not in ADDED} for key, row in rows.items()}


async def sourced_ids(conn: asyncpg.Connection) -> dict[str, dict[tuple[Any, ...], str | None]]:
    return {
        table: {key: row["sourced_id"] for key, row in (await keyed(conn, table)).items()}
        for table in SOURCED
    }


async def sourced_id_schema(conn: asyncpg.Connection) -> dict[str, Any]:
    """What 0019 makes of sourced_id: NOT NULL, indexes (valid?), checks (validated?)."""
    return {
        "not_null": {
            r[0]: r[1]
            for r in await conn.fetch(
                "select attrelid::regclass::text, attnotnull from pg_attribute"
                " where attname = 'sourced_id' and attrelid = any($1::regclass[])",
                SOURCED,
            )
        },
        "indexes": {
            r[0]: (r[1], r[2])
            for r in await conn.fetch(
                "select indexrelid::regclass::text, indisunique, indisvalid from pg_index"
                " where indrelid = any($1::regclass[])"
                "   and indexrelid::regclass::text ~ '(sourced_id_key|modified_at|enrolled_at)$'",
                SOURCED,
            )
        },
        "checks": {
            r[0]: r[1]
            for r in await conn.fetch(
                "select conname, convalidated from pg_constraint"
                " where contype = 'c' and conrelid = any($1::regclass[]) and conname ~ 'sourced_id'",
                SOURCED,
            )
        },
    }


FILLED_SCHEMA = {
    "not_null": dict.fromkeys(SOURCED, True),
    "indexes": {
        **{f"{table}_sourced_id_key": (True, True) for table in SOURCED},
        "students_modified_at": (False, True),
        "courses_modified_at": (False, True),
        "student_courses_enrolled_at": (False, True),
    },
    # validated, and the NOT VALID `sourced_id is not null` that proved NOT NULL gone
    "checks": {f"{table}_sourced_id_check": True for table in SOURCED},
}


async def test_sourced_ids_fill_every_row_keep_its_data_and_let_the_older_release_write(
    empty_database,
):
    dsn = empty_database
    await apply(dsn, target=MEETING_TIMES)
    async with connected(dsn) as conn:
        await seed(conn)
        await seed_places(conn)
        await seed_terms(conn)
        before = {table: await keyed(conn, table) for table in SOURCED}
        ahead = await conn.fetchval("select clock_timestamp()")
    assert await apply(dsn, target=SOURCED_IDS) == [SOURCED_IDS]

    async with connected(dsn) as conn:
        # 0018 read no row: no sourced_id yet, modified_at the migration's time.
        assert {t: set(ids.values()) for t, ids in (await sourced_ids(conn)).items()} == {
            table: {None} for table in SOURCED
        }
        stamps = set()
        for table in ("students", "courses", "terms"):
            stamps |= {row["modified_at"] for row in (await keyed(conn, table)).values()}
        assert len(stamps) == 1, stamps
        [migrated_at] = stamps
        assert ahead < migrated_at < await conn.fetchval("select clock_timestamp()")

        # The release before 0018 goes on until 0019 is done: its inserts get
        # a sourced_id from the default, and its updates of rows that have
        # none yet go through (a check `sourced_id is not null` in 0018 refused
        # them, NOT VALID or not: 0019 adds it after the fill).
        enrolled = sorted(k for k in before["student_courses"])
        gone, gone_courses = enrolled[0][0], [c for s, c in enrolled if s == enrolled[0][0]]
        renamed = next(k[0] for k in before["students"] if k[0] not in {s for s, _ in enrolled})
        retitled = next(k[0] for k in before["courses"] if k[0] not in gone_courses)
        term = min(before["terms"])[0]
        written = {
            "students": await conn.fetchrow(
                "insert into students (name, email) values ('New', 'new@example.org')"
                " returning id, sourced_id"
            ),
            "courses": await conn.fetchrow(
                "insert into courses (code, title) values ('NEW-1', 'New') returning id, sourced_id"
            ),
            "terms": await conn.fetchrow(
                "insert into terms (code, title, starts_on, ends_on)"
                " values ('2028-1', 'New', '2028-01-01', '2028-06-30') returning id, sourced_id"
            ),
        }
        newcomer = written["students"]["id"]
        written["student_courses"] = await conn.fetchrow(
            "insert into student_courses (student_id, course_id) values ($1, $2)"
            " returning student_id, course_id, sourced_id",
            newcomer,
            gone_courses[0],  # its seat count: an update of an old course
        )
        await conn.execute("update students set name = 'Renamed' where id = $1", renamed)
        await conn.execute("update courses set title = 'Retitled' where id = $1", retitled)
        await conn.execute("update terms set title = 'Retitled' where id = $1", term)
        # its enrollments go too, and the seat counts of their courses change
        await conn.execute("delete from students where id = $1", gone)
        new_ids = {table: row["sourced_id"] for table, row in written.items()}
        assert all(UUID.fullmatch(value) for value in new_ids.values()), new_ids

    assert await apply(dsn, target=SOURCED_IDS_FILLED) == [SOURCED_IDS_FILLED]
    async with connected(dsn) as conn:
        after = {table: await keyed(conn, table) for table in SOURCED}
        ids = await sourced_ids(conn)
        assert await sourced_id_schema(conn) == FILLED_SCHEMA

    # Every old row as it was, but for what the older release wrote.
    expected = {table: without_added(rows) for table, rows in before.items()}
    expected["students"][(renamed,)]["name"] = "Renamed"
    expected["courses"][(retitled,)]["title"] = "Retitled"
    expected["terms"][(term,)]["title"] = "Retitled"
    del expected["students"][(gone,)]
    for course in gone_courses:
        del expected["student_courses"][(gone, course)]
        expected["courses"][(course,)]["enrolled"] -= 1
    expected["courses"][(gone_courses[0],)]["enrolled"] += 1
    for table in SOURCED:
        old = {
            key: row for key, row in without_added(after[table]).items() if key in expected[table]
        }
        assert old == expected[table], table
    # Every row has a sourced_id, a UUID of its own; the rows written between
    # 0018 and 0019 kept the one the default gave them.
    for table in SOURCED:
        values = list(ids[table].values())
        assert len(values) == len(after[table]) == len(set(values)), table
        assert all(UUID.fullmatch(value) for value in values), table
    assert {
        table: ids[table][tuple(written[table][k] for k in KEYS[table])] for table in SOURCED
    } == new_ids
    # 0019 wrote sourced_id only: the old rows' modified_at is 0018's time.
    for table in ("students", "courses", "terms"):
        assert {
            row["modified_at"] for key, row in after[table].items() if key in before[table]
        } == {migrated_at}, table

    # The rules now hold for every writer: one sourced_id per record of a kind, a visible one.
    async with connected(dsn) as conn:
        taken = ids["students"][(renamed,)]
        with pytest.raises(asyncpg.UniqueViolationError) as caught:
            await conn.execute(
                "insert into students (name, email, sourced_id) values ('Twin', 'twin@example.org', $1)",
                taken,
            )
        assert caught.value.constraint_name == "students_sourced_id_key"
        for bad, error, field, name in (
            (
                "has space",
                asyncpg.CheckViolationError,
                "constraint_name",
                "courses_sourced_id_check",
            ),
            ("", asyncpg.CheckViolationError, "constraint_name", "courses_sourced_id_check"),
            ("x" * 256, asyncpg.CheckViolationError, "constraint_name", "courses_sourced_id_check"),
            (None, asyncpg.NotNullViolationError, "column_name", "sourced_id"),
        ):
            with pytest.raises(error) as caught:
                await conn.execute(
                    "insert into courses (code, title, sourced_id) values ('BAD-1', 'Bad', $1)", bad
                )
            assert getattr(caught.value, field) == name, bad
        # The same sourcedId in two kinds is two records.
        await conn.execute(
            "insert into courses (code, title, sourced_id) values ('TWIN-1', 'Twin', $1)", taken
        )


async def test_sourced_ids_stairway_keeps_the_values_and_the_rows(empty_database):
    dsn = empty_database
    await apply(dsn, target=MEETING_TIMES)
    async with connected(dsn) as conn:
        await seed(conn)
        await seed_places(conn)
        await seed_terms(conn)
        before, definition = await snapshot(conn), await schema(conn)
    assert await apply(dsn, target=SOURCED_IDS_FILLED) == [SOURCED_IDS, SOURCED_IDS_FILLED]
    async with connected(dsn) as conn:
        ids, filled = await sourced_ids(conn), await schema(conn)
    assert all(None not in values.values() for values in ids.values())

    # Back to 0018: the values stay, nullable, without their indexes.
    assert await rollback(dsn) == [SOURCED_IDS_FILLED]
    async with connected(dsn) as conn:
        assert await sourced_ids(conn) == ids
        assert await sourced_id_schema(conn) == {
            "not_null": dict.fromkeys(SOURCED, False),
            "indexes": {},
            "checks": {f"{table}_sourced_id_check": False for table in SOURCED},
        }
    # Forward again: nothing left to fill, every value as it was.
    assert await apply(dsn, target=SOURCED_IDS_FILLED) == [SOURCED_IDS_FILLED]
    async with connected(dsn) as conn:
        assert await sourced_ids(conn) == ids
        assert await schema(conn) == filled

    # Back to 0017: every row and definition as it was.
    assert await rollback(dsn, count=2) == [SOURCED_IDS_FILLED, SOURCED_IDS]
    async with connected(dsn) as conn:
        assert_same_data(await snapshot(conn), before)
        assert await schema(conn) == definition
    # And forward: new sourced_ids, as many and as distinct.
    assert await apply(dsn, target=SOURCED_IDS_FILLED) == [SOURCED_IDS, SOURCED_IDS_FILLED]
    async with connected(dsn) as conn:
        again = await sourced_ids(conn)
        assert await schema(conn) == filled
    for table in SOURCED:
        assert again[table].keys() == ids[table].keys(), table
        assert len(set(again[table].values())) == len(again[table]), table
        assert not set(again[table].values()) & set(ids[table].values()), table


def run_statements(dsn: str, statements: list[str]) -> list[list[str]]:
    """Each statement on its own, in autocommit as yoyo runs a non-transactional
    migration; the messages of each, DEBUG1 ones included."""
    heard: list[list[str]] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.add_notice_handler(lambda notice: heard[-1].append(notice.message_primary or ""))
        conn.execute("set client_min_messages = debug1")
        for statement in statements:
            heard.append([])
            conn.execute(statement)  # no parameters: the statement's text as it is
    return heard


def statements_of(path: Any) -> list[str]:
    """A migration file's statements, split as yoyo splits them."""
    return read_sql_migration(str(path))[2]


async def test_0019_sets_not_null_without_reading_a_row(empty_database):
    # The ACCESS EXCLUSIVE lock of SET NOT NULL lasts milliseconds only
    # because PostgreSQL takes the validated check as proof; without it, it
    # reads the whole table under that lock.
    dsn = empty_database
    await apply(dsn, target=SOURCED_IDS)
    async with connected(dsn) as conn:
        await seed(conn)
        await seed_places(conn)
    statements = statements_of(FILLED_FILE)
    heard = await asyncio.to_thread(run_statements, dsn, statements)

    setting = {
        re.search(r"alter table (\w+) alter column sourced_id set not null", s)[1]: messages
        for s, messages in zip(statements, heard, strict=True)
        if "set not null" in s
    }
    assert setting.keys() == set(SOURCED)
    for table, messages in setting.items():
        assert f'existing constraints on column "{table}.sourced_id" are sufficient to prove' in (
            " ".join(messages)
        ), messages
        assert f'verifying table "{table}"' not in messages, messages


def first_of_each_kind(statements: list[str]) -> list[int]:
    """How many statements run up to the first of each kind (a kind: the
    statement with its tables and names left out), so mid-phase too."""
    seen, ends = set(), []
    for number, statement in enumerate(statements, start=1):
        kind = re.sub(r"\b(students|courses|terms|student_courses)\w*", "_", statement)
        if kind not in seen:
            seen.add(kind)
            ends.append(number)
    return ends


async def test_0019_run_again_after_stopping_anywhere_finishes(empty_database):
    # What a lock timeout or a deadlock leaves after a statement of 0019:
    # then migrate again (yoyo applies the whole file), or its rollback.
    dsn = empty_database
    await apply(dsn, target=SOURCED_IDS)
    async with connected(dsn) as conn:
        await seed(conn)
        await seed_places(conn)
        begun = await schema(conn)
    assert await apply(dsn, target=SOURCED_IDS_FILLED) == [SOURCED_IDS_FILLED]
    async with connected(dsn) as conn:
        finished, ids = await schema(conn), await sourced_ids(conn)
    assert await rollback(dsn) == [SOURCED_IDS_FILLED]

    forward, backward = statements_of(FILLED_FILE), statements_of(FILLED_ROLLBACK)
    stops = first_of_each_kind(forward)
    # the fill, each step of an index, each phase of the checks and NOT NULL
    assert len(stops) >= 10, stops
    for done in stops:
        where = forward[done - 1].strip().splitlines()[-1]
        # The rollback's statements, all of them.
        await asyncio.to_thread(run_statements, dsn, forward[:done])
        await asyncio.to_thread(run_statements, dsn, backward)
        async with connected(dsn) as conn:
            assert await schema(conn) == begun, f"rolled back after {where!r}"
        # The whole file, by yoyo.
        await asyncio.to_thread(run_statements, dsn, forward[:done])
        assert await apply(dsn, target=SOURCED_IDS_FILLED) == [SOURCED_IDS_FILLED]
        async with connected(dsn) as conn:
            assert await schema(conn) == finished, f"applied after {where!r}"
            assert await sourced_ids(conn) == ids
        assert await rollback(dsn) == [SOURCED_IDS_FILLED]


async def test_0019_failed_on_an_index_finishes_when_migrated_again(empty_database):
    dsn = empty_database
    await apply(dsn, target=SOURCED_IDS)
    async with connected(dsn) as conn:
        await seed(conn)
        # Two students of one sourced_id, which nothing refuses before 0019:
        # its unique index fails half built, as one whose build outlasts the
        # lock_timeout does, and is left there, invalid.
        twins = [await add_student(conn, f"twin{i}@example.org") for i in range(2)]
        await conn.execute("update students set sourced_id = 'twin' where id = any($1)", twins)
    with pytest.raises(psycopg.errors.UniqueViolation):
        await apply(dsn, target=SOURCED_IDS_FILLED)
    assert await applied(dsn) == MIGRATION_IDS[: MIGRATION_IDS.index(SOURCED_IDS) + 1]
    async with connected(dsn) as conn:
        left = await conn.fetchrow(
            "select indisvalid from pg_index where indexrelid = 'students_sourced_id_key'::regclass"
        )
        assert left is not None and not left["indisvalid"]
        # Every row filled: the fill committed before the index failed.
        assert not [t for t, v in (await sourced_ids(conn)).items() if None in v.values()]
        await conn.execute("update students set sourced_id = 'twin-2' where id = $1", twins[1])

    assert await apply(dsn, target=SOURCED_IDS_FILLED) == [SOURCED_IDS_FILLED]
    async with connected(dsn) as conn:
        assert await sourced_id_schema(conn) == FILLED_SCHEMA


async def test_modified_at_moves_when_a_field_oneroster_shows_changes(empty_database):
    dsn = empty_database
    await apply(dsn)
    async with connected(dsn) as conn:
        term = await conn.fetchval(
            "insert into terms (code, title, starts_on, ends_on)"
            " values ('2027-1', 'Spring', '2027-01-01', '2027-06-30') returning id"
        )
        course = await add_course(conn, "CS-1", capacity=10)
        student = await add_student(conn, "ada@example.org")
        reads = {
            "student": ("select modified_at from students where id = $1", student),
            "course": ("select modified_at from courses where id = $1", course),
            "term": ("select modified_at from terms where id = $1", term),
        }

        async def moves(record: str, statement: str, *args: Any) -> bool:
            """Whether `statement`, in a transaction of its own, set the record's modified_at to now()."""
            read = reads[record]
            earlier = await conn.fetchval(*read)
            async with conn.transaction():
                await conn.execute(statement, *args)
                now, later = (
                    await conn.fetchval("select now()"),
                    await conn.fetchval(*read),
                )
            assert later in (earlier, now) and earlier != now
            return later == now

        # (record, statement, arguments, whether modified_at moves)
        cases = [
            # what a OneRoster user shows: the name, the email
            ("student", "update students set name = 'Ada King' where id = $1", (student,), True),
            (
                "student",
                "update students set email = 'ada@king.org' where id = $1",
                (student,),
                True,
            ),
            # its sourcedId, which an import may set
            ("student", "update students set sourced_id = 'ada-1' where id = $1", (student,), True),
            # written, but the same values: nothing changed
            (
                "student",
                "update students set name = 'Ada King', email = email where id = $1",
                (student,),
                False,
            ),
            # a hold is kept in students.holds, which no OneRoster record shows
            (
                "student",
                "insert into student_holds (student_id, reason) values ($1, 'Fees')",
                (student,),
                False,
            ),
            # a class's title, its code, its term
            ("course", "update courses set title = 'Algorithms' where id = $1", (course,), True),
            ("course", "update courses set code = 'CS-2' where id = $1", (course,), True),
            ("course", "update courses set term_id = $2 where id = $1", (course, term), True),
            # the seats: its limit, and the kept count every enrollment updates
            ("course", "update courses set capacity = 20 where id = $1", (course,), False),
            (
                "course",
                "insert into student_courses (student_id, course_id) values ($2, $1)",
                (course, student),
                False,
            ),
            # an academic session's title and dates, not the rules of registration
            ("term", "update terms set title = 'Spring 2027' where id = $1", (term,), True),
            ("term", "update terms set ends_on = '2027-06-15' where id = $1", (term,), True),
            ("term", "update terms set max_credits = 18 where id = $1", (term,), False),
            ("term", "update terms set code = '2027-1' where id = $1", (term,), False),
        ]
        for record, statement, args, expected in cases:
            assert await moves(record, statement, *args) is expected, statement


async def test_a_deletion_leaves_a_tombstone_of_each_record_and_nothing_personal(empty_database):
    dsn = empty_database
    await apply(dsn)
    async with connected(dsn) as conn:
        term = await conn.fetchval(
            "insert into terms (code, title, starts_on, ends_on)"
            " values ('2027-1', 'Spring', '2027-01-01', '2027-06-30') returning id"
        )
        algebra, biology = await add_course(conn, "ALG"), await add_course(conn, "BIO")
        await conn.execute("update courses set term_id = $1 where id = $2", term, biology)
        ada, bob = (
            await add_student(conn, "ada@example.org"),
            await add_student(conn, "bob@example.org"),
        )
        for student, course in [(ada, algebra), (ada, biology), (bob, algebra)]:
            await enroll(conn, student, course)
        ids = await sourced_ids(conn)
        personal = {
            value
            for row in await conn.fetch("select name, email from students")
            for value in row.values()
        }

        async def delete(statement: str, *args: Any) -> list[tuple[str, str]]:
            """The tombstones `statement` writes, each dated its transaction's time."""
            async with conn.transaction():
                now = await conn.fetchval("select now()")
                await conn.execute(statement, *args)
            rows = await conn.fetch("delete from tombstones returning kind, sourced_id, deleted_at")
            assert {r["deleted_at"] for r in rows} == {now}
            kept.extend((r["kind"], r["sourced_id"]) for r in rows)
            return sorted((r["kind"], r["sourced_id"]) for r in rows)

        kept: list[tuple[str, str]] = []

        # A student, and their enrollments by the cascade.
        assert await delete("delete from students where id = $1", ada) == sorted(
            [
                ("student", ids["students"][(ada,)]),
                ("enrollment", ids["student_courses"][(ada, algebra)]),
                ("enrollment", ids["student_courses"][(ada, biology)]),
            ]
        )
        # A course, and its enrollments.
        assert await delete("delete from courses where id = $1", algebra) == sorted(
            [
                ("course", ids["courses"][(algebra,)]),
                ("enrollment", ids["student_courses"][(bob, algebra)]),
            ]
        )
        # A term, once its courses have gone.
        assert await delete("delete from courses where id = $1", biology) == [
            ("course", ids["courses"][(biology,)])
        ]
        assert await delete("delete from terms where id = $1", term) == [
            ("term", ids["terms"][(term,)])
        ]
        # What a tombstone holds: no name, no email, nothing but these.
        columns = await conn.fetch(
            "select column_name from information_schema.columns"
            " where table_name = 'tombstones' order by ordinal_position"
        )
        assert [r[0] for r in columns] == ["kind", "sourced_id", "deleted_at"]
        assert not {value for _, value in kept} & personal


# 0019 under writers: each a single-row statement of the service, none
# waiting on 0019 longer than WAIT_BOUND. A fill in one transaction would
# hold every row it wrote until the end of the fill, seconds at this size.
LOADED_STUDENTS, LOADED_COURSES, PER_STUDENT = 30_000, 3_000, 3
WAIT_BOUND = 1.0


async def test_0019_keeps_no_writer_waiting_long(empty_database):
    dsn = empty_database
    await apply(dsn, target=MEETING_TIMES)
    async with connected(dsn) as conn:
        await conn.execute("set session_replication_role = replica")  # consistent by construction
        await conn.execute(
            "insert into students (name, email)"
            " select 'Student ' || n, 'student' || n || '@example.org'"
            " from generate_series(1, $1) n",
            LOADED_STUDENTS,
        )
        await conn.execute(
            "insert into courses (code, title) select 'C-' || n, 'Course' from generate_series(1, $1) n",
            LOADED_COURSES,
        )
        await conn.execute(
            "insert into student_courses (student_id, course_id)"
            " select s, 1 + (s + k * $2 / $3) % $2"
            " from generate_series(1, $1) s, generate_series(0, $3 - 1) k",
            LOADED_STUDENTS,
            LOADED_COURSES,
            PER_STUDENT,
        )
        await conn.execute("vacuum analyze students, courses, student_courses")
    # Rows written before 0018: the fill's to give a sourced_id.
    assert await apply(dsn, target=SOURCED_IDS) == [SOURCED_IDS]

    # (what, started, finished) on the time.perf_counter() clock
    timings: list[tuple[str, float, float]] = []
    stop = asyncio.Event()

    async def writer(number: int) -> None:
        rng = random.Random(number)
        async with connected(dsn) as conn:
            step = 0
            while not stop.is_set():
                step += 1
                student, course = rng.randint(1, LOADED_STUDENTS), rng.randint(1, LOADED_COURSES)
                for what, statement, args in (
                    (
                        "rename",
                        "update students set name = $2 where id = $1",
                        (student, f"R{step}"),
                    ),
                    (
                        "retitle",
                        "update courses set title = $2 where id = $1",
                        (course, f"R{step}"),
                    ),
                    # a seat counted: the course's row updated by the trigger
                    (
                        "enroll",
                        "insert into student_courses (student_id, course_id) values ($1, $2)"
                        " on conflict do nothing",
                        (student, course),
                    ),
                    (
                        "create",
                        "insert into students (name, email) values ('New', $1)",
                        (f"new-{number}-{step}@example.org",),
                    ),
                ):
                    started = time.perf_counter()
                    await conn.execute(statement, *args)
                    timings.append((what, started, time.perf_counter()))
                await asyncio.sleep(0.002)

    writers = [asyncio.create_task(writer(n)) for n in range(4)]
    try:
        await asyncio.sleep(0.2)
        started = time.perf_counter()
        assert await apply(dsn, target=SOURCED_IDS_FILLED) == [SOURCED_IDS_FILLED]
        finished = time.perf_counter()
        await asyncio.sleep(0.2)
    finally:
        stop.set()
        await asyncio.gather(*writers)

    during = [(f - s, what) for what, s, f in timings if s < finished and f > started]
    worst, what = max(during)
    print(
        f"\n0019 took {finished - started:.2f} s on {LOADED_STUDENTS:,} students;"
        f" {len(during)} writes meanwhile, the slowest {worst * 1000:.0f} ms ({what})"
    )
    assert len(during) > 100, "the writers did not overlap 0019"
    assert worst < WAIT_BOUND, f"a {what} waited {worst:.2f} s"
    async with connected(dsn) as conn:
        assert await sourced_id_schema(conn) == FILLED_SCHEMA
        assert await conn.fetchval("select count(*) from students where sourced_id is null") == 0


# --- constraints of student_courses ------------------------------------------


# Each bad row, with the error and the field that names the culprit.
BAD_ROWS = [
    # a student id no student has
    (
        "missing",
        "known",
        asyncpg.ForeignKeyViolationError,
        "constraint_name",
        "student_courses_student_id_fkey",
    ),
    # a course id no course has
    (
        "known",
        "missing",
        asyncpg.ForeignKeyViolationError,
        "constraint_name",
        "student_courses_course_id_fkey",
    ),
    # the same enrollment a second time
    ("known", "known", asyncpg.UniqueViolationError, "constraint_name", "student_courses_pkey"),
    # no student at all
    (None, "known", asyncpg.NotNullViolationError, "column_name", "student_id"),
    # no course at all
    ("known", None, asyncpg.NotNullViolationError, "column_name", "course_id"),
]


async def test_student_courses_rejects_bad_rows(empty_database):
    await apply(empty_database)
    async with connected(empty_database) as conn:
        student_id = await add_student(conn, "ada@example.org")
        # Without a limit only the table's constraints speak; in a full course the
        # capacity trigger must still leave these errors to the constraints.
        for capacity in (None, 1):
            course_id = await add_course(conn, f"CS-{capacity}", capacity=capacity)
            await enroll(conn, student_id, course_id)
            ids = {
                "known": (student_id, course_id),
                "missing": (student_id + 1000, course_id + 1000),
                None: (None, None),
            }
            for student, course, error, field, expected in BAD_ROWS:
                case = f"student {student}, course {course}, capacity {capacity}"
                with pytest.raises(error) as caught:
                    await enroll(conn, ids[student][0], ids[course][1])
                assert getattr(caught.value, field) == expected, case
            assert await enrolled(conn, course_id) == [student_id]
        assert await conn.fetchval("select count(*) from student_courses") == 2


async def test_enrolled_at_defaults_to_the_transaction_time(empty_database):
    await apply(empty_database)
    async with connected(empty_database) as conn:
        student = await add_student(conn, "ada@example.org")
        course = await add_course(conn, "CS-1")
        async with conn.transaction():
            enrolled_at = await conn.fetchval(
                "insert into student_courses (student_id, course_id) values ($1, $2)"
                " returning enrolled_at",
                student,
                course,
            )
            assert enrolled_at == await conn.fetchval("select now()")


async def test_deleting_a_student_or_a_course_deletes_their_enrollments(empty_database):
    await apply(empty_database)
    async with connected(empty_database) as conn:
        ada = await add_student(conn, "ada@example.org")
        bob = await add_student(conn, "bob@example.org")
        algebra = await add_course(conn, "ALG")
        biology = await add_course(conn, "BIO")
        for student, course in [(ada, algebra), (ada, biology), (bob, algebra), (bob, biology)]:
            await enroll(conn, student, course)

        await conn.execute("delete from students where id = $1", ada)
        assert await enrolled(conn, algebra) == [bob]
        assert await enrolled(conn, biology) == [bob]

        await conn.execute("delete from courses where id = $1", algebra)
        rows = await conn.fetch("select student_id, course_id from student_courses")
        assert [tuple(r) for r in rows] == [(bob, biology)]
        # Only enrollments go: the other student and course stay.
        assert await conn.fetchval("select count(*) from students") == 1
        assert await conn.fetchval("select count(*) from courses") == 1


async def test_an_index_on_student_courses_leads_with_course_id(empty_database):
    # "Students of a course" and the cascade from courses need it; the primary
    # key (student_id, course_id) cannot serve them.
    await apply(empty_database)
    async with connected(empty_database) as conn:
        leading = await conn.fetch(
            "select i.indexrelid::regclass::text as name, a.attname as first_column"
            " from pg_index i"
            " join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]"
            " where i.indrelid = 'student_courses'::regclass"
            " order by 1"
        )
        first_columns = {r["name"]: r["first_column"] for r in leading}
        assert first_columns["student_courses_pkey"] == "student_id"
        assert "course_id" in first_columns.values(), first_columns


# --- capacity (0003, kept as a count by 0005) --------------------------------


async def test_enrolling_beyond_capacity_is_a_check_violation(empty_database):
    await apply(empty_database)
    async with connected(empty_database) as conn:
        students = [await add_student(conn, f"s{i}@example.org") for i in range(4)]
        course = await add_course(conn, "CS-1", capacity=2)
        await enroll(conn, students[0], course)
        await enroll(conn, students[1], course)

        with pytest.raises(asyncpg.CheckViolationError) as caught:
            await enroll(conn, students[2], course)
        assert caught.value.constraint_name == "courses_enrolled_within_capacity"
        assert await enrolled(conn, course) == students[:2]

        # Re-enrolling into a full course is a conflict, not a new seat: the
        # service's ON CONFLICT DO NOTHING must get through the trigger.
        status = await conn.execute(
            "insert into student_courses (student_id, course_id) values ($1, $2)"
            " on conflict (student_id, course_id) do nothing",
            students[0],
            course,
        )
        assert status == "INSERT 0 0"

        # A seat freed is a seat taken.
        await conn.execute(
            "delete from student_courses where student_id = $1 and course_id = $2",
            students[0],
            course,
        )
        await enroll(conn, students[3], course)
        assert await enrolled(conn, course) == [students[1], students[3]]


async def test_lowering_capacity_below_enrollments_is_a_check_violation(empty_database):
    await apply(empty_database)
    async with connected(empty_database) as conn:
        students = [await add_student(conn, f"s{i}@example.org") for i in range(3)]
        course = await add_course(conn, "CS-1", capacity=5)
        for student in students:
            await enroll(conn, student, course)

        with pytest.raises(asyncpg.CheckViolationError) as caught:
            await conn.execute("update courses set capacity = 2 where id = $1", course)
        assert caught.value.constraint_name == "courses_enrolled_within_capacity"
        assert await conn.fetchval("select capacity from courses where id = $1", course) == 5

        # Down to exactly the enrollments is fine; other columns are not checked.
        await conn.execute("update courses set capacity = 3 where id = $1", course)
        await conn.execute("update courses set title = 'Renamed' where id = $1", course)
        assert await conn.fetchval("select capacity from courses where id = $1", course) == 3


async def test_null_capacity_means_no_limit(empty_database):
    await apply(empty_database)
    async with connected(empty_database) as conn:
        students = [await add_student(conn, f"s{i}@example.org") for i in range(30)]
        unlimited = await add_course(conn, "CS-1", capacity=None)
        for student in students:
            await enroll(conn, student, unlimited)
        assert await enrolled(conn, unlimited) == students

        # Removing the limit of a full course opens it.
        course = await add_course(conn, "CS-2", capacity=1)
        await enroll(conn, students[0], course)
        await conn.execute("update courses set capacity = null where id = $1", course)
        await enroll(conn, students[1], course)
        assert await enrolled(conn, course) == students[:2]


async def test_concurrent_enrollments_fill_exactly_the_capacity(empty_database):
    dsn = empty_database
    await apply(dsn)
    async with connected(dsn) as monitor, connected(dsn) as blocker:
        course = await add_course(monitor, "CS-1", capacity=5)
        students = [await add_student(monitor, f"s{i}@example.org") for i in range(20)]
        sessions = await asyncio.gather(*(asyncpg.connect(dsn) for _ in students))
        inserts: list[asyncio.Task[None]] = []
        try:
            # Hold the course row so that all 20 inserts are in flight at once.
            # FOR UPDATE also blocks the foreign key's KEY SHARE lock: an
            # insert that counted before locking would count 0 and then wait.
            hold = blocker.transaction()
            await hold.start()
            await blocker.execute("select 1 from courses where id = $1 for update", course)
            inserts = [
                asyncio.create_task(enroll(session, student, course))
                for session, student in zip(sessions, students, strict=True)
            ]
            try:
                await wait_for_lock_waiters(monitor, len(inserts))
            finally:
                await hold.rollback()
            results = await asyncio.gather(*inserts, return_exceptions=True)
        finally:
            await asyncio.gather(*inserts, return_exceptions=True)
            await asyncio.gather(*(session.close() for session in sessions))

        failures = [r for r in results if isinstance(r, BaseException)]
        assert len(failures) == 15, failures
        assert all(isinstance(f, asyncpg.CheckViolationError) for f in failures), failures
        assert {f.constraint_name for f in failures} == {"courses_enrolled_within_capacity"}
        winners = [s for s, r in zip(students, results, strict=True) if r is None]
        assert await enrolled(monitor, course) == sorted(winners)
        assert len(winners) == 5


async def test_capacity_lowered_while_an_enrollment_is_uncommitted(empty_database):
    dsn = empty_database
    await apply(dsn)
    async with connected(dsn) as monitor, connected(dsn) as first, connected(dsn) as second:
        students = [await add_student(monitor, f"s{i}@example.org") for i in range(3)]
        course = await add_course(monitor, "CS-1", capacity=3)
        await enroll(monitor, students[0], course)
        await enroll(monitor, students[1], course)

        pending = first.transaction()
        await pending.start()
        await enroll(first, students[2], course)  # the third seat, not yet committed
        lowering = asyncio.create_task(
            second.execute("update courses set capacity = 2 where id = $1", course)
        )
        try:
            await wait_for_lock_waiters(monitor, 1)
        finally:
            await pending.commit()

        with pytest.raises(asyncpg.CheckViolationError) as caught:
            await lowering
        assert caught.value.constraint_name == "courses_enrolled_within_capacity"
        assert await monitor.fetchval("select capacity from courses where id = $1", course) == 3
        assert await enrolled(monitor, course) == students


async def test_enrollment_waits_for_an_uncommitted_capacity_change(empty_database):
    dsn = empty_database
    await apply(dsn)
    async with connected(dsn) as monitor, connected(dsn) as first, connected(dsn) as second:
        students = [await add_student(monitor, f"s{i}@example.org") for i in range(3)]
        course = await add_course(monitor, "CS-1", capacity=3)
        await enroll(monitor, students[0], course)
        await enroll(monitor, students[1], course)

        pending = first.transaction()
        await pending.start()
        await first.execute("update courses set capacity = 2 where id = $1", course)
        joining = asyncio.create_task(enroll(second, students[2], course))
        try:
            await wait_for_lock_waiters(monitor, 1)
        finally:
            await pending.commit()

        # Had the insert read the capacity without waiting, it would see 3 seats.
        with pytest.raises(asyncpg.CheckViolationError) as caught:
            await joining
        assert caught.value.constraint_name == "courses_enrolled_within_capacity"
        assert await enrolled(monitor, course) == students[:2]
