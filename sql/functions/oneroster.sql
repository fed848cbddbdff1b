-- OneRoster 1.2 (migration 0018, docs/oneroster.md): when a record last
-- changed (its dateLastModified) and what was deleted (tombstones, read by a
-- delta sync as status `tobedeleted`).

-- students_modified, courses_modified, terms_modified: modified_at moves
-- when a field a OneRoster record shows changes. The triggers name those
-- columns, so the seat counters' updates of a course (every enrollment) do not fire them, and
-- the WHEN skips an update that sets the same values.
create or replace function record_modified() returns trigger
language plpgsql as $$
begin
    new.modified_at := now();
    return new;
end;
$$;

create or replace trigger students_modified
    before update of name, email, sourced_id on students
    for each row
    when ((old.name, old.email, old.sourced_id) is distinct from (new.name, new.email, new.sourced_id))
    execute function record_modified();

create or replace trigger courses_modified
    before update of code, title, term_id, sourced_id on courses
    for each row
    when ((old.code, old.title, old.term_id, old.sourced_id)
          is distinct from (new.code, new.title, new.term_id, new.sourced_id))
    execute function record_modified();

create or replace trigger terms_modified
    before update of code, title, starts_on, ends_on, sourced_id on terms
    for each row
    when ((old.code, old.title, old.starts_on, old.ends_on, old.sourced_id)
          is distinct from (new.code, new.title, new.starts_on, new.ends_on, new.sourced_id))
    execute function record_modified();

-- *_tombstone: one row per deleted record, the kind from the trigger's
-- argument, set-based over the statement's deleted rows (a student's
-- deletion cascades to their enrollments in one statement per student).
create or replace function record_tombstones() returns trigger
language plpgsql as $$
begin
    insert into tombstones (kind, sourced_id)
    select tg_argv[0], gone.sourced_id
    from gone
    where gone.sourced_id is not null;
    return null;
end;
$$;

create or replace trigger students_tombstone
    after delete on students
    referencing old table as gone
    for each statement execute function record_tombstones('student');

create or replace trigger courses_tombstone
    after delete on courses
    referencing old table as gone
    for each statement execute function record_tombstones('course');

create or replace trigger terms_tombstone
    after delete on terms
    referencing old table as gone
    for each statement execute function record_tombstones('term');

create or replace trigger student_courses_tombstone
    after delete on student_courses
    referencing old table as gone
    for each statement execute function record_tombstones('enrollment');
