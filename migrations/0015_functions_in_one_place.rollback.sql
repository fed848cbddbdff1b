-- Back to 0014: no record of the function files, and the four functions it
-- dropped, as 0005 and 0011 defined them. The functions of sql/functions
-- stay as the last migrate left them: an older release's migrate applies its
-- own (docs/development.md, "Functions and triggers").

set local lock_timeout = '5s';

drop table schema_functions;

create function student_courses_count_insert() returns trigger
language plpgsql as $$
begin
    -- Locks the course row; the check constraint refuses a seat too many.
    update courses set enrolled = enrolled + 1 where id = new.course_id;
    if exists (
        select 1 from course_waitlist
        where student_id = new.student_id and course_id = new.course_id
    ) then
        raise exception 'student % is waiting for course %', new.student_id, new.course_id
            using errcode = 'check_violation', constraint = 'student_courses_not_waiting';
    end if;
    return null;
end;
$$;

create function course_waitlist_count_delete() returns trigger
language plpgsql as $$
begin
    update courses set waitlisted = waitlisted - 1 where id = old.course_id;
    return null;
end;
$$;

-- Up to lim students whose name or email contains q, with an id above
-- after, in id order. bound: the matches step 1 settles for (2000 in the
-- service, at most 2000: step 1 reads 2001).
create function search_students(after bigint, q text, lim integer, bound integer)
returns setof students
language plpgsql stable
set plan_cache_mode = force_generic_plan
as $$
declare
    pattern text := search_pattern(q);
    found students[];
begin
    if not search_narrows(q) then
        raise exception 'q % has no trigram the indexes can look up', q
            using errcode = 'invalid_parameter_value', column = 'q';
    end if;
    -- Step 1. A constant limit: with a parameter, a generic plan would guess
    -- a tenth of the rows it expects and, on a small table, walk the
    -- primary key to find them.
    found := array(
        select s from students s
        where (fold_case(s.name) like pattern or fold_case(s.email) like pattern)
          and s.id > after
        limit 2001
    );
    if cardinality(found) <= least(bound, 2000) then
        return query select * from unnest(found) order by 1 limit lim;
    else
        -- Step 2.
        return query
            select s.* from students s
            where (fold_case(s.name) like pattern or fold_case(s.email) like pattern)
              and s.id > after
            order by s.id
            limit lim;
    end if;
end;
$$;

-- The same for courses, by code or title.
create function search_courses(after bigint, q text, lim integer, bound integer)
returns setof courses
language plpgsql stable
set plan_cache_mode = force_generic_plan
as $$
declare
    pattern text := search_pattern(q);
    found courses[];
begin
    if not search_narrows(q) then
        raise exception 'q % has no trigram the indexes can look up', q
            using errcode = 'invalid_parameter_value', column = 'q';
    end if;
    found := array(
        select c from courses c
        where (fold_case(c.code) like pattern or fold_case(c.title) like pattern)
          and c.id > after
        limit 2001
    );
    if cardinality(found) <= least(bound, 2000) then
        return query select * from unnest(found) order by 1 limit lim;
    else
        return query
            select c.* from courses c
            where (fold_case(c.code) like pattern or fold_case(c.title) like pattern)
              and c.id > after
            order by c.id
            limit lim;
    end if;
end;
$$;
