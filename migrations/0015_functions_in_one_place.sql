-- The functions and triggers move out of the migrations: from here on their
-- current definitions live in sql/functions/*.sql, applied after the
-- migrations on every migrate (service/migrations.py, apply_functions).
-- depends: 0014_idempotency_bounds
--
-- - schema_functions records which version of each file of sql/functions
--   the database holds (a SHA-256 of its text), so a migrate re-applies a
--   file only when it changed: CREATE OR REPLACE TRIGGER locks its table,
--   and a start-up must not queue behind the writes of running instances.
-- - Four functions nothing calls any more are dropped, so that every
--   function in the database has its definition in sql/functions:
--   student_courses_count_insert() and course_waitlist_count_delete()
--   (0005's per-row counters, whose triggers 0010 and 0012 replaced by
--   per-statement ones) and search_students() and search_courses() (0011's
--   search, replaced by 0013's pages).

set local lock_timeout = '5s';

create table schema_functions (
    file text primary key,
    digest text not null,
    applied_at timestamptz not null default now()
);

drop function student_courses_count_insert();
drop function course_waitlist_count_delete();
drop function search_students(bigint, text, integer, integer);
drop function search_courses(bigint, text, integer, integer);
