-- Back to 0001's uniqueness by lower(email) and lower(code), without fold_case().
--
-- Stops and changes nothing if two rows differ under fold_case() but not
-- under this database's lower(): with the locale C.UTF-8, say, İx and ix
-- (lower('İ') is i there, while İ has no simple case folding).

set local lock_timeout = '5s';

-- As in the migration: no writes while the indexes change, reads go on, and
-- the ACCESS EXCLUSIVE lock of DROP INDEX comes after the build.
lock table students, courses in share mode;

create unique index students_email_lower on students (lower(email));
create unique index courses_code_lower on courses (lower(code));
drop index students_email_key;
drop index courses_code_key;
alter index students_email_lower rename to students_email_key;
alter index courses_code_lower rename to courses_code_key;

drop function fold_case(text);
