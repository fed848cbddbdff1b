-- Drops the search functions; the service before 0011 runs its own statements.

set local lock_timeout = '5s';

drop function search_courses(bigint, text, integer, integer);
drop function search_students(bigint, text, integer, integer);
drop function search_pattern(text);
drop function search_narrows(text);
