-- Back to 0017: no sourced_id, modified_at or tombstones.
-- The triggers sql/functions/oneroster.sql put on older tables go with the
-- columns and are dropped below, so its record in schema_functions goes too:
-- the next migrate to 0018 applies the file again.

set local lock_timeout = '5s';

lock table courses, students, student_courses, terms in access exclusive mode;

drop trigger if exists students_modified on students;
drop trigger if exists courses_modified on courses;
drop trigger if exists terms_modified on terms;
drop trigger if exists students_tombstone on students;
drop trigger if exists courses_tombstone on courses;
drop trigger if exists terms_tombstone on terms;
drop trigger if exists student_courses_tombstone on student_courses;

drop table tombstones;

alter table student_courses drop column sourced_id;
alter table terms drop column sourced_id, drop column modified_at;
alter table courses drop column sourced_id, drop column modified_at;
alter table students drop column sourced_id, drop column modified_at;

drop function sourced_id_valid(text);

delete from schema_functions where file = 'oneroster.sql';
