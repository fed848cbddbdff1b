-- OneRoster 1.2 (docs/oneroster.md): every student, course, term and
-- enrollment gets a sourced_id, its OneRoster sourcedId; students, courses
-- and terms a modified_at, its dateLastModified; and every deletion of one
-- of them a tombstone, which a consumer's delta sync reads as
-- `tobedeleted` and which is purged with the events.
-- depends: 0017_meeting_times
--
-- Nothing is rewritten and no row is read under the locks (ACCESS EXCLUSIVE
-- on the four tables, a few milliseconds): sourced_id has no default for the
-- rows already there and a UUID for every row written from here on (the
-- ADD and the SET DEFAULT are one command, so the existing rows stay null);
-- modified_at's default, now(), is evaluated once, so existing rows read the
-- migration's time; the checks are NOT VALID. Migration 0019 gives the
-- existing rows their sourced_id in small committed batches, then builds
-- the unique indexes without blocking writes and makes the column NOT NULL.
-- Nothing here refuses a null yet: the release before this one updates its
-- rows (a rename, every enrollment's seat count) before 0019 has filled
-- them, and a NOT VALID check is checked on every row an update writes.

set local lock_timeout = '5s';

lock table courses, students, student_courses, terms in access exclusive mode;

-- A sourcedId: 1 to 255 characters, no spaces or control characters (the
-- service checks the same and names the field; this is the last guard).
-- Created here for the checks below; sql/functions/oneroster.sql holds its
-- current definition.
create function sourced_id_valid(value text) returns boolean
language sql immutable parallel safe as $$
    select char_length(value) between 1 and 255 and value !~ '[[:space:][:cntrl:]]'
$$;

alter table students
    add column sourced_id text,
    alter column sourced_id set default gen_random_uuid()::text,
    add column modified_at timestamptz not null default now(),
    add constraint students_sourced_id_check check (sourced_id_valid(sourced_id)) not valid;

alter table courses
    add column sourced_id text,
    alter column sourced_id set default gen_random_uuid()::text,
    add column modified_at timestamptz not null default now(),
    add constraint courses_sourced_id_check check (sourced_id_valid(sourced_id)) not valid;

alter table terms
    add column sourced_id text,
    alter column sourced_id set default gen_random_uuid()::text,
    add column modified_at timestamptz not null default now(),
    add constraint terms_sourced_id_check check (sourced_id_valid(sourced_id)) not valid;

-- An enrollment does not change once made: its dateLastModified is enrolled_at.
alter table student_courses
    add column sourced_id text,
    alter column sourced_id set default gen_random_uuid()::text,
    add constraint student_courses_sourced_id_check check (sourced_id_valid(sourced_id)) not valid;

-- What was deleted, by kind and sourced_id: no personal field. Written by
-- the triggers of sql/functions/oneroster.sql; purged with the events
-- (purge_events, sql/events.sql), so a delta sync sees a deletion as long
-- as the feed does.
create table tombstones (
    kind text not null
        check (kind in ('student', 'course', 'term', 'enrollment')),
    sourced_id text not null,
    deleted_at timestamptz not null default now()
);

create index tombstones_kind_deleted_at on tombstones (kind, deleted_at);
create index tombstones_deleted_at on tombstones (deleted_at);
