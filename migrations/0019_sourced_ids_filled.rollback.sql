-- Back to 0018: sourced_id nullable again, without its indexes, its check
-- NOT VALID again; the values stay (0018's rollback drops the columns).
-- transactional: false
--
-- Each statement can run in any state 0019 leaves, a failed 0019 included
-- (yoyo runs some of these after a failure of 0019).

set lock_timeout = '5s';

alter table students alter column sourced_id drop not null,
    drop constraint if exists students_sourced_id_present,
    drop constraint students_sourced_id_check,
    add constraint students_sourced_id_check check (sourced_id_valid(sourced_id)) not valid;
alter table courses alter column sourced_id drop not null,
    drop constraint if exists courses_sourced_id_present,
    drop constraint courses_sourced_id_check,
    add constraint courses_sourced_id_check check (sourced_id_valid(sourced_id)) not valid;
alter table terms alter column sourced_id drop not null,
    drop constraint if exists terms_sourced_id_present,
    drop constraint terms_sourced_id_check,
    add constraint terms_sourced_id_check check (sourced_id_valid(sourced_id)) not valid;
alter table student_courses alter column sourced_id drop not null,
    drop constraint if exists student_courses_sourced_id_present,
    drop constraint student_courses_sourced_id_check,
    add constraint student_courses_sourced_id_check check (sourced_id_valid(sourced_id)) not valid;

drop index concurrently if exists students_sourced_id_key;
drop index concurrently if exists courses_sourced_id_key;
drop index concurrently if exists terms_sourced_id_key;
drop index concurrently if exists student_courses_sourced_id_key;
drop index concurrently if exists students_modified_at;
drop index concurrently if exists courses_modified_at;
drop index concurrently if exists student_courses_enrolled_at;
