-- Drops the events and the triggers that record them; nothing else changes.

set local lock_timeout = '5s';

drop trigger course_waitlist_audit on course_waitlist;
drop trigger student_courses_audit on student_courses;
drop trigger courses_audit_delete on courses;
drop trigger courses_audit on courses;
drop trigger students_audit_delete on students;
drop trigger students_audit on students;
drop function course_waitlist_record();
drop function student_courses_record();
drop function departure(bigint, bigint, text);
drop function courses_record();
drop function students_record();
drop function changed_fields(jsonb, jsonb, text[]);
drop function record_event(text, bigint, bigint, jsonb);
drop table events_retention;
drop table events;
