-- Drops the enrollments; students and courses stay as they are.

set local lock_timeout = '5s';

drop table student_courses;
