-- Removes the capacity triggers; no data changes.

set local lock_timeout = '5s';

drop trigger courses_capacity on courses;
drop function courses_check_capacity();
drop trigger student_courses_capacity on student_courses;
drop function student_courses_check_capacity();
