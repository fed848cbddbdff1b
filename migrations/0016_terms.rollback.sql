-- Back to 0015: no terms, no course credits, meetings or prerequisites, no
-- holds, completions or per-term settings. The triggers that 0016's
-- functions put on older tables go with them; the functions stay (an older
-- release's migrate applies its own, docs/development.md "Functions and
-- triggers"). Fails while two courses share a code in different terms: the
-- old unique index would refuse them.
--
-- Every trigger of sql/functions/registration.sql goes (with its table, or
-- dropped below), and courses_audit of events.sql is 0015's again, so their
-- records in schema_functions go too: the next migrate to 0016 applies the
-- files again, though their text did not change.

set local lock_timeout = '5s';

drop table student_terms;
drop table student_completions;
drop table student_holds;

alter table course_waitlist drop column overrides;
alter table student_courses drop column overrides;

drop trigger if exists students_holds_kept on students;
alter table students drop column holds;

drop trigger if exists courses_registration_changed on courses;
drop trigger if exists courses_term_kept on courses;
drop trigger if exists courses_registration_deleted on courses;
create unique index courses_code_folded on courses (fold_case(code));
drop index courses_code_key;
alter index courses_code_folded rename to courses_code_key;
drop index courses_term_id;
-- courses_audit watches the new columns (events.sql): back to 0015's.
drop trigger courses_audit on courses;
create trigger courses_audit
    after insert or update of code, title, capacity, waitlist_capacity on courses
    for each row execute function courses_record();
alter table courses
    drop column prerequisites,
    drop column meetings,
    drop column credits,
    drop column term_id;

drop table terms;

delete from schema_functions where file in ('registration.sql', 'events.sql');
