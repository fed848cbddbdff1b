-- Drops students and courses with all their rows.

set local lock_timeout = '5s';

drop table courses;
drop table students;
