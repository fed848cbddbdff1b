-- The sourced_id of every row written before 0018, then the unique indexes
-- that find a record by it, and the column made NOT NULL.
-- depends: 0018_sourced_ids
-- transactional: false
--
-- Not one transaction, so that nothing is locked for long: the fill runs in
-- batches of 1,000 rows by key range (of 1,000 students' enrollments), each
-- committed, so a writer waits for one batch at most; the indexes are built
-- CONCURRENTLY (writes go on); the checks are validated under SHARE UPDATE
-- EXCLUSIVE (writes go on); SET NOT NULL then reads no row (PostgreSQL
-- takes the validated check `sourced_id is not null` as proof) and holds
-- its ACCESS EXCLUSIVE lock for milliseconds, as does adding that check
-- NOT VALID. Rows written since 0018 have their UUID already.
--
-- Every statement can run again whatever the others left: the fill skips
-- filled rows, each index is dropped if there (an index a failed CREATE
-- INDEX CONCURRENTLY leaves is there, invalid) and built again, each check
-- is added again before it is validated. So when this fails halfway (a lock
-- timeout, a deadlock with a request), migrate again finishes it; yoyo runs
-- some of the rollback's statements after a failure, which are as safe.

set lock_timeout = '5s';

do $$
declare
    top bigint;
    low bigint;
begin
    select coalesce(max(id), 0) into top from students;
    low := 0;
    while low < top loop
        update students set sourced_id = gen_random_uuid()::text
        where id > low and id <= low + 1000 and sourced_id is null;
        low := low + 1000;
        commit;
    end loop;

    select coalesce(max(id), 0) into top from courses;
    low := 0;
    while low < top loop
        update courses set sourced_id = gen_random_uuid()::text
        where id > low and id <= low + 1000 and sourced_id is null;
        low := low + 1000;
        commit;
    end loop;

    update terms set sourced_id = gen_random_uuid()::text where sourced_id is null;
    commit;

    -- By student, so each batch reads the primary key's range.
    select coalesce(max(student_id), 0) into top from student_courses;
    low := 0;
    while low < top loop
        update student_courses set sourced_id = gen_random_uuid()::text
        where student_id > low and student_id <= low + 1000 and sourced_id is null;
        low := low + 1000;
        commit;
    end loop;
end
$$;

drop index concurrently if exists students_sourced_id_key;
create unique index concurrently students_sourced_id_key on students (sourced_id);
drop index concurrently if exists courses_sourced_id_key;
create unique index concurrently courses_sourced_id_key on courses (sourced_id);
drop index concurrently if exists terms_sourced_id_key;
create unique index concurrently terms_sourced_id_key on terms (sourced_id);
drop index concurrently if exists student_courses_sourced_id_key;
create unique index concurrently student_courses_sourced_id_key on student_courses (sourced_id);

-- dateLastModified> and >=: a delta sync's query.
drop index concurrently if exists students_modified_at;
create index concurrently students_modified_at on students (modified_at, id);
drop index concurrently if exists courses_modified_at;
create index concurrently courses_modified_at on courses (modified_at, id);
drop index concurrently if exists student_courses_enrolled_at;
create index concurrently student_courses_enrolled_at on student_courses (enrolled_at);

alter table students validate constraint students_sourced_id_check;
alter table courses validate constraint courses_sourced_id_check;
alter table terms validate constraint terms_sourced_id_check;
alter table student_courses validate constraint student_courses_sourced_id_check;

-- Only now: a NOT VALID check is checked on every row an update writes,
-- and until the fill, the release before 0018 updated rows without one.
alter table students drop constraint if exists students_sourced_id_present,
    add constraint students_sourced_id_present check (sourced_id is not null) not valid;
alter table courses drop constraint if exists courses_sourced_id_present,
    add constraint courses_sourced_id_present check (sourced_id is not null) not valid;
alter table terms drop constraint if exists terms_sourced_id_present,
    add constraint terms_sourced_id_present check (sourced_id is not null) not valid;
alter table student_courses drop constraint if exists student_courses_sourced_id_present,
    add constraint student_courses_sourced_id_present check (sourced_id is not null) not valid;

alter table students validate constraint students_sourced_id_present;
alter table courses validate constraint courses_sourced_id_present;
alter table terms validate constraint terms_sourced_id_present;
alter table student_courses validate constraint student_courses_sourced_id_present;

alter table students alter column sourced_id set not null;
alter table courses alter column sourced_id set not null;
alter table terms alter column sourced_id set not null;
alter table student_courses alter column sourced_id set not null;

alter table students drop constraint students_sourced_id_present;
alter table courses drop constraint courses_sourced_id_present;
alter table terms drop constraint terms_sourced_id_present;
alter table student_courses drop constraint student_courses_sourced_id_present;
