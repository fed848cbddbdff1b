"""Migrations on 100,000 students and courses while the service keeps working.

0002 and 0003 run under reads and writes of students and courses, 0005 (the
waitlists and the kept seat counts) under enrollments and drops as well, and
the newest release's migrate from 0015 (0016 terms, 0017, 0018 and 0019
sourced ids, 0020 row counts, then sql/functions) under all of these as the release before
0016 sends them, on enrollments and waitlists, with how long each migration
holds its locks measured. That release's database is the migrations up to
0015 and its own sql/functions, read from git (the parent of the commit that
added 0016).

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
import hashlib
import random
import subprocess
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import SimpleNamespace
from typing import Any

import asyncpg
import psycopg
import pytest

from bench import dataset
from service import migrations
from service.sql import QUERIES, parse
from tests.migrating import applied, apply, connected, rollback
from tests.test_database_migrations import MIGRATION_IDS

FIRST = "0001_students_and_courses"
ENROLLMENTS = "0002_student_courses"
CAPACITY = "0003_course_capacity"
LETTER_CASE = "0004_unicode_letter_case"
WAITLISTS = "0005_waitlists"

# The traffic's statements, valid before and after every migration here (the
# service's own SQL of the day needs the newest schema).
GET_STUDENT = "select id, name, email, created_at from students where id = $1"
CREATE_STUDENT = "insert into students (name, email) values ($1, $2) returning id, email"
RENAME_STUDENT = "update students set name = $2 where id = $1"
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
# lock_timeout = '5s' in every migration file (SET LOCAL, or SET in 0019's).
LOCK_TIMEOUT = 5.0


# --- helpers -----------------------------------------------------------------


async def load(dsn: str, *, triggers: bool = True) -> None:
    """ROWS students and ROWS courses by COPY, ids 1..ROWS, sequences past them.

    triggers=False: without the triggers (and so the events) of a later schema.
    """
    async with connected(dsn) as conn, conn.transaction():
        if not triggers:
            await conn.execute("set local session_replication_role = replica")
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


async def state(conn: asyncpg.Connection, leave_out: Sequence[str] = ()) -> dict[str, Any]:
    """Everything the traffic may or may not have changed, in exact terms.

    leave_out: columns of students and courses the comparison skips (those a
    migration added, whose values are checked on their own).
    """
    old = dict(
        await conn.fetchrow(
            """
            select
                (select count(*) from students where id <= $1) as students,
                (select count(*) from courses where id <= $1) as courses,
                -- the server's text of every column of every row nobody writes to
                (select md5(string_agg((to_jsonb(s) - $3::text[])::text, ',' order by s.id))
                  from students s where s.id <= $1 and s.id % $2 <> 0) as untouched_students,
                (select md5(string_agg((to_jsonb(c) - $3::text[])::text, ',' order by c.id))
                  from courses c where c.id <= $1 and c.id % $2 <> 0) as untouched_courses,
                -- the renamed rows, but for the column the writers change
                (select md5(string_agg((s.id, s.email, s.created_at)::text, ',' order by s.id))
                  from students s where s.id <= $1 and s.id % $2 = 0) as renamed_students,
                (select md5(string_agg((c.id, c.code, c.capacity, c.created_at)::text, ','
                                       order by c.id))
                  from courses c where c.id <= $1 and c.id % $2 = 0) as renamed_courses
            """,
            ROWS,
            RESERVED,
            list(leave_out),
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
                GET_STUDENT,
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
                CREATE_STUDENT,
                f"Load {tag}",
                f"load-{tag}@example.org",
            )
            self.new_students[row["id"]] = row["email"]
            student = rng.choice(mine)
            await self.timed(
                "write",
                "update_student",
                conn.execute,
                RENAME_STUDENT,
                student,
                f"Renamed {tag}",
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


# --- 0016: terms, under the traffic of the release before it -----------------

BEFORE_TERMS = "0015_functions_in_one_place"
TERMS = "0016_terms"
MEETING_TIMES = "0017_meeting_times"  # applied with it by the newest release's migrate
SOURCED_IDS = "0018_sourced_ids"  # and these two after it
SOURCED_IDS_FILLED = "0019_sourced_ids_filled"
ROW_COUNTS = "0020_row_counts"
# What 0016 adds to students and courses: every existing row must hold their
# defaults. state() leaves them out, and the counts the registrations change
# (queue_state() and the counts' own check cover the old courses' counts).
TERM_COLUMNS = [
    *("term_id", "credits", "meetings", "prerequisites", "holds", "meeting_times"),
    *("sourced_id", "modified_at"),  # 0018's, checked on their own
]
LEAVE_OUT = [*TERM_COLUMNS, "enrolled", "waitlisted"]
ROOT = Path(__file__).resolve().parent.parent

# The release before 0016 enrolls and drops through the 5-argument
# enroll_run() and drop_enrollment() (its sql/enrollments.sql, verbatim);
# 0016's functions keep both. Its other statements (reads, leaving a queue)
# are those of its sql/ (OLD_QUERIES, from git).
OLD_ENROLL = """
select outcome, student_id, course_id, code, title, capacity, waitlist_capacity, enrolled,
       waitlisted, created_at, enrolled_at, waitlisted_at, queue_position
from enroll_run($2, null, array[$1::bigint], array[$3::boolean], $4)
"""
OLD_DROP = "select outcome, student_id, course_id from drop_enrollment($1, null, $2, null, $3)"
# The 7-argument enroll_run() of the service after 0016, for a course by id.
NEW_ENROLL = (
    "select outcome, queue_position, term_id, credits, meetings, prerequisites"
    " from enroll_run($2, null, null, array[$1::bigint], array[$3::boolean], null, $4)"
)
IN_PLACE = {"enrolled", "already-enrolled", "waitlisted", "already-waiting"}

# The old courses 1..OLD_COURSES hold 2 enrollments of every student (100
# each); every fourth is full (capacity 100) with 50 students waiting, every
# other fourth has seats left, the rest no limit. The enrollers work on
# QUEUE_COURSES only, small enough that they fill, queue, drop and promote.
FULL, OPEN = 1, 3  # course id % 4
QUEUED = 50
QUEUE_COURSES = range(OLD_COURSES + 1, OLD_COURSES + 11)
QUEUE_CAPACITY, QUEUE_WAITLIST = 2, 4
# 0016 and the functions' transaction lock the tables in an order the
# traffic's statements may cross (a drop: student_courses, then courses), so
# a deadlock may abort one side after deadlock_timeout (1 s): a request
# (503 busy, the client retries) or the migrate (the operator runs it again).
MIGRATE_ATTEMPTS = 10
# 0019 commits its fill every 1,000 rows: a writer waits for one batch at
# most (tests/test_database_migrations.py holds it to the same bound on 30,000
# students, alone on the machine); the traffic here runs beside it.
FILL_WAIT = 1.0

# Locks that keep writers out (and ACCESS EXCLUSIVE: readers too) on our
# tables, by transaction. The traffic's statements take weaker ones only.
# Not those of a transaction that is ending: it has no local id any more
# (".../0") while it releases them, and would count as one more. Not a
# table's extension lock, which an insert holds for a moment.
# And, as if it were a lock, 0019's fill (its DO statement, which commits
# batch after batch and holds only the rows of one) while it runs.
WATCHED_LOCKS = """
select l.virtualtransaction, c.relname, l.mode
from pg_locks l
join pg_class c on c.oid = l.relation
where l.database = (select oid from pg_database where datname = current_database())
  and l.granted and l.locktype = 'relation' and l.virtualtransaction !~ '/0$'
  and c.relkind = 'r' and c.relnamespace = 'public'::regnamespace
  and c.relname !~ '^_?yoyo_'
  and l.mode in ('ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')
union all
select format('%s %s', pid, query_start), 'sourced_ids', 'filling'
from pg_stat_activity
where datname = current_database() and state = 'active' and query like 'do $$%'
"""


def files_before(migration: str, directory: str) -> dict[str, str]:
    """{name: text} of the .sql files in `directory` as the release before `migration` had them.

    From git: the parent of the commit that added the migration (HEAD while
    it is not committed yet).
    """

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
        ).stdout

    try:
        added = git("log", "--diff-filter=A", "--format=%H", "--", f"migrations/{migration}.sql")
        before = f"{added.split()[-1]}^" if added.strip() else "HEAD"
        names = git("ls-tree", "--name-only", before, f"{directory}/").split()
        files = {
            PurePosixPath(n).name: git("show", f"{before}:{n}")
            for n in sorted(names)
            if n.endswith(".sql")
        }
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"the {directory} of the release before {migration} come from git: {error}")
    assert files, f"no {directory} at {before}"
    return files


def functions_before(migration: str) -> dict[str, str]:
    """sql/functions as the release before `migration` had them."""
    return files_before(migration, "sql/functions")


def queries_before(migration: str) -> SimpleNamespace:
    """The statements of sql/ as the release before `migration` had them, as QUERIES has today's."""
    return SimpleNamespace(
        **{
            PurePosixPath(name).stem: SimpleNamespace(**parse(text))
            for name, text in files_before(migration, "sql").items()
        }
    )


def _apply_functions(dsn: str, files: dict[str, str]) -> list[str]:
    # What that release's migrate did after its migrations (service/migrations.py).
    with migrations._open(dsn) as (backend, _):
        return migrations._apply_functions(backend, files)


async def load_queues(dsn: str) -> None:
    """On top of load(): the old courses' enrollments and queues, their counts kept.

    Without triggers (consistent by construction), so the counts are set here.
    """
    async with connected(dsn) as conn, conn.transaction():
        await conn.execute("set local session_replication_role = replica")
        await conn.execute(
            "update courses set capacity = case id % 4 when $2 then 100 when $3 then 150 end,"
            " waitlist_capacity = case id % 4 when $2 then 100 else 0 end"
            " where id <= $1",
            OLD_COURSES,
            FULL,
            OPEN,
        )
        await conn.execute(
            "update courses set capacity = $2, waitlist_capacity = $3 where id between $1 and $4",
            QUEUE_COURSES[0],
            QUEUE_CAPACITY,
            QUEUE_WAITLIST,
            QUEUE_COURSES[-1],
        )
        half = OLD_COURSES // 2
        await conn.copy_records_to_table(
            "student_courses",
            records=(
                (s, 1 + (s + k * half) % OLD_COURSES)
                for s in range(1, ROWS + 1)
                for k in range(PER_STUDENT)
            ),
            columns=["student_id", "course_id"],
        )
        # Students of neither of their courses, in student id order (seq).
        await conn.copy_records_to_table(
            "course_waitlist",
            records=(
                (s, course)
                for s in range(1, ROWS + 1)
                if (course := 1 + (s + half // 2) % OLD_COURSES) % 4 == FULL
            ),
            columns=["student_id", "course_id"],
        )
        await conn.execute(
            "update courses c set"
            " enrolled = (select count(*) from student_courses e where e.course_id = c.id),"
            " waitlisted = (select count(*) from course_waitlist w where w.course_id = c.id)"
            " where c.id <= $1",
            OLD_COURSES,
        )
    async with connected(dsn) as conn:
        await conn.execute("analyze")


async def queue_state(conn: asyncpg.Connection) -> dict[str, Any]:
    """The old courses' enrollments and queues, every column that was there before 0016."""
    return dict(
        await conn.fetchrow(
            """
            select
                (select md5(string_agg((student_id, course_id, enrolled_at)::text, ','
                                       order by student_id, course_id))
                  from student_courses where course_id <= $1) as enrollments,
                (select count(*) from student_courses where course_id <= $1) as enrolled,
                (select md5(string_agg((student_id, course_id, waitlisted_at, seq)::text, ','
                                       order by course_id, seq))
                  from course_waitlist where course_id <= $1) as queues,
                (select count(*) from course_waitlist where course_id <= $1) as waiting
            """,
            OLD_COURSES,
        )
    )


@dataclass
class Registrations:
    """Enroll, drop and leave queues as the release before 0016 does, and read courses' lists."""

    # That release's statements (queries_before(TERMS)).
    queries: SimpleNamespace
    timings: list[tuple[str, str, float, float]] = field(default_factory=list)
    # (student, course) enrolled or waiting in a QUEUE_COURSE, as the outcomes said
    places: set[tuple[int, int]] = field(default_factory=set)
    outcomes: dict[str, int] = field(default_factory=dict)
    # (what, started, finished) of each statement a deadlock aborted
    busy: list[tuple[str, float, float]] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def timed(self, kind: str, what: str, call: Any, *args: Any) -> Any:
        """The statement, again after a deadlock as the service's client would after 503."""
        while True:
            started = time.perf_counter()
            try:
                result = await call(*args)
            except asyncpg.DeadlockDetectedError:
                self.busy.append((what, started, time.perf_counter()))
                continue
            self.timings.append((kind, what, started, time.perf_counter()))
            return result

    async def enroller(self, conn: asyncpg.Connection, number: int) -> None:
        rng = random.Random(4000 + number)
        mine: list[tuple[int, int]] = []  # students whose id = number + 1 mod WRITERS
        while not self.stop.is_set():
            pair = (rng.randrange(number + 1, 2000, WRITERS), rng.choice(QUEUE_COURSES))
            row = await self.timed(
                "write", "enroll", conn.fetchrow, OLD_ENROLL, *pair, True, "load"
            )
            outcome = row["outcome"]
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
            if outcome in IN_PLACE and pair not in self.places:
                self.places.add(pair)
                mine.append(pair)
            else:
                assert outcome in IN_PLACE | {"waitlist-full"}, (pair, outcome)
            if mine and rng.random() < 0.4:
                await self.leave(conn, mine.pop(rng.randrange(len(mine))))
            await asyncio.sleep(0.001)

    async def leave(self, conn: asyncpg.Connection, pair: tuple[int, int]) -> None:
        """Drop the seat, or leave the queue (a promotion may come in between)."""
        for _ in range(3):
            row = await self.timed("write", "drop", conn.fetchrow, OLD_DROP, *pair, "load")
            if row["outcome"] == "dropped":
                break
            left = await self.timed(
                "write", "leave", conn.fetchrow, self.queries.waitlist.leave, *pair, "load"
            )
            if left is not None:
                break
        else:
            raise AssertionError(f"{pair} is neither enrolled nor waiting")
        self.places.discard(pair)

    async def reader(self, conn: asyncpg.Connection, number: int) -> None:
        rng = random.Random(5000 + number)
        while not self.stop.is_set():
            course = rng.randint(1, OLD_COURSES)
            await self.timed(
                "read",
                "list_course_students",
                conn.fetch,
                self.queries.enrollments.list_course_students,
                course,
                0,
                51,
            )
            await self.timed(
                "read",
                "list_course_waitlist",
                conn.fetch,
                self.queries.waitlist.list_course_waitlist,
                course - course % 4 + FULL,
                0,
                51,
            )
            await asyncio.sleep(0.002)

    def during(self, kind: str, start: float, end: float) -> list[float]:
        return [f - s for k, _, s, f in self.timings if k == kind and s < end and f > start]

    def worst(self) -> tuple[float, str]:
        return max((f - s, what) for _, what, s, f in self.timings)


@asynccontextmanager
async def registrations(dsn: str) -> AsyncIterator[Registrations]:
    flow = Registrations(queries_before(TERMS))
    conns = await asyncio.gather(*(asyncpg.connect(dsn) for _ in range(READERS + WRITERS)))
    tasks = [asyncio.create_task(flow.reader(c, n)) for n, c in enumerate(conns[:READERS])]
    tasks += [asyncio.create_task(flow.enroller(c, n)) for n, c in enumerate(conns[READERS:])]
    try:
        yield flow
    finally:
        flow.stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(c.close() for c in conns))
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, f"the registrations failed: {failures!r}"
    assert flow.outcomes.get("enrolled") and flow.outcomes.get("waitlisted"), flow.outcomes


@dataclass
class LockWatch:
    """The locks of WATCHED_LOCKS, polled: when each was first and last seen held."""

    # (transaction, table, mode) -> [first seen, last seen], time.perf_counter()
    seen: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)
    polls: list[float] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, conn: asyncpg.Connection) -> None:
        while not self.stop.is_set():
            rows = await conn.fetch(WATCHED_LOCKS)
            now = time.perf_counter()
            self.polls.append(now)
            for row in rows:
                span = self.seen.setdefault(tuple(row), [now, now])
                span[1] = now
            await asyncio.sleep(0.001)

    def of(self, table: str, mode: str) -> list[tuple[str, float, float]]:
        """(transaction, first, last) of each transaction seen holding `mode` on `table`."""
        return sorted(
            (
                (x, first, last)
                for (x, t, m), (first, last) in self.seen.items()
                if (t, m) == (table, mode)
            ),
            key=lambda found: found[1],
        )

    def held(self, transaction: str) -> dict[str, float]:
        """'table mode' -> seconds held, for one transaction, longest first."""
        spans = {
            f"{t} {m}": last - first
            for (x, t, m), (first, last) in self.seen.items()
            if x == transaction
        }
        return dict(sorted(spans.items(), key=lambda s: -s[1]))

    def period(self) -> float:
        """The longest gap between two polls: how much a duration may be short by."""
        return max(b - a for a, b in zip(self.polls, self.polls[1:], strict=False))

    def transactions(self) -> list[tuple[str, float, float, dict[str, float]]]:
        """(transaction, first, last, held()) of every transaction seen, by when it was first seen."""
        spans: dict[str, list[float]] = {}
        for (x, _, _), (first, last) in self.seen.items():
            span = spans.setdefault(x, [first, last])
            span[0], span[1] = min(span[0], first), max(span[1], last)
        return sorted(
            ((x, first, last, self.held(x)) for x, (first, last) in spans.items()),
            key=lambda found: found[1],
        )


@asynccontextmanager
async def watching(dsn: str) -> AsyncIterator[LockWatch]:
    watch = LockWatch()
    async with connected(dsn) as conn:
        task = asyncio.create_task(watch.run(conn))
        try:
            yield watch
        finally:
            watch.stop.set()
            await task


def milliseconds(spans: dict[str, float]) -> str:
    return ", ".join(f"{what} {seconds * 1000:.0f} ms" for what, seconds in spans.items())


def migrate_parts(watch: LockWatch) -> dict[str, list[tuple[str, float, float, dict[str, float]]]]:
    """The transactions of a migrate from 0015 to the newest schema, by the locks they held.

    0016's held ACCESS EXCLUSIVE on the four tables it alters, course_waitlist
    among them, which no later migration locks so; 0017's on courses alone;
    0018's on students, courses, student_courses and terms; 0019 commits
    statement by statement, and the ACCESS EXCLUSIVE ones among them (a check
    added, NOT NULL set, the check dropped) hold one table each, after its
    fill; the functions' SHARE ROW EXCLUSIVE (CREATE OR REPLACE TRIGGER) and
    no ACCESS EXCLUSIVE. In each list the last committed, the others lost to
    a deadlock (and a migration lost while it locked may have held less).
    """
    fills = watch.of("sourced_ids", "filling")
    filled = fills[0][1] if fills else float("inf")
    parts: dict[str, list[tuple[str, float, float, dict[str, float]]]] = {
        name: [] for name in (TERMS, MEETING_TIMES, SOURCED_IDS, SOURCED_IDS_FILLED, "functions")
    }
    for found in watch.transactions():
        locks = set(found[3])
        exclusive = {lock for lock in locks if lock.endswith(" AccessExclusiveLock")}
        if exclusive == {"row_counts AccessExclusiveLock"}:
            continue  # 0020 creates the table, and locks nothing else
        if "course_waitlist AccessExclusiveLock" in exclusive:
            parts[TERMS].append(found)
        elif {"students AccessExclusiveLock", "terms AccessExclusiveLock"} <= exclusive:
            parts[SOURCED_IDS].append(found)
        elif len(exclusive) == 1 and found[1] > filled:
            parts[SOURCED_IDS_FILLED].append(found)
        elif exclusive == {"courses AccessExclusiveLock"}:
            parts[MEETING_TIMES].append(found)
        elif not exclusive and "courses ShareRowExclusiveLock" in locks:
            parts["functions"].append(found)
    return parts


async def upgrade(dsn: str) -> tuple[list[str], float, float]:
    """migrate to the newest schema; again after a deadlock, as an operator would.

    Returns the deadlocks' details, and when it started and finished.
    """
    deadlocks: list[str] = []
    started = time.perf_counter()
    while len(deadlocks) < MIGRATE_ATTEMPTS:
        try:
            await apply(dsn)
            break
        except psycopg.errors.DeadlockDetected as error:
            deadlocks.append(error.diag.message_detail or "")
    return deadlocks, started, time.perf_counter()


@pytest.mark.slow
async def test_terms_apply_under_the_older_release_and_old_courses_behave_as_before(
    empty_database,
):
    dsn = empty_database
    assert (await apply(dsn, target=BEFORE_TERMS))[-1] == BEFORE_TERMS
    old_functions = functions_before(TERMS)
    assert "enrollments.sql" in old_functions and "registration.sql" not in old_functions
    await asyncio.to_thread(_apply_functions, dsn, old_functions)
    await load(dsn, triggers=False)
    await load_queues(dsn)
    async with connected(dsn) as conn:
        before = await state(conn, LEAVE_OUT)
        queues = await queue_state(conn)
    assert (queues["enrolled"], queues["waiting"]) == (
        ROWS * PER_STUDENT,
        OLD_COURSES // 4 * QUEUED,
    )

    # The migrate of the release with 0016: the migration, then its functions,
    # while instances of the release before it go on.
    async with traffic(dsn) as flow, registrations(dsn) as queue, watching(dsn) as watch:
        await asyncio.sleep(1.0)  # the small courses full, their queues long
        deadlocks, started, finished = await upgrade(dsn)
        await asyncio.sleep(0.5)
    # (A migrate that lost its functions' transaction to a deadlock had
    # committed 0016: the next one applies only the functions.)
    assert len(deadlocks) < MIGRATE_ATTEMPTS, deadlocks
    assert await applied(dsn) == MIGRATION_IDS
    async with connected(dsn) as conn:
        digests = dict(await conn.fetch("select file, digest from schema_functions"))
    assert digests == {
        name: hashlib.sha256(text.encode()).hexdigest()
        for name, text in migrations.function_files().items()
    }

    # Which transaction held what, for how long (migrate_parts() says how
    # each is told apart).
    # Those of milliseconds (0017's, 0018's, 0019's) may fall between two polls.
    parts = migrate_parts(watch)
    assert parts[TERMS] and parts["functions"], f"the migrate was not seen: {watch.seen}"
    # 0016's committed transaction: the one that held the most (a poll may
    # also catch one ending, its locks half released, as one more).
    (_, _, _, held) = max(parts[TERMS], key=lambda part: len(part[3]))
    lost = parts[TERMS][:-1]
    sourcing = parts[SOURCED_IDS][-1][3] if parts[SOURCED_IDS] else {}
    filling = {
        lock: max(spans.get(lock, 0) for *_, spans in parts[SOURCED_IDS_FILLED])
        for *_, spans in parts[SOURCED_IDS_FILLED]
        for lock in spans
    }
    *_, (_, _, _, applying) = parts["functions"]
    # The writes sent while 0019 filled (again, after a deadlock).
    fills = [(first, last) for _, first, last in watch.of("sourced_ids", "filling")]
    assert fills, "0019's fill was not seen"
    fill_waits = [
        finished - started
        for kind, _, started, finished in [*flow.timings, *queue.timings]
        if kind == "write" and any(first <= started < last for first, last in fills)
    ]
    print(
        f"\nmigrate took {(finished - started) * 1000:.0f} ms, {len(deadlocks)} attempts lost"
        f" to a deadlock ({len(lost)} of them in 0016, holding courses"
        f" {[round(spans.get('courses AccessExclusiveLock', 0) * 1000) for *_, spans in lost]} ms);"
        f" 0016 held {milliseconds(held)};"
        f" 0018 held {milliseconds(sourcing) or 'what no poll saw'};"
        f" 0019 filled in {sum(last - first for first, last in fills):.2f} s, {len(fill_waits)}"
        f" writes meanwhile waited {max(fill_waits) * 1000:.0f} ms at most, then held"
        f" {milliseconds(filling) or 'what no poll saw'} (the longest of"
        f" {len(parts[SOURCED_IDS_FILLED])} transactions seen);"
        f" then sql/functions held {milliseconds(applying)} (polled every"
        f" {watch.period() * 1000:.0f} ms or less); {flow.report()};"
        f" registrations: {len(queue.timings)} statements, slowest"
        f" {queue.worst()[0] * 1000:.0f} ms ({queue.worst()[1]}), outcomes {queue.outcomes},"
        f" {len(queue.busy)} aborted by a deadlock: {[what for what, *_ in queue.busy]}"
    )
    assert {
        "courses AccessExclusiveLock",
        "students AccessExclusiveLock",
        "student_courses AccessExclusiveLock",
        "course_waitlist AccessExclusiveLock",
    } <= set(held)
    assert max(held.values()) < LOCK_TIMEOUT, held
    # 0018 takes its four locks together, as 0016 does (courses first, held
    # while it waits for the others: up to deadlock_timeout, 1 s, when a
    # drop crosses it), and reads no row once it has them: terms, the last,
    # is held for milliseconds. 0019's locks that keep writers out last no
    # longer than a batch of its fill.
    if sourcing:
        assert {
            "courses AccessExclusiveLock",
            "students AccessExclusiveLock",
            "student_courses AccessExclusiveLock",
            "terms AccessExclusiveLock",
        } <= set(sourcing)
        assert max(sourcing.values()) < LOCK_TIMEOUT, sourcing
        assert sourcing["terms AccessExclusiveLock"] < FILL_WAIT, sourcing
    assert max(filling.values(), default=0) < FILL_WAIT, filling
    assert len(fill_waits) > 100, "the traffic did not write while 0019 ran"
    assert max(fill_waits) < FILL_WAIT, f"a write waited {max(fill_waits):.2f} s while 0019 ran"

    # The traffic overlapped the migrate, and no statement waited anywhere near
    # the lock_timeout, nor failed (traffic() and registrations() raise) but
    # for the deadlocks of the migrate's locks, answered 503 by the service.
    for kind in ("read", "write"):
        assert flow.during(kind, started, finished), f"no {kind} while the migrate ran"
        assert queue.during(kind, started, finished), (
            f"no registration {kind} while the migrate ran"
        )
        latency, what = flow.worst(kind)
        assert latency < LOCK_TIMEOUT, f"a {what} waited {latency:.2f} s: {flow.report()}"
    latency, what = queue.worst()
    assert latency < LOCK_TIMEOUT, f"a {what} waited {latency:.2f} s"
    assert all(s < finished and f > started for _, s, f in queue.busy), queue.busy

    async with connected(dsn) as conn:
        # No existing row changed, what the traffic committed is all there,
        # and every row has the new columns' defaults: no term, as before.
        assert await state(conn, LEAVE_OUT) == flow.expected(before)
        assert await queue_state(conn) == queues
        defaults = await conn.fetchrow(
            "select (select count(*) from courses) as courses,"
            " (select count(*) from courses where term_id is null and credits = 0"
            "   and meetings = '[]' and prerequisites = '{}') as without_term,"
            " (select count(*) from students where holds <> 0) as with_holds,"
            " (select count(*) from student_courses where overrides is not null)"
            "   + (select count(*) from course_waitlist where overrides is not null)"
            "   as overridden"
        )
        assert defaults["without_term"] == defaults["courses"] > ROWS
        assert (defaults["with_holds"], defaults["overridden"]) == (0, 0)
        # Every record has a sourced_id of its own, the traffic's too.
        sourced = await conn.fetchrow(
            "select (select count(distinct sourced_id) - count(*) from students) as students,"
            " (select count(distinct sourced_id) - count(*) from courses) as courses,"
            " (select count(distinct sourced_id) - count(*) from student_courses) as enrollments,"
            " (select count(*) from pg_index where indisvalid and indisunique"
            "  and indexrelid::regclass::text like '%sourced_id_key') as indexes"
        )
        assert dict(sourced) == {"students": 0, "courses": 0, "enrollments": 0, "indexes": 4}
        # The registrations' places are what their outcomes said, every count
        # equals its rows, and no seat is free while someone waits.
        rows = await conn.fetch(
            "select student_id, course_id from student_courses where course_id > $1"
            " union all select student_id, course_id from course_waitlist where course_id > $1",
            OLD_COURSES,
        )
        assert sorted(tuple(r) for r in rows) == sorted(queue.places)
        off = await conn.fetch(
            "select c.id from courses c"
            " where c.enrolled <> (select count(*) from student_courses e where e.course_id = c.id)"
            "    or c.waitlisted <> (select count(*) from course_waitlist w where w.course_id = c.id)"
            "    or (c.waitlisted > 0 and c.enrolled < c.capacity)"
        )
        assert off == []

        # Old courses behave as before, for the older release's statements
        # and for the newer's: a seat while one is free, then the queue.
        open_course, full_course = 4 + OPEN, 4 + FULL
        newcomers = [ROWS - 1, ROWS - 2]  # in none of those two courses
        row = await conn.fetchrow(OLD_ENROLL, newcomers[0], open_course, True, "load")
        assert (row["outcome"], row["enrolled"]) == ("enrolled", 101)
        row = await conn.fetchrow(NEW_ENROLL, newcomers[1], open_course, True, "load")
        assert tuple(row) == ("enrolled", None, None, 0, "[]", [])
        row = await conn.fetchrow(
            *QUERIES.enrollments.enroll.bind(
                student_id=newcomers[0],
                course_id=full_course,
                waitlist=True,
                overrides=None,
                sourced_id=None,
                actor="load",
            )
        )
        assert (row["outcome"], row["queue_position"]) == ("waitlisted", QUEUED + 1)
        row = await conn.fetchrow(OLD_ENROLL, newcomers[1], full_course, False, "load")
        assert row["outcome"] == "course-full"
        # A drop promotes the head of the queue, loaded before 0016.
        head = await conn.fetchval(
            "select student_id from course_waitlist where course_id = $1 order by seq limit 1",
            full_course,
        )
        seated = await conn.fetchval(
            "select min(student_id) from student_courses where course_id = $1", full_course
        )
        row = await conn.fetchrow(
            QUERIES.enrollments.delete_enrollment, seated, full_course, None, "load"
        )
        assert row["outcome"] == "dropped"
        assert (
            await conn.fetchval(
                "select count(*) from student_courses where student_id = $1 and course_id = $2",
                head,
                full_course,
            )
            == 1
        )
        # A code is still unique among the courses without a term, in any letter case.
        with pytest.raises(asyncpg.UniqueViolationError) as caught:
            await conn.execute(CREATE_COURSE, "c000005", "Again")
        assert caught.value.constraint_name == "courses_code_key"
        after = await state(conn, TERM_COLUMNS)
        queues = await queue_state(conn)

    # Back to 0015 (the newer release's rollback, then the older's migrate
    # applies its functions again): the same rows, and the older release's
    # statements work on them.
    started = time.perf_counter()
    assert await rollback(dsn, count=5) == [
        ROW_COUNTS,
        SOURCED_IDS_FILLED,
        SOURCED_IDS,
        MEETING_TIMES,
        TERMS,
    ]
    took = time.perf_counter() - started
    newer = migrations.function_files()
    changed = [name for name, text in old_functions.items() if newer.get(name) != text]
    assert await asyncio.to_thread(_apply_functions, dsn, old_functions) == changed
    print(f"the rollback took {took * 1000:.0f} ms on the same data, without traffic")
    async with connected(dsn) as conn:
        assert await state(conn) == after
        assert await queue_state(conn) == queues
        row = await conn.fetchrow(
            OLD_ENROLL, newcomers[1], 4 + OLD_COURSES // 2 + OPEN, True, "load"
        )
        assert row["outcome"] == "enrolled"
        row = await conn.fetchrow(OLD_DROP, newcomers[0], open_course, "load")
        assert row["outcome"] == "dropped"
