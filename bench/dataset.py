"""The benchmark database: created once, bulk-loaded with COPY, reused while its sizes match.

The rows are generated on the fly from a seeded RNG, so any size up to
millions of students streams into PostgreSQL without being held in memory,
and the same sizes always give the same data.

Besides the students the GET and enroll scenarios draw from, the load sets
`reserved` more aside, enrolled nowhere. The scenarios that must never repeat
a request (hot-course-*, drop-promote) use them, in courses of their own:
one set per run (server, round, warm-up or measured), built by
`prepare_runs` before every invocation that needs them and removed by the
next one, since a run uses its set up. The scenarios of the rules of
registration (enroll-rules, bulk-rules, rush) get a term of their own per
run besides, with the completions, per-term settings and enrollments
before the run that they need, built the same way (by SQL: the bench does
not depend on the API that creates terms).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from service import migrations

DATABASE = "enrollment_bench"
# Bumped when the generated data changes shape, so an older load is not reused.
# 2: reserved students; the seat counters (enrolled, waitlisted) filled in.
# 3: a tag in every student's name, for the lookup scenario.
# 4: the reserved students named "Reserved", for lookup-late.
FORMAT = 4
# Each student's name ends in a tag of TAG_LENGTH letters drawn from
# TAG_LETTERS, which "Student", the digits and "@bench.example" do not
# contain: a ?q= of QUERY_LENGTH of those letters (bench/scenarios.lua draws
# them) matches about (students * (TAG_LENGTH - QUERY_LENGTH + 1) /
# len(TAG_LETTERS) ** QUERY_LENGTH) students, 18 of 1,100,000, and no email.
TAG_LETTERS = "fgijkoqrvwyz"
TAG_LENGTH = 8
QUERY_LENGTH = 5
# The reserved students, the highest ids, are "Reserved N <tag>" with
# reservedN@bench.example: a ?q= of "reserved" matches them alone, 100,000
# matches at the end of the id order (lookup-late).
RESERVED_NAME = "Reserved"


@dataclass(frozen=True)
class Sizes:
    students: int
    courses: int
    per_student: int
    # Ids students + 1 .. students + reserved: see the module docstring.
    reserved: int = 100_000
    seed: int = 20261127

    @property
    def enrollments(self) -> int:
        return self.students * self.per_student

    def describe(self) -> str:
        return (
            f"{self.students:,} students (+{self.reserved:,} reserved), {self.courses:,} courses, "
            f"{self.enrollments:,} enrollments ({self.per_student} per student)"
        )


def schema() -> str:
    """A digest of the migrations the load ran on: a load on another schema is not reused."""
    digest = hashlib.sha256()
    for path in sorted(migrations.MIGRATIONS_DIR.glob("*.sql")):
        if not path.name.endswith(".rollback.sql"):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def url_for(server_url: str, database: str) -> str:
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{database}"))


def students(sizes: Sizes) -> Iterator[tuple[int, str, str]]:
    rng = random.Random(sizes.seed)
    for i in range(1, sizes.students + sizes.reserved + 1):
        tag = "".join(rng.choices(TAG_LETTERS, k=TAG_LENGTH))
        word = "Student" if i <= sizes.students else RESERVED_NAME
        yield i, f"{word} {i} {tag}", f"{word.lower()}{i}@bench.example"


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
        without_triggers = await _skip_triggers(conn)
        # Sorting once at the end beats keeping indexes current row by row.
        await conn.execute("set maintenance_work_mem = '256MB'")
        async with conn.transaction():
            rebuild = await _drop_indexes(conn, "student_courses")
            for table, columns, rows, count in (
                (
                    "students",
                    ["id", "name", "email"],
                    students(sizes),
                    sizes.students + sizes.reserved,
                ),
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
            if without_triggers:
                await _count_seats(conn, 1)
                # The kept counts of students and courses (sql/functions/oneroster.sql).
                await conn.execute("select recount_rows()")
            # Later inserts through the API must not collide with loaded ids.
            await conn.execute(
                "select setval(pg_get_serial_sequence('students', 'id'), $1),"
                " setval(pg_get_serial_sequence('courses', 'id'), $2)",
                sizes.students + sizes.reserved,
                sizes.courses,
            )
            loaded_at = await conn.fetchval("select now()")
        started = time.perf_counter()
        await conn.execute("analyze students, courses, student_courses")
        print(f"  analyze: {time.perf_counter() - started:.1f} s")
        return loaded_at
    finally:
        await conn.close()


async def _skip_triggers(conn: asyncpg.Connection) -> bool:
    """Turn triggers and foreign key checks off for this session if allowed; say whether.

    For rows consistent by construction: the checks and the seat counting
    would otherwise run once per row.
    """
    try:
        await conn.execute("set session_replication_role = replica")
    except asyncpg.InsufficientPrivilegeError:
        print("  (not a superuser: loading with per-row triggers, slower)")
        return False
    return True


async def _count_seats(conn: asyncpg.Connection, first_course: int) -> None:
    """Set the counters of courses from id `first_course` on from their rows.

    What the triggers of sql/functions/counts.sql keep with every row, for
    rows loaded while the triggers were off.
    """
    await conn.execute(
        """
        update courses c
        set enrolled = (select count(*) from student_courses where course_id = c.id),
            waitlisted = (select count(*) from course_waitlist where course_id = c.id)
        where c.id >= $1
        """,
        first_course,
    )


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
        wanted = {"format": FORMAT, "schema": schema(), **asdict(sizes)}
        if stored and {k: stored.get(k) for k in wanted} == wanted:
            print(f"reusing {DATABASE}: {sizes.describe()}")
            # The same migrations; the functions of sql/functions/ as they are
            # now (applied again where a file changed, as a deploy does).
            await asyncio.to_thread(migrations.apply, url)
            await _forget_bench_writes(url, sizes, datetime.fromisoformat(stored["loaded_at"]))
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
    rows = sizes.students + sizes.reserved + sizes.courses + sizes.enrollments
    print(f"loaded {rows:,} rows in {took:.1f} s ({rows / took:,.0f} rows/s, with analyze)")

    admin = await asyncpg.connect(server_url)
    try:
        meta = json.dumps({**wanted, "loaded_at": loaded_at.isoformat()})
        # A utility statement takes no parameters; the text is our own JSON.
        await admin.execute(f"comment on database {DATABASE} is '{meta}'")
    finally:
        await admin.close()
    return url


async def _forget_bench_writes(url: str, sizes: Sizes, loaded_at: datetime) -> None:
    """Delete the enrollments earlier runs' enroll scenario added: every run starts alike.

    In the loaded courses only; `prepare_runs` removes the courses of the
    runs' own.
    """
    conn = await asyncpg.connect(url)
    try:
        status = await conn.execute(
            "delete from student_courses where enrolled_at > $1 and course_id <= $2",
            loaded_at,
            sizes.courses,
        )
        deleted = int(status.split()[-1])
        if deleted:
            await conn.execute("vacuum analyze student_courses")
            print(f"  removed {deleted:,} enrollments left by earlier runs")
    finally:
        await conn.close()


# The scenarios that run on courses of their own, built for each run.
HOT_SCENARIOS = ("hot-course-empty", "hot-course-prefilled")
DROP_SCENARIO = "drop-promote"
# Seats of each drop-promote course, and students waiting for each: as many
# as the seats, so every drop of a seated student promotes one.
DROP_SEATS = 50

# The bulk scenario: POST /enrollments/batch of BULK_ITEMS new enrollments per
# request, on the service only (the reference has no batches), each request
# into a course of its own; planned for BULK_RATE requests a second, past
# which a run finds no data left (reported, like the others).
BULK_SCENARIO = "bulk"
BULK_ITEMS = 500
BULK_RATE = 200

# The queue scenario (issue 23, bench/queue.py): a course of QUEUE_SEATS
# seats taken and QUEUE_WAITING waiting, per measured round, service only;
# up to QUEUE_SINGLES more students enroll into it one by one during the run.
QUEUE_SCENARIO = "queue"
QUEUE_SEATS = 2_000
QUEUE_WAITING = 50_000
QUEUE_SINGLES = 2_000

# (scenario, server, round, warm-up or not): one set of courses each.
RunKey = tuple[str, str, int, bool]


@dataclass(frozen=True)
class HotCourse:
    """One course without a capacity, and the students a run may enroll in it.

    Reserved students first_student .. first_student + students - 1 are
    free to enroll; the `enrolled` reserved students after them are in the
    course before the run.
    """

    course: int
    first_student: int
    students: int
    enrolled: int

    def wrk_args(self) -> list[str]:
        return [str(self.course), str(self.first_student), str(self.students)]


@dataclass(frozen=True)
class DropCourses:
    """Full courses first_course .. first_course + courses - 1, each with a queue.

    Course first_course + i seats `seats` reserved students and as many wait
    for it, all distinct across the courses (see `seated` and `waiting`), so
    a run can drop each of the courses * seats enrollments once, and every
    drop promotes the head of a queue.
    """

    first_course: int
    courses: int
    first_student: int
    seats: int = DROP_SEATS

    @property
    def drops(self) -> int:
        return self.courses * self.seats

    def seated(self, i: int, rank: int) -> int:
        # bench/scenarios.lua computes the same ids.
        return self.first_student + i * self.seats + rank

    def waiting(self, i: int, place: int) -> int:
        return self.first_student + (self.courses + i) * self.seats + place

    def wrk_args(self) -> list[str]:
        return [str(self.first_course), str(self.courses), str(self.seats), str(self.first_student)]


@dataclass(frozen=True)
class BulkCourses:
    """Courses first_course .. first_course + courses - 1 without a capacity, empty.

    Request r of a run enrolls `items` reserved students into course
    first_course + r: students first_student + (r * items + k) % students for
    k below items (bench/scenarios.lua computes the same), so no pair repeats,
    and concurrent requests lock courses of their own.

    With a `term` (bulk-rules), the courses are of that term, each with
    RULES_CREDITS, RULES_PREREQUISITE and `items` seats, and `students` a
    multiple of `items`: the requests come in passes of students / items,
    each pass enrolling every student once, and the courses of pass p meet
    in slot p (slot_meetings), so no student's courses overlap.
    """

    first_course: int
    courses: int
    first_student: int
    students: int
    items: int = BULK_ITEMS
    term: int | None = None

    @property
    def enrollments(self) -> int:
        return self.courses * self.items

    def slot(self, request: int) -> int:
        """The slot of the week of request `request`'s course (with a term)."""
        return request // (self.students // self.items)

    def wrk_args(self) -> list[str]:
        return [
            str(self.first_course),
            str(self.courses),
            str(self.first_student),
            str(self.students),
            str(self.items),
        ]


@dataclass(frozen=True)
class QueueCourse:
    """A full course with a long queue, of reserved students (the same in every round).

    Students first_student .. + seats - 1 hold its seats; the next `waiting`
    wait for it, in id order (the first is the head); the next `singles` are
    free to enroll (bench/queue.py).
    """

    course: int
    first_student: int
    seats: int = QUEUE_SEATS
    waiting: int = QUEUE_WAITING
    singles: int = QUEUE_SINGLES

    @property
    def first_waiting(self) -> int:
        return self.first_student + self.seats

    @property
    def first_single(self) -> int:
        return self.first_waiting + self.waiting

    def wrk_args(self) -> list[str]:
        return []  # not a wrk scenario


# Issue 27: the rules of registration on (spec: "Terms and the rules of
# registration"). Each run of these scenarios gets a term of its own, open
# for registration (opened a day before the invocation, closing and the
# drop deadline a month after it), with a credit limit.
RULES_SCENARIO = "enroll-rules"
BULK_RULES_SCENARIO = "bulk-rules"
RUSH_SCENARIO = "rush"
RULES_SCENARIOS = (RULES_SCENARIO, BULK_RULES_SCENARIO, RUSH_SCENARIO)
# Every course of enroll-rules and bulk-rules requires this code, which
# every reserved student has completed; each has RULES_CREDITS credits and
# meets in a slot of the week (slot_meetings), two days, 50 minutes.
RULES_PREREQUISITE = "BENCH100"
RULES_CREDITS = Decimal("3.0")
DAY_PAIRS = (("mon", "thu"), ("tue", "fri"), ("wed", "sat"))
# Slots 07:00 to 22:50, no two overlapping.
SLOTS = 3 * 16
# enroll-rules: each student of a run holds RULES_PREFILLED courses of the
# term before it, one per slot, and the run may add RULES_NEW, one per slot
# again: (2 + 4) * 3 = 18 credits, within the term's RULES_MAX_CREDITS. A
# slot has RULES_SECTIONS sections, so concurrent requests (consecutive
# students) go to different courses. Planned for RULES_RATE requests a second
# (like BULK_RATE: past that a run finds no data left, and says so).
RULES_PREFILLED = 2
RULES_NEW = 4
RULES_SECTIONS = 100
RULES_MAX_CREDITS = Decimal("20.0")
RULES_RATE = 5_000
# bulk-rules: the bulk scenario's batches, into courses of a term whose
# limit lets a student take a course in each of BULK_RULES_PASSES slots.
BULK_RULES_MAX_CREDITS = Decimal("99.9")
BULK_RULES_PASSES = min(SLOTS, int(BULK_RULES_MAX_CREDITS // RULES_CREDITS))
# rush: RUSH_STUDENTS students (reserved ones, the same in every run) into
# RUSH_SECTIONS hot sections of one term (rush_meetings: section j overlaps
# j - 3 and j + 3), RUSH_CREDITS each, a limit of RUSH_MAX_CREDITS (of
# RUSH_OWN_LIMIT for every RUSH_OWN_LIMIT_EVERY-th student, their own), few
# seats and a short waitlist; every RUSH_PREREQUISITE_EVERY-th section
# requires RUSH_PREREQUISITE, which every RUSH_MISSING_EVERY-th student lacks.
RUSH_SECTIONS = 20
RUSH_SEATS = 25
RUSH_WAITLIST = 10
RUSH_STUDENTS = 400
RUSH_CREDITS = Decimal("4.0")
RUSH_MAX_CREDITS = Decimal("12.0")
RUSH_OWN_LIMIT = Decimal("8.0")
RUSH_OWN_LIMIT_EVERY = 4
RUSH_PREREQUISITE = "RUSH100"
RUSH_PREREQUISITE_EVERY = 5
RUSH_MISSING_EVERY = 3


def slot_meetings(slot: int) -> list[dict]:
    """A course's meetings in `slot` of the week: no two slots overlap."""
    days = DAY_PAIRS[slot % len(DAY_PAIRS)]
    hour = 7 + slot // len(DAY_PAIRS)
    return [{"days": list(days), "starts": f"{hour:02d}:00", "ends": f"{hour:02d}:50"}]


def rush_meetings(section: int) -> list[dict]:
    """Rush section j: 90 minutes from 08:00 + (j // 3) hours on a pair of days.

    Sections j and j + 3 share their days and half an hour: a student in
    one gets time-conflict for the other. Others do not overlap.
    """
    days = DAY_PAIRS[section % len(DAY_PAIRS)]
    hour = 8 + section // len(DAY_PAIRS)
    return [{"days": list(days), "starts": f"{hour:02d}:00", "ends": f"{hour + 1:02d}:30"}]


@dataclass(frozen=True)
class RulesCourses:
    """enroll-rules: a term of its own, every rule on, and its courses.

    Course first_course + slot * sections + j meets in `slot` (slot_meetings),
    has RULES_CREDITS, requires RULES_PREREQUISITE and has `seats`. Student
    first_student + s (s below `students`) takes section s % sections in
    every slot: before the run, the first `prefilled` slots (and a time
    ticket, opened before the term's opening); item i of the run (bench/
    scenarios.lua computes the same) enrolls student s = i % students into
    slot prefilled + i // students. So no pair repeats, none of a student's
    courses overlap another, every request passes every rule and is
    answered 201, and concurrent requests are for different students.
    """

    term: int
    first_course: int
    first_student: int
    students: int
    sections: int = RULES_SECTIONS
    prefilled: int = RULES_PREFILLED
    new: int = RULES_NEW

    @property
    def courses(self) -> int:
        return (self.prefilled + self.new) * self.sections

    @property
    def seats(self) -> int:
        return math.ceil(self.students / self.sections)

    @property
    def items(self) -> int:
        return self.students * self.new

    def course(self, student: int, slot: int) -> int:
        """The course of slot `slot` of the run's student number `student` (0-based)."""
        return self.first_course + slot * self.sections + student % self.sections

    def wrk_args(self) -> list[str]:
        return [
            str(self.first_course),
            str(self.sections),
            str(self.prefilled),
            str(self.first_student),
            str(self.students),
            str(self.new),
        ]


@dataclass(frozen=True)
class RushTerm:
    """rush: a term of its own with `sections` hot sections and `students` to rush them.

    Courses first_course .. + sections - 1 (rush_meetings), students
    first_student .. + students - 1; nobody enrolled or waiting before the
    run. bench/scenarios.lua picks students and sections at random.
    """

    term: int
    first_course: int
    first_student: int
    sections: int = RUSH_SECTIONS
    students: int = RUSH_STUDENTS

    def wrk_args(self) -> list[str]:
        return [
            str(self.first_course),
            str(self.sections),
            str(self.first_student),
            str(self.students),
        ]


# What one run works on.
Runs = HotCourse | DropCourses | BulkCourses | QueueCourse | RulesCourses | RushTerm


def plan_runs(
    sizes: Sizes,
    scenarios: Iterable[str],
    servers: Iterable[str],
    rounds: int,
    *,
    hot_enrolled: int,
    warmup_share: float,
    seconds: float = 10,
) -> dict[RunKey, Runs]:
    """The courses of every run of the scenarios that need their own, ids after the loaded ones.

    Each hot-course run may enroll every reserved student but the last
    `hot_enrolled`, who are in hot-course-prefilled's course beforehand. A
    measured drop-promote run may drop up to half the reserved students'
    worth of enrollments (the other half waits), a warm-up run
    `warmup_share` of that (its seconds over the measured ones); 0 means no
    warm-up runs. A bulk run (service only) gets courses for BULK_RATE
    requests a second over its `seconds` (its share of them, warming up);
    a bulk-rules run the same, up to BULK_RULES_PASSES passes. An
    enroll-rules run gets students for RULES_RATE requests a second. A rush
    run (service only) gets RUSH_SECTIONS sections. The runs of the rules
    scenarios each get a term of their own, ids from 1. A queue run
    (service only, never warmed up) gets one QueueCourse.
    """
    plan: dict[RunKey, Runs] = {}
    first_student = sizes.students + 1
    full_set = sizes.reserved // (2 * DROP_SEATS)
    phases = (True, False) if warmup_share > 0 else (False,)
    course = sizes.courses + 1
    term = 1
    own = (*HOT_SCENARIOS, DROP_SCENARIO, BULK_SCENARIO, QUEUE_SCENARIO, *RULES_SCENARIOS)
    service_only = (BULK_SCENARIO, BULK_RULES_SCENARIO, RUSH_SCENARIO)
    for scenario in scenarios:
        if scenario not in own:
            continue
        for round_ in range(rounds):
            if scenario == QUEUE_SCENARIO:
                plan[scenario, "service", round_, False] = QueueCourse(course, first_student)
                course += 1
                continue
            for server in servers:
                if scenario in service_only and server != "service":
                    continue
                for warmup in phases:
                    key = (scenario, server, round_, warmup)
                    share = min(warmup_share, 1) if warmup else 1
                    if scenario == BULK_SCENARIO:
                        courses = max(1, math.ceil(BULK_RATE * seconds * share))
                        plan[key] = BulkCourses(course, courses, first_student, sizes.reserved)
                        course += courses
                        continue
                    if scenario == BULK_RULES_SCENARIO:
                        students = sizes.reserved // BULK_ITEMS * BULK_ITEMS
                        passes = BULK_RULES_PASSES * (students // BULK_ITEMS)
                        courses = max(1, min(math.ceil(BULK_RATE * seconds * share), passes))
                        plan[key] = BulkCourses(course, courses, first_student, students, term=term)
                        course += courses
                        term += 1
                        continue
                    if scenario == RULES_SCENARIO:
                        students = math.ceil(RULES_RATE * seconds * share / RULES_NEW)
                        runs = RulesCourses(
                            term, course, first_student, max(1, min(students, sizes.reserved))
                        )
                        plan[key] = runs
                        course += runs.courses
                        term += 1
                        continue
                    if scenario == RUSH_SCENARIO:
                        plan[key] = RushTerm(term, course, first_student)
                        course += RUSH_SECTIONS
                        term += 1
                        continue
                    if scenario == DROP_SCENARIO:
                        courses = max(1, math.ceil(full_set * share))
                        plan[key] = DropCourses(course, courses, first_student)
                        course += courses
                        continue
                    prefilled = scenario == "hot-course-prefilled" and not warmup
                    plan[key] = HotCourse(
                        course,
                        first_student,
                        sizes.reserved - hot_enrolled,
                        hot_enrolled if prefilled else 0,
                    )
                    course += 1
    return plan


def _terms(plan: dict[RunKey, Runs], now: datetime) -> Iterator[tuple]:
    """id, code, title, starts_on, ends_on, registration_opens_at,
    registration_closes_at, drop_deadline, max_credits."""
    starts_on = (now + timedelta(days=30)).date()
    for runs in plan.values():
        if isinstance(runs, RulesCourses):
            limit = RULES_MAX_CREDITS
        elif isinstance(runs, BulkCourses) and runs.term is not None:
            limit = BULK_RULES_MAX_CREDITS
        elif isinstance(runs, RushTerm):
            limit = RUSH_MAX_CREDITS
        else:
            continue
        yield (
            runs.term,
            f"BENCH-{runs.term}",
            f"Bench term {runs.term}",
            starts_on,
            starts_on + timedelta(days=120),
            now - timedelta(days=1),
            now + timedelta(days=30),
            now + timedelta(days=30),
            limit,
        )


def _run_courses(plan: dict[RunKey, Runs]) -> Iterator[tuple]:
    """id, code, title, capacity, waitlist_capacity, term_id, credits, meetings, prerequisites."""
    no_term = (None, Decimal(0), "[]", [])
    for runs in plan.values():
        if isinstance(runs, BulkCourses) and runs.term is not None:
            for r in range(runs.courses):
                course = runs.first_course + r
                yield (
                    course,
                    f"BR{course:06d}",
                    f"Bulk course {course} with rules",
                    runs.items,
                    0,
                    runs.term,
                    RULES_CREDITS,
                    json.dumps(slot_meetings(runs.slot(r))),
                    [RULES_PREREQUISITE],
                )
            continue
        if isinstance(runs, BulkCourses):
            for course in range(runs.first_course, runs.first_course + runs.courses):
                yield course, f"B{course:06d}", f"Bulk course {course}", None, 0, *no_term
            continue
        if isinstance(runs, RulesCourses):
            for slot in range(runs.prefilled + runs.new):
                meetings = json.dumps(slot_meetings(slot))
                for section in range(runs.sections):
                    course = runs.course(section, slot)
                    yield (
                        course,
                        f"R{course:06d}",
                        f"Section {section} of slot {slot}",
                        runs.seats,
                        0,
                        runs.term,
                        RULES_CREDITS,
                        meetings,
                        [RULES_PREREQUISITE],
                    )
            continue
        if isinstance(runs, RushTerm):
            for section in range(runs.sections):
                course = runs.first_course + section
                required = section % RUSH_PREREQUISITE_EVERY == RUSH_PREREQUISITE_EVERY - 1
                yield (
                    course,
                    f"S{course:06d}",
                    f"Hot section {section}",
                    RUSH_SEATS,
                    RUSH_WAITLIST,
                    runs.term,
                    RUSH_CREDITS,
                    json.dumps(rush_meetings(section)),
                    [RUSH_PREREQUISITE] if required else [],
                )
            continue
        if isinstance(runs, HotCourse):
            yield (
                runs.course,
                f"H{runs.course:06d}",
                f"Hot course {runs.course}",
                None,
                0,
                *no_term,
            )
            continue
        if isinstance(runs, QueueCourse):
            # As many may wait as the database allows (courses_waitlist_capacity_check).
            yield (
                runs.course,
                f"Q{runs.course:06d}",
                f"Queue {runs.course}",
                runs.seats,
                100_000,
                *no_term,
            )
            continue
        for course in range(runs.first_course, runs.first_course + runs.courses):
            yield (
                course,
                f"F{course:06d}",
                f"Full course {course}",
                runs.seats,
                runs.seats,
                *no_term,
            )


def _run_enrollments(plan: dict[RunKey, Runs]) -> Iterator[tuple[int, int]]:
    for runs in plan.values():
        if isinstance(runs, HotCourse):
            first = runs.first_student + runs.students
            for student in range(first, first + runs.enrolled):
                yield student, runs.course
        elif isinstance(runs, QueueCourse):
            for student in range(runs.first_student, runs.first_waiting):
                yield student, runs.course
        elif isinstance(runs, RulesCourses):
            for s in range(runs.students):
                for slot in range(runs.prefilled):
                    yield runs.first_student + s, runs.course(s, slot)
        elif isinstance(runs, DropCourses):
            for i in range(runs.courses):
                for rank in range(runs.seats):
                    yield runs.seated(i, rank), runs.first_course + i


def _student_terms(plan: dict[RunKey, Runs], now: datetime) -> Iterator[tuple]:
    """student_id, term_id, registration_opens_at, max_credits, credits (0: counted after).

    enroll-rules' students hold a time ticket (opened before the term's
    opening); every RUSH_OWN_LIMIT_EVERY-th rush student a limit of their own.
    """
    for runs in plan.values():
        if isinstance(runs, RulesCourses):
            ticket = now - timedelta(days=2)
            for student in range(runs.first_student, runs.first_student + runs.students):
                yield student, runs.term, ticket, None, Decimal(0)
        elif isinstance(runs, RushTerm):
            for s in range(0, runs.students, RUSH_OWN_LIMIT_EVERY):
                yield runs.first_student + s, runs.term, None, RUSH_OWN_LIMIT, Decimal(0)


def _completions(sizes: Sizes, plan: dict[RunKey, Runs]) -> Iterator[tuple[int, str]]:
    """student_id, code: what the rules scenarios' students have completed.

    RULES_PREREQUISITE for every reserved student (bulk-rules goes through
    them all); RUSH_PREREQUISITE for the rush students but every
    RUSH_MISSING_EVERY-th.
    """
    first = sizes.students + 1
    if any(isinstance(r, RulesCourses | BulkCourses) and r.term for r in plan.values()):
        for student in range(first, first + sizes.reserved):
            yield student, RULES_PREREQUISITE
    rush = max((r.students for r in plan.values() if isinstance(r, RushTerm)), default=0)
    for s in range(rush):
        if s % RUSH_MISSING_EVERY != 0:
            yield first + s, RUSH_PREREQUISITE


def _run_waitlists(plan: dict[RunKey, Runs]) -> Iterator[tuple[int, int]]:
    """Each queue in order: the first row of a course is its head."""
    for runs in plan.values():
        if isinstance(runs, DropCourses):
            for i in range(runs.courses):
                for place in range(runs.seats):
                    yield runs.waiting(i, place), runs.first_course + i
        if isinstance(runs, QueueCourse):
            for student in range(runs.first_waiting, runs.first_single):
                yield student, runs.course


async def prepare_runs(url: str, sizes: Sizes, plan: dict[RunKey, Runs]) -> None:
    """Remove the courses and terms earlier invocations' runs used up; build `plan`'s."""
    conn = await asyncpg.connect(url)
    try:
        without_triggers = await _skip_triggers(conn)
        started = time.perf_counter()
        async with conn.transaction():
            # Queues first: with the triggers on, deleting a seat promotes.
            for statement in (
                "delete from course_waitlist where course_id > $1",
                "delete from student_courses where course_id > $1",
            ):
                await conn.execute(statement, sizes.courses)
            status = await conn.execute("delete from courses where id > $1", sizes.courses)
            removed = int(status.split()[-1])
            if removed:
                print(f"  removed the {removed:,} courses of earlier runs")
            # Every term is a run's (the loaded courses have none).
            await conn.execute("delete from student_terms")
            await conn.execute("delete from terms")
            await conn.execute(
                "delete from student_completions where student_id > $1", sizes.students
            )
            now = await conn.fetchval("select now()")
            copied = {}
            for table, columns, rows in (
                (
                    "terms",
                    [
                        "id",
                        "code",
                        "title",
                        "starts_on",
                        "ends_on",
                        "registration_opens_at",
                        "registration_closes_at",
                        "drop_deadline",
                        "max_credits",
                    ],
                    _terms(plan, now),
                ),
                (
                    "courses",
                    [
                        "id",
                        "code",
                        "title",
                        "capacity",
                        "waitlist_capacity",
                        "term_id",
                        "credits",
                        "meetings",
                        "prerequisites",
                    ],
                    _run_courses(plan),
                ),
                ("student_completions", ["student_id", "code"], _completions(sizes, plan)),
                # Before the seats: with the triggers on, those add their credits.
                (
                    "student_terms",
                    ["student_id", "term_id", "registration_opens_at", "max_credits", "credits"],
                    _student_terms(plan, now),
                ),
                ("student_courses", ["student_id", "course_id"], _run_enrollments(plan)),
                # After the seats: a student may only wait for a full course.
                ("course_waitlist", ["student_id", "course_id"], _run_waitlists(plan)),
            ):
                status = await conn.copy_records_to_table(table, records=rows, columns=columns)
                copied[table] = int(status.split()[-1])
            if without_triggers:
                await _count_seats(conn, sizes.courses + 1)
                await _count_credits(conn)
                await _meeting_times(conn, sizes.courses + 1)
                await conn.execute("select recount_rows()")
            await conn.execute(
                "select setval(pg_get_serial_sequence('courses', 'id'), max(id)) from courses"
            )
            if copied["terms"]:
                await conn.execute(
                    "select setval(pg_get_serial_sequence('terms', 'id'), max(id)) from terms"
                )
        if plan:
            print(
                f"  runs' courses: {copied['courses']:,} courses, "
                f"{copied['student_courses']:,} enrollments, "
                f"{copied['course_waitlist']:,} waiting, {copied['terms']:,} terms, "
                f"{copied['student_completions']:,} completions, "
                f"in {time.perf_counter() - started:.1f} s"
            )
        if removed or plan:
            await conn.execute(
                "vacuum analyze courses, student_courses, course_waitlist, terms, student_terms,"
                " student_completions"
            )
    finally:
        await conn.close()


async def _count_credits(conn: asyncpg.Connection) -> None:
    """Set student_terms.credits from the enrollments (what counts.sql keeps).

    For rows copied with credits 0 while the triggers were off, each of
    which `_student_terms` gave every student enrolled in a course of a term.
    """
    await conn.execute(
        """
        update student_terms st
        set credits = s.credits
        from (
            select e.student_id, c.term_id, sum(c.credits) as credits
            from student_courses e join courses c on c.id = e.course_id
            where c.term_id is not null
            group by e.student_id, c.term_id
        ) s
        where st.student_id = s.student_id and st.term_id = s.term_id
        """
    )


async def _meeting_times(conn: asyncpg.Connection, first_course: int) -> None:
    """Set courses.meeting_times from id `first_course` on (what the trigger
    courses_meeting_times keeps), for courses copied while the triggers were off."""
    await conn.execute(
        "update courses set meeting_times = week_minutes(meetings)"
        " where id >= $1 and meetings <> '[]'",
        first_course,
    )


async def count_enrollments(url: str, runs: BulkCourses) -> int:
    """The enrollments in a bulk run's courses."""
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(
            "select count(*) from student_courses where course_id between $1 and $2",
            runs.first_course,
            runs.first_course + runs.courses - 1,
        )
    finally:
        await conn.close()


# rush's invariants (spec: Waitlists, and "Terms and the rules of
# registration"), each a count of what breaks it in the run's term; all
# hold whatever the order of the concurrent requests.
RUSH_INVARIANTS = {
    "overlapping enrollments": """
        select count(*)
        from student_courses a
        join courses x on x.id = a.course_id
        join student_courses b on b.student_id = a.student_id and b.course_id > a.course_id
        join courses y on y.id = b.course_id
        where x.term_id = $1 and y.term_id = $1
          and a.overrides is null and b.overrides is null
          and meetings_overlap(x.meetings, y.meetings)
    """,
    "students over their credit limit": """
        select count(*)
        from (
            select e.student_id, sum(c.credits) as credits,
                   bool_or(e.overrides is not null) as overridden
            from student_courses e join courses c on c.id = e.course_id
            where c.term_id = $1
            group by e.student_id
        ) s
        join terms t on t.id = $1
        left join student_terms st on st.student_id = s.student_id and st.term_id = $1
        where not s.overridden and s.credits > coalesce(st.max_credits, t.max_credits)
    """,
    "kept credits unequal to the enrollments'": """
        select count(*)
        from (
            select e.student_id, sum(c.credits) as credits
            from student_courses e join courses c on c.id = e.course_id
            where c.term_id = $1
            group by e.student_id
        ) s
        full join (select student_id, credits from student_terms where term_id = $1) st
            using (student_id)
        where coalesce(s.credits, 0) <> coalesce(st.credits, 0)
    """,
    "courses with wrong seat counts": """
        select count(*) from courses c
        where c.term_id = $1
          and (c.enrolled > c.capacity or c.waitlisted > c.waitlist_capacity
               or c.enrolled <> (select count(*) from student_courses e where e.course_id = c.id)
               or c.waitlisted <> (select count(*) from course_waitlist w
                                   where w.course_id = c.id))
    """,
    "students both enrolled and waiting": """
        select count(*)
        from student_courses e
        join course_waitlist w on w.student_id = e.student_id and w.course_id = e.course_id
        join courses c on c.id = e.course_id
        where c.term_id = $1
    """,
    "free seats while a student who may take one waits": """
        select count(*) from courses c
        where c.term_id = $1 and c.enrolled < c.capacity
          and exists (
              select 1 from course_waitlist w
              where w.course_id = c.id
                and (select b.rule
                     from registration_blocker(w.student_id, c.id, w.overrides, false) b) is null
          )
    """,
}


async def rush_violations(url: str, runs: RushTerm) -> dict[str, int]:
    """RUSH_INVARIANTS in the run's term: what breaks each (0 each when all hold)."""
    conn = await asyncpg.connect(url)
    try:
        return {
            name: await conn.fetchval(query, runs.term) for name, query in RUSH_INVARIANTS.items()
        }
    finally:
        await conn.close()
