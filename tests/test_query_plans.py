"""Every named query in sql/ reaches students, courses and student_courses through an index.

A sequential scan is invisible on the few rows of a functional test and
turns into a full read of the table per request in production. So the
queries are EXPLAINed on a database big enough for the planner to care:
20,000 students, 5,000 courses and 100,000 enrollments, analyzed.

asyncpg prepares every statement; after five executions PostgreSQL may
switch a prepared statement to a generic plan, made without knowing the
parameters. Both plans are checked: `PREPARE`, then `EXPLAIN EXECUTE` with
plan_cache_mode forcing a custom and then a generic plan.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from bench import dataset
from service.sql import QUERIES, Named

# Big enough that a sequential scan costs more than an index for one row or one
# page. A small catalog is not: up to about 1,000 courses (at 5 enrollments per
# student) the planner rightly joins list_student_courses' five rows to courses
# by hashing the whole table, a few pages, instead of five index lookups.
SIZES = dataset.Sizes(students=20_000, courses=5_000, per_student=5, reserved=0)
WATCHED = {
    "students",
    "courses",
    "student_courses",
    "course_waitlist",
    "events",
    "idempotency_keys",
    "tombstones",
}
# Not watched: idempotency_scope_counts, 16 rows a token (a page or two),
# which the planner rightly reads whole.
PLAN_MODES = ["force_custom_plan", "force_generic_plan"]

# The OneRoster provider's statements (sql/oneroster.sql): a page of 100 in
# the middle, no predicates beyond the shape's (the shapes each serve one
# kind of filter), a delta of the last two hours (the students changed then:
# their modified_at spreads over 1,000 hours, see load()).
_PAGE = {
    "base": "/ims/oneroster/rostering/v1p2/",
    "school": "school",
    "fields": [],
    "ops": [],
    "vals": [],
    "any_of": False,
    "picked": None,
    "lim": 100,
    "off": 900,
}
_SINCE = "2026-12-01T10:00:00+00:00"  # load() sets "now" to 2026-12-01T12:00:00Z
_SORTED = {
    "sid": None,
    "since": None,
    "inclusive": False,
    "sort": "familyName",
    "descending": False,
}
ONEROSTER_ARGS: dict[str, dict[str, Any]] = {
    **{
        name: {k: _PAGE[k] for k in ("base", "school", "picked", "lim", "off")}
        for name in ("users", "classes", "courses", "enrollments")
    },
    **{
        f"{name}_by_sourced_id": {
            **_PAGE,
            "off": 0,
            "sid": "sourced-4242",
            "fields": ["sourcedId"],
            "ops": ["="],
            "vals": ["sourced-4242"],
            "since": None,
            "inclusive": False,
        }
        for name in ("users", "classes", "courses", "enrollments")
    },
    **{
        f"{name}_since": {**_PAGE, "off": 0, "since": _SINCE, "inclusive": False}
        for name in ("users", "classes", "courses", "enrollments")
    },
    # Sorted: every match read (a delta's, here), then sorted.
    **{
        f"{name}_sorted": {**_PAGE, **_SORTED, "sort": "sourcedId", "since": _SINCE}
        for name in ("users", "classes", "courses", "enrollments")
    },
    "terms": {
        **{k: v for k, v in _PAGE.items() if k not in ("base", "school")},
        **_SORTED,
        "sort": None,
        "off": 0,
    },
    **{
        name: {**_PAGE, "off": 0, "owner": "sourced-42", "sort": None, "descending": False}
        for name in ("class_students", "student_classes", "term_classes")
    },
    "orgs": {
        "school": "school",
        "name": "School",
        "modified_at": _SINCE,
        "fields": ["type"],
        "ops": ["="],
        "vals": ["school"],
        "any_of": False,
        "picked": None,
        "off": 0,
    },
}

# "<file>.<name>" of every named query in sql/, found by the loader: a new query is covered.
NAMED = sorted(
    f"{file}.{name}" for file, queries in vars(QUERIES).items() for name in vars(queries)
)

# Realistic arguments for each named query, in the data loaded below (ids
# 1..20,000 and 1..5,000, five courses per student, the even courses in
# terms 1..10). A query missing here
# fails test_every_named_query_has_example_arguments: add it when you add the query.
# A query with :name parameters takes them by name.
EXAMPLE_ARGS: dict[str, tuple[Any, ...] | dict[str, Any]] = {
    "students.get_student": (4_242,),
    "students.list_students": (9_000, 51),  # a page in the middle; the handler asks limit + 1
    "students.list_students_by_email": (0, "STUDENT4242@bench.example", 51, None),
    "students.list_students_by_sourced_id": {
        "after": 0,
        "sourced_id": "sis-4242",
        "email": "STUDENT4242@bench.example",
        "q": "QJKRZ",
    },
    "students.create_student": {
        "name": "Ada Lovelace",
        "email": "ada@example.org",
        "sourced_id": "sis-ada",
        "actor": "registrar",
    },
    "students.update_student": (4_242, "Ada King", None, ["1234"], "registrar"),  # If-Match
    "students.delete_student": (4_242, None, "registrar"),
    "courses.get_course": (42,),
    "courses.list_courses": (200, 51),
    "courses.list_courses_by_code": (0, "c000042", 51, "urse", 3),
    "courses.list_courses_by_term": (200, 3, 51),
    "courses.list_courses_by_sourced_id": {
        "after": 0,
        "sourced_id": "sis-c42",
        "code": "c000042",
        "q": "urse",
        "term_id": 3,
    },
    "courses.create_course": {
        "code": "CS-101",
        "title": "Algorithms",
        "capacity": 30,
        "waitlist_capacity": 0,
        "term_id": 3,
        "credits": 4.5,
        "meetings": "[]",
        "prerequisites": "{}",
        "sourced_id": None,
        "actor": "registrar",
    },
    # credits changed: lock_course_rules() (not executed by EXPLAIN)
    "courses.update_course": (
        *(42, None, "Advanced Algorithms", True, 400, None, None, "registrar"),
        *(True, 3, 4.5, '[{"days": ["mon"], "starts": "09:00", "ends": "10:00"}]', "{CS-1}"),
    ),
    "courses.delete_course": (42, ["1234", "5678"], "registrar"),  # If-Match with two tags
    "terms.get_term": (7,),
    "terms.list_terms": (3, 51),
    "terms.list_terms_by_code": (0, "2027-spring", 51),
    "terms.list_terms_by_sourced_id": (0, "sis-t7", None),
    "terms.create_term": {
        "code": "2028-SPRING",
        "title": "Spring 2028",
        "starts_on": "2028-01-10",
        "ends_on": "2028-05-05",
        "registration_opens_at": "2027-11-01T09:00:00+00:00",
        "registration_closes_at": None,
        "drop_deadline": None,
        "max_credits": "18.5",
        "sourced_id": "sis-2028-spring",
        "actor": "registrar",
    },
    "terms.lock_term_waits": (7,),
    "terms.update_term": {
        "term_id": 7,
        "code": None,
        "title": "Spring term",
        "starts_on": None,
        "ends_on": None,
        "set_registration_opens_at": False,
        "registration_opens_at": None,
        "set_registration_closes_at": True,
        "registration_closes_at": None,
        "set_drop_deadline": False,
        "drop_deadline": None,
        "set_max_credits": True,
        "max_credits": "21",
        "if_match": ["1234"],
        "actor": "registrar",
    },
    "terms.delete_term": (7, None, "registrar"),
    "enrollments.enroll": {
        "student_id": 4_242,
        "course_id": 42,
        "waitlist": True,
        "overrides": None,
        "sourced_id": None,
        "actor": "registrar",
    },
    "enrollments.get_enrollment": (4_242, 42),
    "enrollments.list_student_courses": (4_242, 0, 51),
    "enrollments.list_course_students": (42, 9_000, 51),
    "enrollments.delete_enrollment": (4_242, 42, None, "registrar"),
    "waitlist.get_entry": (4_242, 42),
    "waitlist.list_student_waitlist": (4_242, 0, 51),
    "waitlist.list_course_waitlist": (42, 9_000, 51),  # a page in the middle of the queue
    "waitlist.leave": (4_242, 42, "registrar"),
    "holds.get_hold": (4_242, 42),
    "holds.list_student_holds": (4_242, 0, 51),
    "holds.create_hold": (4_242, "Unpaid fees", "registrar"),
    "holds.delete_hold": (4_242, 42),
    "completions.get_completion": (4_242, 42),
    "completions.list_student_completions": (4_242, 0, 51),
    "completions.create_completion": (4_242, "MATH101", None),
    "completions.delete_completion": (4_242, 42, "registrar"),
    "student_terms.get_student_term": (4_242, 1),
    "student_terms.put_student_term": (4_242, 1, "2027-01-04T08:00:00+00:00", "18"),
    "promotions.lock_student_waits": (4_242, "registrar", None),
    # Function calls (sql/functions/batches.sql): their statements are in IMPLICIT below.
    # Arrays as PostgreSQL's literals: one item each.
    "batches.enroll": {
        "drops": "{f}",
        "student_ids": "{4242}",
        "student_emails": "{NULL}",
        "student_sourced_ids": "{NULL}",
        "course_ids": "{42}",
        "course_terms": "{NULL}",
        "course_codes": "{NULL}",
        "course_sourced_ids": "{NULL}",
        "waitlists": "{f}",
        "overrides": "{NULL}",
        "sourced_ids": "{NULL}",
        "actor": "registrar",
    },
    "batches.students": {
        "names": ["Ada"],
        "emails": ["ada@example.org"],
        "sourced_ids": ["sis-ada"],
        "actor": "registrar",
    },
    "batches.courses": {
        "codes": ["CS-101"],
        "titles": ["Algorithms"],
        "set_capacities": "{t}",
        "capacities": "{30}",
        "waitlist_capacities": "{NULL}",
        "term_ids": "{3}",
        "credits": "{4.5}",
        "meetings": "{NULL}",
        "prerequisites": '{"[\\"CS-1\\"]"}',
        "sourced_ids": "{NULL}",
        "actor": "registrar",
    },
    "batches.terms": {
        "codes": ["2027-SPRING"],
        "titles": ["Spring"],
        "starts_on": "{2027-01-11}",
        "ends_on": "{2027-05-07}",
        "set_registration_opens_at": "{f}",
        "registration_opens_at": "{NULL}",
        "set_registration_closes_at": "{f}",
        "registration_closes_at": "{NULL}",
        "set_drop_deadline": "{f}",
        "drop_deadline": "{NULL}",
        "set_max_credits": "{t}",
        "max_credits": "{18}",
        "sourced_ids": "{NULL}",
        "actor": "registrar",
    },
    "events.list_events": (0, None, 101),
    "events.list_student_events": (0, None, 101, 4_242, None),
    "events.list_course_events": (0, ["enrollment.created"], 101, 42),
    "events.events_since": (4_242 << 20, 1000),
    "events.purge_events": ("2020-01-01T00:00:00+00:00",),
    "idempotency.lock_key": (-4_242_424_242,),
    # a key that is not there: the scope's kept count is read (its 16 rows)
    "idempotency.get_answer": ("registrar", "key-new", "24 hours", 100_000),
    "idempotency.first_expiry": ("registrar", "24 hours"),
    "idempotency.store_answer": (
        "key-new",
        "\\x00",
        201,
        "application/json",
        "/students/1",
        "{}",
        "24 hours",
        "registrar",
        False,
        ["STUDENT4242@bench.example"],  # the emails the answer carries
        4_242,  # the student the path names
    ),
    "idempotency.expire_keys": ("24 hours",),  # of 100,000 keys, a tenth expired
    "search.narrows": ("QJKRZ",),
    # Function calls (sql/functions/search.sql): their statements are in IMPLICIT below.
    # A tag's five letters (bench/dataset.py): a few students of the 20,000.
    "search.students": (0, "QJKRZ", 51, 200, "{}", 100_000),
    "search.courses": (0, "c00421", 51, 200, "{}", 100_000, 3),  # C004210 .. C004219, of term 3
    "search.heavy_trigrams": (5_000,),
    "health.ping": (),
    "health.missing_tables": (["students", "courses", "student_courses"],),
    # The OneRoster provider (sql/oneroster.sql): see ONEROSTER below.
    **{f"oneroster.{name}": args for name, args in ONEROSTER_ARGS.items()},
}

# Statements the database runs with a generic plan only, whatever the
# session's plan_cache_mode: those of search_student_page() and
# search_course_page() (sql/functions/search.sql), whose SET clause forces it (service/repositories/search.py). Planned with
# the values, a rare text among the 5,000 courses is rightly read by a scan
# stopped early.
GENERIC_ONLY = {
    "search: the students' matches": ["force_generic_plan"],
    "search: the students' walk": ["force_generic_plan"],
    "search: the students' walk end": ["force_generic_plan"],
    "search: the courses' matches": ["force_generic_plan"],
    "search: the courses' walk": ["force_generic_plan"],
    "search: the courses' walk end": ["force_generic_plan"],
    "search: a term's courses' walk": ["force_generic_plan"],
    "search: a term's courses' walk end": ["force_generic_plan"],
}
# Settings a function changes around a statement, planned under them: the
# index step of search_student_page() and search_course_page(), with index and
# sequential scans off so that only the trigram indexes' bitmap serves it.
SETTINGS = {
    "search: the students' matches": ("enable_indexscan = off", "enable_seqscan = off"),
    "search: the courses' matches": ("enable_indexscan = off", "enable_seqscan = off"),
}

# What the database runs for us and EXPLAIN of the named query does not show:
# the statements of the functions and triggers of sql/functions (the counts,
# enroll_run(), drop_enrollment(), promote_waitlist(), the idempotency keys'
# count and redaction) as PL/pgSQL prepares them, and those of the foreign
# keys' triggers, which check every new enrollment and cascade every delete.
IMPLICIT: dict[str, tuple[str, tuple[Any, ...]]] = {
    # student_courses_count_delete, course_waitlist_count_insert, and
    # student_courses_inserted for a statement into one course: the counters
    "seat trigger: count the seat": (
        "update courses set enrolled = enrolled + 1 where id = $1",
        (42,),
    ),
    # student_courses_inserted (trigger student_courses_counted_inserted): one
    # count per course of a statement's new rows (its transition table, here
    # an unnest), and none of them waiting
    "seat trigger: the statement's courses": (
        "select i.course_id, count(*)::integer as added"
        " from unnest($1::bigint[], $2::bigint[]) as i (student_id, course_id)"
        " group by i.course_id order by i.course_id",
        ("{4242,4243}", "{42,42}"),
    ),
    "seat trigger: count the seats": (
        "update courses set enrolled = enrolled + $2 where id = $1",
        (42, 2),
    ),
    "seat trigger: the students are not waiting": (
        "select i.student_id, i.course_id"
        " from unnest($1::bigint[], $2::bigint[]) as i (student_id, course_id)"
        " join course_waitlist w on w.student_id = i.student_id and w.course_id = i.course_id"
        " limit 1",
        ("{4242,4243}", "{42,42}"),
    ),
    # course_waitlist_check_insert and promote_waitlist: lock the course row
    "waitlist trigger: lock the course": (
        "select capacity, enrolled from courses where id = $1 for no key update",
        (42,),
    ),
    # course_waitlist_check_insert: never waiting and enrolled at once
    "waitlist trigger: the student is not enrolled": (
        "select exists (select 1 from student_courses where student_id = $1 and course_id = $2)",
        (4_242, 42),
    ),
    # promote_waitlist: the head of the queue whose students still
    # exist, as many as the seats left; their entries deleted in one statement
    "promotion: the head of the queue": (
        "select array_agg(h.student_id order by h.seq) from ("
        " select w.student_id, w.seq from course_waitlist w"
        " join students s on s.id = w.student_id"
        " where w.course_id = $1 order by w.seq limit $2) h",
        (42, 150),
    ),
    "promotion: leave the queue": (
        "delete from course_waitlist w using unnest($2::bigint[]) as h (student_id)"
        " where w.course_id = $1 and w.student_id = h.student_id",
        (42, "{4242,4243}"),
    ),
    # course_waitlist_deleted (trigger course_waitlist_counted_deleted): one
    # count per course of a statement's departures (its transition table, here an unnest)
    "waitlist trigger: the statement's courses": (
        "select d.course_id, count(*)::integer as gone"
        " from unnest($1::bigint[], $2::bigint[]) as d (student_id, course_id)"
        " group by d.course_id order by d.course_id",
        ("{4242,4243}", "{42,42}"),
    ),
    "waitlist trigger: count the departures": (
        "update courses set waitlisted = waitlisted - $2 where id = $1",
        (42, 2),
    ),
    # the foreign keys' check of a new enrollment, on each side
    "foreign key: the student exists": (
        "select 1 from only students x where id = $1 for key share of x",
        (4_242,),
    ),
    "foreign key: the course exists": (
        "select 1 from only courses x where id = $1 for key share of x",
        (42,),
    ),
    # ON DELETE CASCADE from students and from courses
    "cascade: a student's enrollments": (
        "delete from only student_courses where student_id = $1",
        (4_242,),
    ),
    "cascade: a course's enrollments": (
        "delete from only student_courses where course_id = $1",
        (42,),
    ),
    "cascade: a student's waitlist entries": (
        "delete from only course_waitlist where student_id = $1",
        (4_242,),
    ),
    "cascade: a course's waitlist": (
        "delete from only course_waitlist where course_id = $1",
        (42,),
    ),
    # the foreign key's check when a term is deleted: a course of it
    "foreign key: a term's courses": (
        "select 1 from only courses x where $1 operator(pg_catalog.=) term_id for key share of x",
        (7,),
    ),
    # students_redact_idempotent_answers (redact_idempotent_answers()): the
    # answers naming the deleted students (the trigger's transition table, here an unnest)
    "redaction: the answers naming deleted students": (
        "update idempotency_keys set body = null, compressed = false, student_ids = null"
        " where student_ids && array(select id from unnest($1::bigint[]) as gone (id))",
        ("{4242}",),
    ),
    # idempotency_keys_counted_inserted and _deleted (count_idempotency_keys()):
    # one count per scope and shard of a statement's keys (the transition table, here an
    # unnest; $3 is 1 for an insert, -1 for a delete)
    "key count trigger: count the statement's keys": (
        "insert into idempotency_scope_counts as c (scope, shard, stored)"
        " select changed.scope, (hashtext(changed.key) & 15)::smallint, count(*) * $3"
        " from unnest($1::text[], $2::text[]) as changed (scope, key)"
        " group by 1, 2 order by 1, 2"
        " on conflict (scope, shard) do update set stored = c.stored + excluded.stored",
        ("{registrar,registrar,importer}", "{key-2,key-4,key-1}", -1),
    ),
    # enroll_run(), for the single enroll and a batch's runs alike: the course
    # and each student by id or by email or code (any letter case), locked.
    "batch: a student by email": (
        "select s.id from students s where fold_case(s.email) = fold_case($1) for key share",
        ("STUDENT4242@bench.example",),
    ),
    "batch: a course by code": (
        "select x.id, x.code, x.title, x.capacity, x.waitlist_capacity, x.enrolled,"
        " x.waitlisted, x.created_at from courses x"
        " where fold_case(x.code) = fold_case($1) for no key update",
        ("c000042",),
    ),
    "batch: a student by id": (
        "select s.id from students s where s.id = $1 for key share",
        (4_242,),
    ),
    # enroll_run(): the place of a student waiting from before the run
    "enroll: a place in the queue": (
        "select count(*) from course_waitlist a where a.course_id = $1 and a.seq <= $2",
        (42, 150),
    ),
    # enroll_run(): a run's students, each locked, and their enrollments in
    # the course and its queue (its `items` and `held`)
    "enroll: a run's students": (
        "select l.k, l.student, sc.enrolled_at, w.seq from ("
        " select t.k, (select s.id from students s where s.id = t.sid for key share) as student"
        " from unnest($1::bigint[]) with ordinality as t (sid, k)) l"
        " left join student_courses sc on sc.student_id = l.student and sc.course_id = $2"
        " left join course_waitlist w on w.student_id = l.student and w.course_id = $2",
        ("{4242,4243}", 42),
    ),
    # batch_enroll(): the students of a run named by email
    "batch: students by email": (
        "select array_agg(coalesce(t.sid, ("
        " select s.id from students s where fold_case(s.email) = fold_case(t.email)"
        " )) order by t.k)"
        " from unnest($1::bigint[], $2::text[]) with ordinality as t (sid, email, k)",
        ("{4242,NULL}", "{NULL,STUDENT4243@bench.example}"),
    ),
    # batch_enroll(): a student and a course named by sourced_id; enroll_run():
    # a sourced_id another enrollment has
    "batch: a student by sourced_id": (
        "select s.id from students s where s.sourced_id = $1",
        ("sis-4242",),
    ),
    "batch: a course by sourced_id": (
        "select x.id from courses x where x.sourced_id = $1",
        ("sis-c42",),
    ),
    "enroll: a sourced_id taken": (
        "select exists (select from student_courses x where x.sourced_id = $1)",
        ("sis-e1",),
    ),
    # batch_students(), batch_courses(): another record's email or code, for
    # an item matched by sourced_id
    "batch: another student's email": (
        "select exists (select from students s"
        " where fold_case(s.email) = fold_case($1) and s.id <> $2)",
        ("STUDENT4242@bench.example", 4_243),
    ),
    "batch: another course's code in a term": (
        "select exists (select from courses x where fold_case(x.code) = fold_case($1)"
        " and coalesce(x.term_id, 0) = coalesce($2, 0) and x.id <> $3)",
        ("c000042", 3, 43),
    ),
    "batch: the courses of sourced_ids": (
        "select x.id from courses x"
        " where x.sourced_id in (select t.named from unnest($1::text[]) as t (named))",
        ("{sis-c42,sis-c43}",),
    ),
    # drop_enrollment()
    "drop: the enrollment": (
        "delete from student_courses sc where sc.student_id = $1 and sc.course_id = $2",
        (4_242, 42),
    ),
    # search_student_page() and search_course_page(): the index step (a rare text), the walk
    # in id order and its end (a text of heavy trigrams). $2, $3: the
    # pattern search_pattern() makes of the text.
    "search: the students' matches": (
        "select s from students s"
        " where (fold_case(s.name) like $2 or fold_case(s.email) like $2) and s.id + 0 > $1"
        " limit 2001",
        (0, "%qjkrz%"),
    ),
    "search: the students' walk": (
        "select w.* from (select * from students s where s.id > $1 order by s.id limit $2) w"
        " where search_fold(w.name) like $3 or search_fold(w.email) like $3"
        " order by w.id limit $4",
        (9_000, 200, "%student 1%", 51),
    ),
    "search: the students' walk end": (
        "select count(*), max(w.id)"
        " from (select s.id from students s where s.id > $1 order by s.id limit $2) w",
        (9_000, 200),
    ),
    "search: the courses' matches": (
        "select c from courses c"
        " where (fold_case(c.code) like $2 or fold_case(c.title) like $2) and c.id + 0 > $1"
        " and ($3::bigint is null or c.term_id = $3)"
        " limit 2001",
        (0, "%c00421%", 3),
    ),
    "search: the courses' walk": (
        "select w.* from (select * from courses c where c.id > $1 order by c.id limit $2) w"
        " where search_fold(w.code) like $3 or search_fold(w.title) like $3"
        " order by w.id limit $4",
        (200, 200, "%course 1%", 51),
    ),
    "search: the courses' walk end": (
        "select count(*), max(w.id)"
        " from (select c.id from courses c where c.id > $1 order by c.id limit $2) w",
        (200, 200),
    ),
    # ... with ?term_id=: the walk takes the term's next rows
    "search: a term's courses' walk": (
        "select w.* from (select * from courses c where c.term_id = $5 and c.id > $1"
        " order by c.id limit $2) w"
        " where search_fold(w.code) like $3 or search_fold(w.title) like $3"
        " order by w.id limit $4",
        (200, 200, "%course 1%", 51, 3),
    ),
    "search: a term's courses' walk end": (
        "select count(*), max(w.id) from (select c.id from courses c where c.term_id = $3"
        " and c.id > $1 order by c.id limit $2) w",
        (200, 200, 3),
    ),
    # batch_courses(): the courses its items name, by code in a term, feed-locked first,
    # then each item's course
    "batch: the courses of codes in terms": (
        "select x.id from courses x"
        " where (fold_case(x.code), coalesce(x.term_id, 0)) in ("
        " select fold_case(t.c), coalesce(t.term, 0) from unnest($1::text[], $2::bigint[])"
        " as t (c, term))",
        ("{C000042,C000043}", "{3,NULL}"),
    ),
    "batch: a course by code in a term": (
        "select x.id, x.code, x.title, x.capacity, x.waitlist_capacity, x.enrolled,"
        " x.waitlisted, x.created_at, x.term_id, x.credits, x.meetings, x.prerequisites"
        " from courses x where fold_case(x.code) = fold_case($1)"
        " and coalesce(x.term_id, 0) = coalesce($2, 0) for no key update",
        ("c000042", 3),
    ),
}


async def load(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        # Consistent by construction: skip the foreign key checks and the
        # triggers of sql/functions (counts, history, guards), which the rows
        # below do without (the test database's owner is a superuser on the
        # embedded server).
        await conn.execute("set session_replication_role = replica")
        async with conn.transaction():
            await conn.copy_records_to_table(
                "students", records=dataset.students(SIZES), columns=["id", "name", "email"]
            )
            await conn.copy_records_to_table(
                "courses", records=dataset.courses(SIZES), columns=["id", "code", "title"]
            )
            # Ten terms, the even courses in them (500 each), the odd ones in none.
            await conn.execute(
                "insert into terms (id, code, title, starts_on, ends_on) overriding system value"
                " select n, 'T' || n, 'Term ' || n, '2027-01-01', '2027-06-30'"
                " from generate_series(1, 10) n"
            )
            await conn.execute("update courses set term_id = id / 2 % 10 + 1 where id % 2 = 0")
            await conn.copy_records_to_table(
                "student_courses",
                records=dataset.enrollments(SIZES),
                columns=["student_id", "course_id"],
            )
            # Queues behind the first 100 courses, 200 students each, none of
            # them enrolled there (the enrollments go to other courses).
            await conn.execute(
                "insert into course_waitlist (student_id, course_id)"
                " select s, c from generate_series(1, 100) c, generate_series(1, 200) s"
                " where not exists (select 1 from student_courses e"
                "                   where e.student_id = s and e.course_id = c)"
            )
            # The history those rows would have left: an event per enrollment
            # and one per student and course, in transactions of ten.
            await conn.execute(
                "insert into events (id, type, at, student_id, course_id)"
                " select ((1000 + n / 10)::bigint << 20) | (n % 10 + 1), 'enrollment.created',"
                "        now() - (n || ' seconds')::interval, 1 + n % $1, 1 + n % $2"
                " from generate_series(0, $3 - 1) n",
                SIZES.students,
                SIZES.courses,
                SIZES.enrollments,
            )
            # A day of keys, 100,000, of two tokens; the oldest tenth expired.
            await conn.execute(
                "insert into idempotency_keys"
                " (scope, key, fingerprint, status, body, created_at)"
                " select case when n % 2 = 0 then 'registrar' else 'importer' end, 'key-' || n,"
                "        '\\x00', 201, '{}', now() - interval '26 hours' * (1 - n / 100000.0)"
                " from generate_series(1, 100000) n"
            )
            # For the OneRoster provider's delta queries: the students', courses'
            # and enrollments' changes spread over the 1,000 hours before
            # 2026-12-01T12:00:00Z, every 50th student and course known by a
            # sourcedId a test can name, and 20,000 deletions in those hours.
            await conn.execute(
                "update students set modified_at = '2026-12-01T12:00:00Z'::timestamptz"
                " - (id % 1000) * interval '1 hour',"
                " sourced_id = case when id % 50 = 42 then 'sourced-' || id else sourced_id end"
            )
            await conn.execute(
                "update courses set modified_at = '2026-12-01T12:00:00Z'::timestamptz"
                " - (id % 1000) * interval '1 hour',"
                " sourced_id = case when id % 50 = 42 then 'sourced-' || id else sourced_id end"
            )
            await conn.execute(
                "update student_courses set enrolled_at = '2026-12-01T12:00:00Z'::timestamptz"
                " - ((student_id + course_id) % 1000) * interval '1 hour'"
            )
            await conn.execute(
                "insert into tombstones (kind, sourced_id, deleted_at)"
                " select (array['student', 'course', 'enrollment'])[n % 3 + 1], 'gone-' || n,"
                "        '2026-12-01T12:00:00Z'::timestamptz - (n % 1000) * interval '1 hour'"
                " from generate_series(1, 20000) n"
            )
            await conn.execute(
                "select setval(pg_get_serial_sequence('students', 'id'), $1),"
                " setval(pg_get_serial_sequence('courses', 'id'), $2)",
                SIZES.students,
                SIZES.courses,
            )
        await conn.execute(
            "analyze students, courses, terms, student_courses, course_waitlist, events, tombstones,"
            " idempotency_keys, idempotency_scope_counts"
        )
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def loaded_database(pg_server, template_db) -> Iterator[str]:
    """A migrated database with SIZES rows, shared by the read-only EXPLAINs of this module.

    Nothing here executes a statement that writes: every EXPLAIN runs in a
    transaction that is rolled back, and plain EXPLAIN does not execute.
    """
    name = f"enrollment_plans_{uuid.uuid4().hex[:8]}"
    url = pg_server.url_for(name)

    async def run(sql: str) -> None:
        admin = await asyncpg.connect(pg_server.admin_url)
        try:
            await admin.execute(sql)
        finally:
            await admin.close()

    asyncio.run(run(f'create database "{name}" template "{template_db}"'))
    try:
        asyncio.run(load(url))
        yield url
    finally:
        asyncio.run(run(f'drop database if exists "{name}" with (force)'))


def literal(value: Any) -> str:
    """A constant for EXECUTE's argument list; the prepared statement gives it its type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        value = "{" + ",".join(value) + "}"
    return "'" + str(value).replace("'", "''") + "'"


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def render(plan: dict[str, Any], depth: int = 0) -> str:
    """The plan as an indented tree, for the failure message."""
    line = "  " * depth + plan["Node Type"]
    if "Relation Name" in plan:
        line += f" on {plan['Relation Name']}"
    if "Index Name" in plan:
        line += f" using {plan['Index Name']}"
    details = [f"{key}: {plan[key]}" for key in ("Index Cond", "Filter") if key in plan]
    line += f"  (rows={plan['Plan Rows']})" + "".join(f"  [{d}]" for d in details)
    return "\n".join([line, *(render(child, depth + 1) for child in plan.get("Plans", []))])


async def plans(
    url: str,
    sql: str,
    args: tuple[Any, ...],
    modes: list[str] = PLAN_MODES,
    settings: tuple[str, ...] = (),
) -> dict[str, dict[str, Any]]:
    """The plan of `sql` with `args` in each of `modes`, under `settings` (see SETTINGS)."""
    found = {}
    conn = await asyncpg.connect(url)
    try:
        for mode in modes:
            # Rolled back whatever happens: the writing statements must leave no trace
            # should an EXPLAIN option ever make them run.
            tx = conn.transaction()
            await tx.start()
            try:
                await conn.execute(f"set local plan_cache_mode = {mode}")
                for setting in settings:
                    await conn.execute(f"set local {setting}")
                await conn.execute("prepare plan_probe as " + sql)
                arguments = ", ".join(literal(a) for a in args)
                execute = f"execute plan_probe({arguments})" if args else "execute plan_probe"
                [result] = json.loads(await conn.fetchval("explain (format json) " + execute))
                await conn.execute("deallocate plan_probe")
            finally:
                await tx.rollback()
            found[mode] = result["Plan"]
    finally:
        await conn.close()
    return found


async def seq_scans(
    url: str,
    sql: str,
    args: tuple[Any, ...],
    modes: list[str] = PLAN_MODES,
    settings: tuple[str, ...] = (),
    whole: dict[str, set[str]] | None = None,
) -> list[str]:
    """One complaint per plan mode whose plan reads a watched table sequentially.

    `whole`: by plan mode, the tables a statement reads whole by design (WHOLE_READS).
    """
    complaints = []
    for mode, plan in (await plans(url, sql, args, modes, settings)).items():
        allowed = (whole or {}).get(mode, set())
        scanned = sorted(
            {
                node["Relation Name"]
                for node in nodes(plan)
                if node["Node Type"] == "Seq Scan"
                and node.get("Relation Name") in WATCHED - allowed
            }
        )
        if scanned:
            complaints.append(
                f"{mode}: Seq Scan on {', '.join(scanned)}\n{render(plan)}\n"
                f"-- arguments: {args!r}\n{sql}"
            )
    return complaints


def test_every_named_query_has_example_arguments():
    missing = sorted(set(NAMED) - set(EXAMPLE_ARGS))
    stale = sorted(set(EXAMPLE_ARGS) - set(NAMED))
    assert not missing, f"add example arguments for {missing} to EXAMPLE_ARGS"
    assert not stale, f"EXAMPLE_ARGS names queries that sql/ no longer has: {stale}"


@pytest.mark.parametrize("qualified", NAMED)
async def test_named_query_uses_indexes(loaded_database, qualified):
    file, name = qualified.split(".")
    query = getattr(getattr(QUERIES, file), name)
    assert qualified in EXAMPLE_ARGS, f"no example arguments for {qualified}"
    args = EXAMPLE_ARGS[qualified]
    if isinstance(query, Named):
        assert isinstance(args, dict), f"{qualified} takes its arguments by name"
        sql, *values = query.bind(**args)
    else:
        assert isinstance(args, tuple), f"{qualified} takes its arguments in order"
        sql, values = query, list(args)

    complaints = await seq_scans(
        loaded_database, sql, tuple(values), whole=WHOLE_READS.get(qualified)
    )

    assert not complaints, f"{qualified} reads a whole table:\n\n" + "\n\n".join(complaints)


# The OneRoster provider's statements that read a table whole by design, by
# plan mode (docs/oneroster.md):
# - a whole collection (users, classes, courses, enrollments): X-Total-Count
#   counts it; its page is a range of the primary key (ONEROSTER_INDEXES);
# - *_sorted: a sort, or a filter no index serves, reads every match; its
#   generic plan cannot know whether :sid or :since bound them (its custom
#   plans use their indexes, and PostgreSQL keeps a generic plan only when it
#   costs no more than the custom ones did);
# - classes_since's generic plan: a range with an unknown bound is a third
#   of the table by PostgreSQL's guess, and at 5,000 courses it reads them
#   whole; its custom plans, those of a delta, use courses_modified_at.
_BOTH = dict.fromkeys(PLAN_MODES)
WHOLE_READS: dict[str, dict[str, set[str]]] = {
    "oneroster.users": {mode: {"students"} for mode in _BOTH},
    "oneroster.classes": {mode: {"courses"} for mode in _BOTH},
    "oneroster.courses": {mode: {"courses"} for mode in _BOTH},
    "oneroster.enrollments": {mode: {"student_courses"} for mode in _BOTH},
    "oneroster.users_sorted": {"force_generic_plan": {"students"}},
    "oneroster.classes_sorted": {"force_generic_plan": {"courses"}},
    "oneroster.courses_sorted": {"force_generic_plan": {"courses"}},
    "oneroster.enrollments_sorted": {"force_generic_plan": {"student_courses"}},
    "oneroster.classes_since": {"force_generic_plan": {"courses"}},
}

# The indexes that serve the provider's filters: `sourcedId='x'` (the unique
# index, and the tombstones' range of a delta), `dateLastModified>'t'` (the
# index on modified_at or enrolled_at, and the tombstones' range), a whole
# collection's page (the primary key). A tombstone whose sourcedId is live
# again is found by the unique index too.
TOMBSTONES = {"tombstones_kind_deleted_at", "tombstones_deleted_at"}
ONEROSTER_INDEXES: dict[str, tuple[list[str], set[str]]] = {
    "oneroster.users": (PLAN_MODES, {"students_pkey"}),
    "oneroster.users_by_sourced_id": (PLAN_MODES, {"students_sourced_id_key"}),
    "oneroster.users_since": (PLAN_MODES, {"students_modified_at", "students_sourced_id_key"}),
    "oneroster.courses": (PLAN_MODES, {"courses_pkey"}),
    "oneroster.courses_by_sourced_id": (PLAN_MODES, {"courses_sourced_id_key"}),
    "oneroster.courses_since": (PLAN_MODES, {"courses_modified_at", "courses_sourced_id_key"}),
    "oneroster.classes": (PLAN_MODES, {"courses_pkey"}),
    "oneroster.classes_by_sourced_id": (PLAN_MODES, {"courses_sourced_id_key"}),
    "oneroster.classes_since": (
        ["force_custom_plan"],
        {"courses_modified_at", "courses_sourced_id_key"},
    ),
    "oneroster.enrollments": (PLAN_MODES, {"student_courses_pkey"}),
    "oneroster.enrollments_by_sourced_id": (PLAN_MODES, {"student_courses_sourced_id_key"}),
    "oneroster.enrollments_since": (
        PLAN_MODES,
        {"student_courses_enrolled_at", "student_courses_sourced_id_key"},
    ),
    # The delta of a sort: the custom plan reads the range alone.
    "oneroster.users_sorted": (["force_custom_plan"], {"students_modified_at"}),
}
DELTAS = {name for name in ONEROSTER_INDEXES if name.endswith("_since")}


@pytest.mark.parametrize("qualified", list(ONEROSTER_INDEXES))
async def test_the_oneroster_filters_use_their_indexes(loaded_database, qualified):
    file, name = qualified.split(".")
    sql, *values = getattr(getattr(QUERIES, file), name).bind(**EXAMPLE_ARGS[qualified])
    modes, indexes = ONEROSTER_INDEXES[qualified]

    found = await plans(loaded_database, sql, tuple(values), modes)

    for mode in modes:
        used = {node.get("Index Name") for node in nodes(found[mode])}
        assert indexes <= used, f"{qualified}, {mode}:\n{render(found[mode])}"
        if qualified in DELTAS:
            assert used & TOMBSTONES, f"{qualified}, {mode}:\n{render(found[mode])}"


# Lookups and the indexes that must serve them (migration 0004's unique
# indexes, 0009's trigram indexes). ?q='s index step (in the search
# functions of 0013) runs with a generic plan only, with index and
# sequential scans off (tests/test_lookups.py checks the functions set
# both): the trigram indexes' bitmap at any size (without those settings,
# the primary key below about 50,000 students). The walk, for text of heavy
# trigrams, reads the primary key in id order.
LOOKUP_INDEXES = {
    "students.list_students_by_email": (PLAN_MODES, {"students_email_key"}),
    "search: the students' matches": (
        ["force_generic_plan"],
        {"students_name_trgm", "students_email_trgm"},
    ),
    "search: the students' walk": (["force_generic_plan"], {"students_pkey"}),
    "search: the students' walk end": (["force_generic_plan"], {"students_pkey"}),
    "courses.list_courses_by_code": (PLAN_MODES, {"courses_code_key"}),
    "courses.list_courses_by_term": (PLAN_MODES, {"courses_term_id"}),
    "search: a term's courses' walk": (["force_generic_plan"], {"courses_term_id"}),
    "batch: a course by code in a term": (PLAN_MODES, {"courses_code_key"}),
    "search: the courses' matches": (
        ["force_generic_plan"],
        {"courses_code_trgm", "courses_title_trgm"},
    ),
    "search: the courses' walk": (["force_generic_plan"], {"courses_pkey"}),
}


@pytest.mark.parametrize("qualified", list(LOOKUP_INDEXES))
async def test_lookups_use_their_indexes(loaded_database, qualified):
    if qualified in IMPLICIT:
        sql, args = IMPLICIT[qualified]
    else:
        file, name = qualified.split(".")
        sql, args = getattr(getattr(QUERIES, file), name), EXAMPLE_ARGS[qualified]
    modes, indexes = LOOKUP_INDEXES[qualified]

    found = await plans(loaded_database, sql, args, modes, SETTINGS.get(qualified, ()))

    for mode in modes:
        used = {node.get("Index Name") for node in nodes(found[mode])}
        assert indexes <= used, f"{qualified}, {mode}:\n{render(found[mode])}"


@pytest.mark.parametrize("label", list(IMPLICIT))
async def test_statements_run_by_triggers_use_indexes(loaded_database, label):
    sql, args = IMPLICIT[label]

    complaints = await seq_scans(
        loaded_database, sql, args, GENERIC_ONLY.get(label, PLAN_MODES), SETTINGS.get(label, ())
    )

    assert not complaints, f"{label} reads a whole table:\n\n" + "\n\n".join(complaints)


async def test_the_loaded_data_is_what_the_plans_were_judged_on(loaded_database):
    # A load that silently failed would make every plan above trivially cheap.
    conn = await asyncpg.connect(loaded_database)
    try:
        row = await conn.fetchrow(
            "select (select count(*) from students) as students,"
            " (select count(*) from courses) as courses,"
            " (select count(*) from student_courses) as enrollments,"
            " (select reltuples::bigint from pg_class"
            "  where oid = 'student_courses'::regclass) as estimated"
        )
    finally:
        await conn.close()
    assert dict(row) == {
        "students": SIZES.students,
        "courses": SIZES.courses,
        "enrollments": SIZES.enrollments,
        "estimated": SIZES.enrollments,  # ANALYZE ran
    }
