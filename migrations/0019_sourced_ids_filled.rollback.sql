-- Back to 0018: sourced_id nullable again, without its indexes; the values
-- stay (0018's rollback drops the columns).
-- transactional: false

set lock_timeout = '5s';

-- 0018's NOT VALID checks again, which 0019 validates and drops.
alter table students alter column sourced_id drop not null,
    drop constraint if exists students_sourced_id_present,
    add constraint students_sourced_id_present check (sourced_id is not null) not valid;
alter table courses alter column sourced_id drop not null,
    drop constraint if exists courses_sourced_id_present,
    add constraint courses_sourced_id_present check (sourced_id is not null) not valid;
alter table terms alter column sourced_id drop not null,
    drop constraint if exists terms_sourced_id_present,
    add constraint terms_sourced_id_present check (sourced_id is not null) not valid;
alter table student_courses alter column sourced_id drop not null,
    drop constraint if exists student_courses_sourced_id_present,
    add constraint student_courses_sourced_id_present check (sourced_id is not null) not valid;

drop index concurrently if exists students_sourced_id_key;
drop index concurrently if exists courses_sourced_id_key;
drop index concurrently if exists terms_sourced_id_key;
drop index concurrently if exists student_courses_sourced_id_key;
drop index concurrently if exists students_modified_at;
drop index concurrently if exists courses_modified_at;
drop index concurrently if exists student_courses_enrolled_at;
