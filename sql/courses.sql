-- Courses. enrolled and waitlisted are kept by triggers
-- (sql/functions/counts.sql).

-- name: get_course
-- One course by id, and the version of its row: xmin, the value of its ETag.
-- The seat triggers write enrolled and waitlisted into the row, so every
-- enrollment, drop and promotion makes a new version (service/conditional.py).
select id, code, title, capacity, waitlist_capacity, enrolled, waitlisted, created_at, xmin::text
from courses
where id = $1;

-- name: list_courses
-- A page of courses after the cursor id ($1), in id order; $2 is the page size.
select id, code, title, capacity, waitlist_capacity, enrolled, waitlisted, created_at
from courses
where id > $1
order by id
limit $2;

-- name: list_courses_by_code
-- ?code=: the course with that code in any letter case (the unique index
-- courses_code_key of migration 0004), if after the cursor id ($1); $3 is the
-- page size. With ?q= too, only if its code or title also contains the text
-- $4 (null: no ?q=), as search_pattern() (sql/functions/search.sql) has it.
select id, code, title, capacity, waitlist_capacity, enrolled, waitlisted, created_at
from courses
where fold_case(code) = fold_case($2) and id > $1
  and ($4::text is null or fold_case(code) like search_pattern($4) or fold_case(title) like search_pattern($4))
order by id
limit $3;

-- name: create_course
-- A new course; a taken code raises a unique violation on courses_code_key.
-- $5 is the actor its event records (see the header of sql/events.sql).
insert into courses (code, title, capacity, waitlist_capacity)
select $1, $2, $3, $4
from (select set_config('enrollment.actor', $5, true)) as actor
returning courses.id, code, title, capacity, waitlist_capacity, enrolled, waitlisted, created_at;

-- name: update_course
-- Change the given fields. Capacity may be set to null (no limit), so $4 says
-- whether $5 is to be applied; a null $6 keeps waitlist_capacity. Lowering
-- capacity below the enrollments, or waitlist_capacity below the students
-- waiting, violates courses_enrolled_within_capacity or
-- courses_waitlisted_within_capacity. Raising capacity promotes from the
-- waitlist in an AFTER trigger, which RETURNING does not see: read the
-- course again (get_course) in the same transaction. $7: the versions
-- If-Match accepts (null: any); the row changes only if its xmin is one of
-- them, re-checked on the newest version when a concurrent change (an
-- enrollment too) commits first, so the compare and the write are one step.
-- Returns the new version. $8: the actor. The course's feed lock first
-- (lock_courses(), sql/functions/events.sql).
update courses
set code = coalesce($2, code),
    title = coalesce($3, title),
    capacity = case when $4::boolean then $5::integer else capacity end,
    waitlist_capacity = coalesce($6, waitlist_capacity)
from (select set_config('enrollment.actor', $8, true), lock_courses(array[$1::bigint])) as actor
where id = $1 and ($7::text[] is null or courses.xmin::text = any($7::text[]))
returning courses.id, code, title, capacity, waitlist_capacity, enrolled, waitlisted, created_at,
    courses.xmin::text;

-- name: delete_course
-- Delete a course; its enrollments and waitlist go with it (ON DELETE CASCADE).
-- $2: the versions If-Match accepts (null: any), compared as in update_course.
-- $3: the actor. The course's feed lock first, with those of the courses of
-- its term its students wait for: freed of its meetings and credits, they
-- may be promoted there (lock_course_rules(), sql/functions/registration.sql).
delete from courses
using (select set_config('enrollment.actor', $3, true), lock_course_rules($1::bigint)) as actor
where id = $1 and ($2::text[] is null or courses.xmin::text = any($2::text[]))
returning id;
