"""Migrations on 100,000 students and courses while the service keeps working.

0002 and 0003 run under reads and writes of students and courses, 0005 (the
waitlists and the kept seat counts) under enrollments and drops as well.

test_database_migrations.py covers each migration on a few thousand rows and
the lock timeout against one idle open transaction. Here the tables are at
production scale and a steady load of the service's own statements runs on
them (reads, inserts, renames) while the migrations apply, so what is checked
is what production would feel: no existing row changes, no statement waits
longer than the migrations' lock_timeout, and a migration stuck behind a long
transaction gives up instead of queueing every writer behind it for good.

yoyo is synchronous: migrations run in a worker thread while the event loop
drives the traffic.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import psycopg

from bench import dataset
from service.sql import QUERIES
from tests.migrating import applied, apply, connected, rollback

FIRST = "0001_students_and_courses"
ENROLLMENTS = "0002_student_courses"
CAPACITY = "0003_course_capacity"
LETTER_CASE = "0004_unicode_letter_case"
WAITLISTS = "0005_waitlists"

# The traffic's statements about courses, valid before and after every
# migration here (the service's own SQL of the day needs the newest schema).
CREATE_COURSE = "insert into courses (code, title) values ($1, $2) returning id, code"
RETITLE_COURSE = "update courses set title = $2 where id = $1"
LIST_COURSES = "select id, code, title from courses where id > $1 order by id limit $2"

ROWS = 100_000  # students, and as many courses, before the migrations
SIZES = dataset.Sizes(students=ROWS, courses=ROWS, per_student=0, reserved=0)
# Every RESERVED-th old student and course is the writers' to rename; every
# other old row must come out of the migrations byte for byte.
RESERVED = 100
READERS = 2
WRITERS = 2
# `set local lock_timeout = '5s'` in every migration file.
LOCK_TIMEOUT = 5.0


# --- helpers -----------------------------------------------------------------


async def load(dsn: str) -> None:
    """ROWS students and ROWS courses by COPY, ids 1..ROWS, sequences past them."""
    async with connected(dsn) as conn, conn.transaction():
        await conn.copy_records_to_table(
            "students", records=dataset.students(SIZES), columns=["id", "name", "email"]
        )
        await conn.copy_records_to_table(
            "courses", records=dataset.courses(SIZES), columns=["id", "code", "title"]
        )
        await conn.execute(
            "select setval(pg_get_serial_sequence('students', 'id'), $1),"
            " setval(pg_get_serial_sequence('courses', 'id'), $1)",
            ROWS,
        )


async def state(conn: asyncpg.Connection) -> dict[str, Any]:
    """Everything the traffic may or may not have changed, in exact terms."""
    old = dict(
        await conn.fetchrow(
            """
            select
                (select count(*) from students where id <= $1) as students,
                (select count(*) from courses where id <= $1) as courses,
                -- the server's text of every column of every row nobody writes to
                (select md5(string_agg(s::text, ',' order by s.id)) from students s
                  where s.id <= $1 and s.id % $2 <> 0) as untouched_students,
                (select md5(string_agg(c::text, ',' order by c.id)) from courses c
                  where c.id <= $1 and c.id % $2 <> 0) as untouched_courses,
                -- the renamed rows, but for the column the writers change
                (select md5(string_agg((s.id, s.email, s.created_at)::text, ',' order by s.id))
                  from students s where s.id <= $1 and s.id % $2 = 0) as renamed_students,
                (select md5(string_agg((c.id, c.code, c.capacity, c.created_at)::text, ','
                                       order by c.id))
                  from courses c where c.id <= $1 and c.id % $2 = 0) as renamed_courses
            """,
            ROWS,
            RESERVED,
        )
    )
    rows = {
        "names": ("select id, name from students where id <= $1 and id % $2 = 0", RESERVED),
        "titles": ("select id, title from courses where id <= $1 and id % $2 = 0", RESERVED),
        "new_students": ("select id, email from students where id > $1",),
        "new_courses": ("select id, code from courses where id > $1",),
    }
    for key, (sql, *args) in rows.items():
        old[key] = {r[0]: r[1] for r in await conn.fetch(sql, ROWS, *args)}
    return old


@dataclass
class Traffic:
    """The service's own statements in a loop, each one timed."""

    dsn: str
    # (kind, what, started, finished) on the time.perf_counter() clock
    timings: list[tuple[str, str, float, float]] = field(default_factory=list)
    # What the writers committed: the state() of the database must match it.
    names: dict[int, str] = field(default_factory=dict)
    titles: dict[int, str] = field(default_factory=dict)
    new_students: dict[int, str] = field(default_factory=dict)
    new_courses: dict[int, str] = field(default_factory=dict)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def timed(self, kind: str, what: str, call: Any, *args: Any) -> Any:
        started = time.perf_counter()
        result = await call(*args)
        self.timings.append((kind, what, started, time.perf_counter()))
        return result

    async def reader(self, conn: asyncpg.Connection, number: int) -> None:
        rng = random.Random(number)
        while not self.stop.is_set():
            await self.timed(
                "read",
                "get_student",
                conn.fetchrow,
                QUERIES.students.get_student,
                rng.randint(1, ROWS),
            )
            await self.timed(
                "read", "list_courses", conn.fetch, LIST_COURSES, rng.randint(0, ROWS), 51
            )
            await asyncio.sleep(0.002)

    async def writer(self, conn: asyncpg.Connection, number: int) -> None:
        rng = random.Random(1000 + number)
        # Each writer renames its own share of the reserved rows, so the last
        # name it wrote is the one stored.
        mine = [i for i in range(RESERVED, ROWS + 1, RESERVED) if i // RESERVED % WRITERS == number]
        step = 0
        while not self.stop.is_set():
            step += 1
            tag = f"{number}-{step}"
            row = await self.timed(
                "write",
                "create_student",
                conn.fetchrow,
                QUERIES.students.create_student,
                f"Load {tag}",
                f"load-{tag}@example.org",
                "load",  # the actor its event records, once there are events
            )
            self.new_students[row["id"]] = row["email"]
            student = rng.choice(mine)
            await self.timed(
                "write",
                "update_student",
                conn.fetchrow,
                QUERIES.students.update_student,
                student,
                f"Renamed {tag}",
                None,
                None,  # no If-Match: whatever the version
                "load",
            )
            self.names[student] = f"Renamed {tag}"
            row = await self.timed(
                "write", "create_course", conn.fetchrow, CREATE_COURSE, f"L{tag}", "Load"
            )
            self.new_courses[row["id"]] = row["code"]
            course = rng.choice(mine)
            await self.timed(
                "write", "update_course", conn.execute, RETITLE_COURSE, course, f"Retitled {tag}"
            )
            self.titles[course] = f"Retitled {tag}"
            await asyncio.sleep(0.002)

    def expected(self, before: dict[str, Any]) -> dict[str, Any]:
        """The state() that `before` plus the committed writes make."""
        return {
            **before,
            "names": {**before["names"], **self.names},
            "titles": {**before["titles"], **self.titles},
            "new_students": {**before["new_students"], **self.new_students},
            "new_courses": {**before["new_courses"], **self.new_courses},
        }

    def during(self, kind: str, start: float, end: float) -> list[float]:
        """Latencies of the statements of `kind` in flight at some point in [start, end]."""
        return [
            finished - started
            for k, _, started, finished in self.timings
            if k == kind and started < end and finished > start
        ]

    def worst(self, kind: str) -> tuple[float, str]:
        return max((f - s, what) for k, what, s, f in self.timings if k == kind)

    def report(self) -> str:
        parts = []
        for kind in ("read", "write"):
            count = sum(1 for k, *_ in self.timings if k == kind)
            latency, what = self.worst(kind)
            parts.append(f"{count} {kind}s, slowest {latency * 1000:.0f} ms ({what})")
        return "; ".join(parts)


@asynccontextmanager
async def traffic(dsn: str) -> AsyncIterator[Traffic]:
    """READERS + WRITERS connections busy until the block ends; their errors are raised."""
    flow = Traffic(dsn)
    conns = await asyncio.gather(*(asyncpg.connect(dsn) for _ in range(READERS + WRITERS)))
    tasks = [
        asyncio.create_task(flow.reader(conn, n)) for n, conn in enumerate(conns[:READERS])
    ] + [asyncio.create_task(flow.writer(conn, n)) for n, conn in enumerate(conns[READERS:])]
    try:
        yield flow
    finally:
        flow.stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(conn.close() for conn in conns))
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, f"the traffic failed: {failures!r}"
    assert flow.new_students and flow.names, "the traffic wrote nothing"


async def timed_apply(dsn: str, target: str) -> tuple[list[str], float, float]:
    started = time.perf_counter()
    ids = await apply(dsn, target=target)
    return ids, started, time.perf_counter()


# --- tests -------------------------------------------------------------------


async def test_migrations_apply_under_traffic_and_leave_every_old_row_as_it_was(empty_database):
    dsn = empty_database
    assert await apply(dsn, target=FIRST) == [FIRST]
    await load(dsn)
    async with connected(dsn) as conn:
        before = await state(conn)
    assert (before["students"], before["courses"]) == (ROWS, ROWS)
    assert len(before["names"]) == len(before["titles"]) == ROWS // RESERVED

    async with traffic(dsn) as flow:
        await asyncio.sleep(0.3)  # every connection busy before the first lock is asked for
        windows = {}
        for migration in (ENROLLMENTS, CAPACITY):
            ids, started, finished = await timed_apply(dsn, migration)
            assert ids == [migration]
            windows[migration] = (started, finished)
        await asyncio.sleep(0.3)
    print(
        f"\n{flow.report()}; migrations took",
        {m: f"{e - s:.2f} s" for m, (s, e) in windows.items()},
    )

    # The traffic really overlapped each migration, reading and writing.
    for migration, (started, finished) in windows.items():
        assert flow.during("read", started, finished), f"no read while {migration} ran"
        assert flow.during("write", started, finished), f"no write while {migration} ran"
    # The foreign keys and triggers lock students and courses only briefly:
    # nobody waited anywhere near the lock_timeout.
    for kind in ("read", "write"):
        latency, what = flow.worst(kind)
        assert latency < LOCK_TIMEOUT, f"a {what} waited {latency:.2f} s: {flow.report()}"

    assert await applied(dsn) == [FIRST, ENROLLMENTS, CAPACITY]
    expected = flow.expected(before)
    async with connected(dsn) as conn:
        assert await state(conn) == expected

    # Back to 0001 and forward again, with all that data: still the same rows.
    assert await rollback(dsn, count=2) == [CAPACITY, ENROLLMENTS]
    async with connected(dsn) as conn:
        assert await conn.fetchval("select to_regclass('student_courses')") is None
        assert await state(conn) == expected
    assert await apply(dsn, target=CAPACITY) == [ENROLLMENTS, CAPACITY]
    async with connected(dsn) as conn:
        assert await state(conn) == expected

        # Old and new rows alike take part in enrollments.
        new_student, new_course = max(flow.new_students), max(flow.new_courses)
        pairs = [(1, 1), (ROWS, ROWS), (new_student, 1), (1, new_course)]
        await conn.executemany(
            "insert into student_courses (student_id, course_id) values ($1, $2)", pairs
        )
        rows = await conn.fetch(
            "select student_id, course_id from student_courses order by student_id, course_id"
        )
        assert [tuple(r) for r in rows] == sorted(pairs)


async def test_a_migration_behind_a_long_transaction_holds_up_writers_only_until_its_lock_timeout(
    empty_database,
):
    dsn = empty_database
    assert await apply(dsn, target=FIRST) == [FIRST]
    await load(dsn)
    async with connected(dsn) as conn:
        before = await state(conn)

    async with connected(dsn) as holder, traffic(dsn) as flow:
        await asyncio.sleep(0.3)
        # A long write transaction on students (a batch job, a forgotten session):
        # the foreign key of 0002 needs SHARE ROW EXCLUSIVE on students and waits
        # for it, and every writer arriving after the migration queues behind it.
        busy = holder.transaction()
        await busy.start()
        await holder.execute("lock table students in row exclusive mode")
        started = time.perf_counter()
        attempt = asyncio.create_task(apply(dsn, target=ENROLLMENTS))
        try:
            done, _ = await asyncio.wait({attempt}, timeout=LOCK_TIMEOUT + 10)
        finally:
            await busy.rollback()
        finished = time.perf_counter()
        assert attempt in done, "the migration waited for the lock beyond its lock_timeout"
        error = attempt.exception()
        assert isinstance(error, psycopg.Error), repr(error)
        assert error.sqlstate == "55P03", repr(error)  # lock_not_available
        await asyncio.sleep(0.3)  # the queued writers go on once the migration gave up
    print(f"\n{flow.report()}; the failed attempt took {finished - started:.2f} s")

    writes = flow.during("write", started, finished)
    reads = flow.during("read", started, finished)
    # The writers did queue behind the waiting migration (else this test proves
    # nothing), and no longer than its lock_timeout, plus time to get going again.
    assert max(writes) > 1.0, f"no writer waited for the migration: {flow.report()}"
    assert max(writes) < LOCK_TIMEOUT + 2.0, flow.report()
    # SHARE ROW EXCLUSIVE lets reads through, even queued: readers never stalled.
    assert len(reads) > 20, f"reads stopped while the migration waited: {flow.report()}"
    assert max(reads) < LOCK_TIMEOUT / 2, flow.report()

    # Nothing of the failed attempt remains; the writers' work is all there.
    assert await applied(dsn) == [FIRST]
    async with connected(dsn) as conn:
        assert await conn.fetchval("select to_regclass('student_courses')") is None
        assert await state(conn) == flow.expected(before)

    # With the long transaction gone, the same migration goes through.
    assert await apply(dsn, target=CAPACITY) == [ENROLLMENTS, CAPACITY]
    async with connected(dsn) as conn:
        assert await state(conn) == flow.expected(before)


# --- 0005: waitlists and kept seat counts, under enrollments ------------------

PER_STUDENT = 2
OLD_COURSES = 2_000  # the courses the loaded enrollments go to
TRAFFIC_COURSES = range(OLD_COURSES + 1, OLD_COURSES + 101)  # the enrollers' own


@dataclass
class Enrollers:
    """Enroll and drop in the traffic's own courses, and count seats, all the while."""

    timings: list[tuple[str, float, float]] = field(default_factory=list)
    pairs: set[tuple[int, int]] = field(default_factory=set)  # what the enrollers committed
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def timed(self, kind: str, call: Any, *args: Any) -> Any:
        started = time.perf_counter()
        result = await call(*args)
        self.timings.append((kind, started, time.perf_counter()))
        return result

    async def enroller(self, conn: asyncpg.Connection, number: int) -> None:
        rng = random.Random(2000 + number)
        mine: list[
            tuple[int, int]
        ] = []  # students of this enroller only: ids = number + 1 mod WRITERS
        while not self.stop.is_set():
            pair = (rng.randrange(number + 1, ROWS, WRITERS), rng.choice(TRAFFIC_COURSES))
            await self.timed(
                "write",
                conn.execute,
                "insert into student_courses (student_id, course_id) values ($1, $2)"
                " on conflict do nothing",
                *pair,
            )
            if pair not in self.pairs:
                self.pairs.add(pair)
                mine.append(pair)
            if mine and rng.random() < 0.3:
                drop = mine.pop(rng.randrange(len(mine)))
                await self.timed(
                    "write",
                    conn.execute,
                    "delete from student_courses where student_id = $1 and course_id = $2",
                    *drop,
                )
                self.pairs.discard(drop)
            await asyncio.sleep(0.001)

    async def reader(self, conn: asyncpg.Connection, number: int) -> None:
        rng = random.Random(3000 + number)
        while not self.stop.is_set():
            await self.timed(
                "read",
                conn.fetchval,
                "select count(*) from student_courses where course_id = $1",
                rng.randint(1, OLD_COURSES),
            )
            await asyncio.sleep(0.002)

    def during(self, kind: str, start: float, end: float) -> list[float]:
        return [f - s for k, s, f in self.timings if k == kind and s < end and f > start]


async def enrollment_state(conn: asyncpg.Connection) -> dict[str, Any]:
    return dict(
        await conn.fetchrow(
            """
            select
                (select md5(string_agg((student_id, course_id, enrolled_at)::text, ','
                                       order by student_id, course_id))
                  from student_courses where course_id <= $1) as old_enrollments,
                (select count(*) from student_courses where course_id <= $1) as old_count,
                (select md5(string_agg((id, code, title, capacity, created_at)::text, ','
                                       order by id))
                  from courses) as courses,
                (select md5(string_agg(s::text, ',' order by s.id)) from students s) as students
            """,
            OLD_COURSES,
        )
    )


async def test_waitlists_apply_under_enrollments_and_count_every_seat(empty_database):
    dsn = empty_database
    assert await apply(dsn, target=LETTER_CASE) == [FIRST, ENROLLMENTS, CAPACITY, LETTER_CASE]
    await load(dsn)
    async with connected(dsn) as conn:
        # Two courses for each student among the first 2,000, half of those
        # courses with a limit above what they hold: 200,000 enrollments.
        await conn.execute(
            "update courses set capacity = 150 where id <= $1 and id % 2 = 0", OLD_COURSES
        )
        await conn.execute(
            "set session_replication_role = replica"
        )  # no per-row checks: consistent by construction
        await conn.copy_records_to_table(
            "student_courses",
            records=(
                (s, 1 + (s + k * OLD_COURSES // 2) % OLD_COURSES)
                for s in range(1, ROWS + 1)
                for k in range(PER_STUDENT)
            ),
            columns=["student_id", "course_id"],
        )
        await conn.execute("set session_replication_role = origin")
        before = await enrollment_state(conn)
    assert before["old_count"] == ROWS * PER_STUDENT

    flow = Enrollers()
    conns = await asyncio.gather(*(asyncpg.connect(dsn) for _ in range(READERS + WRITERS)))
    tasks = [asyncio.create_task(flow.reader(c, n)) for n, c in enumerate(conns[:READERS])]
    tasks += [asyncio.create_task(flow.enroller(c, n)) for n, c in enumerate(conns[READERS:])]
    try:
        await asyncio.sleep(0.3)
        ids, started, finished = await timed_apply(dsn, WAITLISTS)
        await asyncio.sleep(0.3)
    finally:
        flow.stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(c.close() for c in conns))
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert ids == [WAITLISTS]
    print(f"\n0005 took {finished - started:.2f} s; {len(flow.timings)} statements")

    # The traffic overlapped the migration, and waited at most about its lock.
    assert flow.during("write", started, finished), "no enrollment while 0005 ran"
    assert flow.during("read", started, finished), "no read while 0005 ran"
    assert max(f - s for _, s, f in flow.timings) < LOCK_TIMEOUT

    async with connected(dsn) as conn:
        # No existing row changed; what the traffic committed is all there.
        assert await enrollment_state(conn) == before
        committed = await conn.fetch(
            "select student_id, course_id from student_courses where course_id > $1", OLD_COURSES
        )
        assert {tuple(r) for r in committed} == flow.pairs
        # Every count equals its rows, the traffic's courses included.
        off = await conn.fetch(
            "select c.id from courses c"
            " where c.enrolled <> (select count(*) from student_courses e where e.course_id = c.id)"
            "    or c.waitlisted <> 0"
        )
        assert off == []
        assert (
            await conn.fetchval("select sum(enrolled) from courses")
            == len(committed) + before["old_count"]
        )
