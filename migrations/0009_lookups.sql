-- Lookups: trigram indexes for GET /students?q= and GET /courses?q=.
-- depends: 0008_idempotency
--
-- ?q= finds the students whose name or email, and the courses whose code or
-- title, contain the text regardless of letter case:
--     fold_case(name) like '%' || fold_case(q) || '%'
-- (sql/students.sql, sql/courses.sql). A B-tree cannot serve a pattern
-- that starts with a wildcard; a GIN index of trigrams (pg_trgm) can, for
-- any text of three characters or more. One index per column, OR-ed by the
-- planner (a BitmapOr), rather than one of name || email: a match must lie
-- within one field, never across the boundary of two.
--
-- The indexes are on fold_case(), the same folding as the unique indexes of
-- 0004 (immutable, so an index may use it, and inlined, so the planner
-- matches the queries' expression to the index's).
--
-- pg_trgm ships with PostgreSQL (contrib) and is a trusted extension: the
-- owner role creates it without being a superuser, given CREATE on the
-- database (deploy/roles.sql grants it). Already there (a superuser created
-- it beforehand): left as it is.
--
-- Locks: CREATE INDEX holds SHARE on students and courses while it builds
-- (reads go on, writes wait): 23 s for 1,100,000 students here. On a big
-- table, build them first with CREATE INDEX CONCURRENTLY under the same
-- names (docs/operations.md); this migration then finds them and skips.

set local lock_timeout = '5s';

do $$
begin
    if not exists (select from pg_extension where extname = 'pg_trgm')
       and not has_database_privilege(current_database(), 'create') then
        raise exception 'role % may not create the extension pg_trgm in database %',
            current_user, current_database()
            using errcode = 'insufficient_privilege',
                  hint = 'Run deploy/roles.sql again (it grants the owner role CREATE on the database), or have a superuser run: create extension pg_trgm;';
    end if;
end;
$$;

create extension if not exists pg_trgm with schema public;

create index if not exists students_name_trgm on students using gin (fold_case(name) gin_trgm_ops);
create index if not exists students_email_trgm on students using gin (fold_case(email) gin_trgm_ops);
create index if not exists courses_code_trgm on courses using gin (fold_case(code) gin_trgm_ops);
create index if not exists courses_title_trgm on courses using gin (fold_case(title) gin_trgm_ops);
