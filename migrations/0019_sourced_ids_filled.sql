-- The sourced_id of every row written before 0018, then the unique indexes
-- that find a record by it, and the column made NOT NULL.
-- depends: 0018_sourced_ids
-- transactional: false
--
-- Not one transaction, so that nothing is locked for long: the fill runs in
-- batches of 5,000 rows by key range, each committed; the indexes are built
-- CONCURRENTLY (writes go on); the checks are validated under SHARE UPDATE
-- EXCLUSIVE (writes go on); SET NOT NULL then reads no row (PostgreSQL
-- takes the validated check `sourced_id is not null` as proof) and holds
-- its ACCESS EXCLUSIVE lock for milliseconds. Rows written since 0018 have
-- their UUID already. If this fails halfway, its rollback drops what it
-- built (an index left invalid included), and it can be run again.

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
        where id > low and id <= low + 5000 and sourced_id is null;
        low := low + 5000;
        commit;
    end loop;

    select coalesce(max(id), 0) into top from courses;
    low := 0;
    while low < top loop
        update courses set sourced_id = gen_random_uuid()::text
        where id > low and id <= low + 5000 and sourced_id is null;
        low := low + 5000;
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

create unique index concurrently students_sourced_id_key on students (sourced_id);
create unique index concurrently courses_sourced_id_key on courses (sourced_id);
create unique index concurrently terms_sourced_id_key on terms (sourced_id);
create unique index concurrently student_courses_sourced_id_key on student_courses (sourced_id);

-- dateLastModified> and >=: a delta sync's query.
create index concurrently students_modified_at on students (modified_at, id);
create index concurrently courses_modified_at on courses (modified_at, id);
create index concurrently student_courses_enrolled_at on student_courses (enrolled_at);

alter table students validate constraint students_sourced_id_check;
alter table students validate constraint students_sourced_id_present;
alter table courses validate constraint courses_sourced_id_check;
alter table courses validate constraint courses_sourced_id_present;
alter table terms validate constraint terms_sourced_id_check;
alter table terms validate constraint terms_sourced_id_present;
alter table student_courses validate constraint student_courses_sourced_id_check;
alter table student_courses validate constraint student_courses_sourced_id_present;

alter table students alter column sourced_id set not null;
alter table courses alter column sourced_id set not null;
alter table terms alter column sourced_id set not null;
alter table student_courses alter column sourced_id set not null;

alter table students drop constraint students_sourced_id_present;
alter table courses drop constraint courses_sourced_id_present;
alter table terms drop constraint terms_sourced_id_present;
alter table student_courses drop constraint student_courses_sourced_id_present;
