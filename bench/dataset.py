"""The benchmark database: created once, bulk-loaded with COPY, reused while its sizes match.

The rows are generated on the fly from a seeded RNG, so any size up to
millions of students streams into PostgreSQL without being held in memory,
and the same sizes always give the same data.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from service import migrations

DATABASE = "enrollment_bench"
# Bumped when the generated data changes shape, so an older load is not reused.
FORMAT = 1


@dataclass(frozen=True)
class Sizes:
    students: int
    courses: int
    per_student: int
    seed: int = 20261127

    @property
    def enrollments(self) -> int:
        return self.students * self.per_student

    def describe(self) -> str:
        return (
            f"{self.students:,} students, {self.courses:,} courses, "
            f"{self.enrollments:,} enrollments ({self.per_student} per student)"
        )


def url_for(server_url: str, database: str) -> str:
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{database}"))


def students(sizes: Sizes) -> Iterator[tuple[int, str, str]]:
    for i in range(1, sizes.students + 1):
        yield i, f"Student {i}", f"student{i}@bench.example"


def courses(sizes: Sizes) -> Iterator[tuple[int, str, str]]:
    # No capacity: the enroll scenario must never meet a full course.
    for i in range(1, sizes.courses + 1):
        yield i, f"C{i:06d}", f"Course {i}"


def enrollments(sizes: Sizes) -> Iterator[tuple[int, int]]:
    """`per_student` distinct courses per student, in primary key order."""
    rng = random.Random(sizes.seed)
    population = range(1, sizes.courses + 1)
    for student in range(1, sizes.students + 1):
        for course in sorted(rng.sample(population, sizes.per_student)):
            yield student, course


async def _load(url: str, sizes: Sizes) -> datetime:
    """COPY every row in one transaction; return its timestamp (every loaded enrolled_at)."""
    conn = await asyncpg.connect(url)
    try:
        try:
            # The data is consistent by construction: skip the foreign key
            # checks and the capacity trigger, which would run once per row.
            await conn.execute("set session_replication_role = replica")
        except asyncpg.InsufficientPrivilegeError:
            print("  (not a superuser: loading with per-row triggers, slower)")
        # Sorting once at the end beats keeping indexes current row by row.
        await conn.execute("set maintenance_work_mem = '256MB'")
        async with conn.transaction():
            rebuild = await _drop_indexes(conn, "student_courses")
            for table, columns, rows, count in (
                ("students", ["id", "name", "email"], students(sizes), sizes.students),
                ("courses", ["id", "code", "title"], courses(sizes), sizes.courses),
                (
                    "student_courses",
                    ["student_id", "course_id"],
                    enrollments(sizes),
                    sizes.enrollments,
                ),
            ):
                started = time.perf_counter()
                # COPY takes explicit values for `generated always` identity
                # columns (only INSERT needs OVERRIDING SYSTEM VALUE).
                await conn.copy_records_to_table(table, records=rows, columns=columns)
                took = time.perf_counter() - started
                print(f"  {table}: {count:,} rows in {took:.1f} s ({count / took:,.0f} rows/s)")
            started = time.perf_counter()
            for statement in rebuild:
                await conn.execute(statement)
            print(f"  student_courses indexes: {time.perf_counter() - started:.1f} s")
            # Later inserts through the API must not collide with loaded ids.
            await conn.execute(
                "select setval(pg_get_serial_sequence('students', 'id'), $1),"
                " setval(pg_get_serial_sequence('courses', 'id'), $2)",
                sizes.students,
                sizes.courses,
            )
            loaded_at = await conn.fetchval("select now()")
        started = time.perf_counter()
        await conn.execute("analyze students, courses, student_courses")
        print(f"  analyze: {time.perf_counter() - started:.1f} s")
        return loaded_at
    finally:
        await conn.close()


async def _drop_indexes(conn: asyncpg.Connection, table: str) -> list[str]:
    """Drop the table's indexes; return the statements that recreate them as they were.

    Only for a table no foreign key points at: its primary key can go too.
    """
    rows = await conn.fetch(
        """
        select i.indexrelid::regclass::text as index, c.conname as constraint_name,
               pg_get_indexdef(i.indexrelid) as index_def,
               pg_get_constraintdef(c.oid) as constraint_def
        from pg_index i
        left join pg_constraint c on c.conindid = i.indexrelid and c.conrelid = i.indrelid
        where i.indrelid = $1::regclass
        """,
        table,
    )
    rebuild = []
    for row in rows:
        if row["constraint_name"]:
            await conn.execute(f"alter table {table} drop constraint {row['constraint_name']}")
            rebuild.append(
                f"alter table {table} add constraint {row['constraint_name']} "
                f"{row['constraint_def']}"
            )
        else:
            await conn.execute(f"drop index {row['index']}")
            rebuild.append(row["index_def"])
    return rebuild


async def _stored(admin: asyncpg.Connection) -> dict | None:
    comment = await admin.fetchval(
        "select shobj_description(oid, 'pg_database') from pg_database where datname = $1",
        DATABASE,
    )
    try:
        return json.loads(comment) if comment else None
    except ValueError:
        return None


async def prepare(server_url: str, sizes: Sizes) -> str:
    """Make DATABASE hold exactly `sizes`' data; return its URL."""
    url = url_for(server_url, DATABASE)
    admin = await asyncpg.connect(server_url)
    try:
        stored = await _stored(admin)
        wanted = {"format": FORMAT, **asdict(sizes)}
        if stored and {k: stored.get(k) for k in wanted} == wanted:
            print(f"reusing {DATABASE}: {sizes.describe()}")
            await _forget_bench_writes(url, datetime.fromisoformat(stored["loaded_at"]))
            return url
        # The comment is written last, so a half-finished load is never reused.
        await admin.execute(f"drop database if exists {DATABASE} with (force)")
        await admin.execute(f"create database {DATABASE}")
    finally:
        await admin.close()

    await asyncio.to_thread(migrations.apply, url)
    print(f"loading {DATABASE}: {sizes.describe()}")
    started = time.perf_counter()
    loaded_at = await _load(url, sizes)
    took = time.perf_counter() - started
    rows = sizes.students + sizes.courses + sizes.enrollments
    print(f"loaded {rows:,} rows in {took:.1f} s ({rows / took:,.0f} rows/s, with analyze)")

    admin = await asyncpg.connect(server_url)
    try:
        meta = json.dumps({**wanted, "loaded_at": loaded_at.isoformat()})
        # A utility statement takes no parameters; the text is our own JSON.
        await admin.execute(f"comment on database {DATABASE} is '{meta}'")
    finally:
        await admin.close()
    return url


async def _forget_bench_writes(url: str, loaded_at: datetime) -> None:
    """Delete the enrollments earlier runs' POST scenario added: every run starts alike."""
    conn = await asyncpg.connect(url)
    try:
        status = await conn.execute("delete from student_courses where enrolled_at > $1", loaded_at)
        deleted = int(status.split()[-1])
        if deleted:
            await conn.execute("vacuum analyze student_courses")
            print(f"  removed {deleted:,} enrollments left by earlier runs")
    finally:
        await conn.close()
