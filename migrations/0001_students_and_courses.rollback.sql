-- Drops students and courses with all their rows.

drop table courses;
drop table students;
