-- Back to 0019: no kept counts. The triggers sql/functions/oneroster.sql put
-- on students and courses go with the table, so its record in
-- schema_functions goes too: the next migrate to 0020 applies the file again
-- (and fills the table anew).

set local lock_timeout = '5s';

lock table students, courses in share row exclusive mode;

drop trigger if exists students_counted_inserted on students;
drop trigger if exists students_counted_deleted on students;
drop trigger if exists students_counts_truncated on students;
drop trigger if exists courses_counted_inserted on courses;
drop trigger if exists courses_counted_deleted on courses;
drop trigger if exists courses_counts_truncated on courses;

drop table row_counts;

delete from schema_functions where file = 'oneroster.sql';
