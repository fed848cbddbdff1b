-- Drops the bounded search; the service before 0013 calls 0011's functions, still there.

set local lock_timeout = '5s';

drop function search_course_page(bigint, text, integer, integer, jsonb, real);
drop function search_student_page(bigint, text, integer, integer, jsonb, real);
drop function search_fold(text);
drop function search_affordable(text[], jsonb, real);
drop function search_heavy_trigrams(real);
drop function search_pattern_trigrams(text);
drop statistics if exists courses_title_trigrams;
drop statistics if exists courses_code_trigrams;
drop statistics if exists students_email_trigrams;
drop statistics if exists students_name_trigrams;
