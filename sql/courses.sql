-- Courses. enrolled and waitlisted are kept by triggers (migration 0005).

-- name: get_course
-- One course by id.
select id, code, title, capacity, waitlist_capacity, enrolled, waitlisted, created_at
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
-- page size. With ?q= too, only if its code or title also contains $4, a LIKE
-- pattern (null: no ?q=).
select id, code, title, capacity, waitlist_capacity, enrolled, waitlisted, created_at
from courses
where fold_case(code) = fold_case($2) and id > $1
  and ($4::text is null or fold_case(code) like fold_case($4) or fold_case(title) like fold_case($4))
order by id
limit $3;

-- name: search_courses
-- ?q=: a page of the courses whose code or title contains the text, after the
-- cursor id ($1), in id order; $3 is the page size. $2 is a LIKE pattern (see
-- search_students in sql/students.sql), served by the trigram indexes of
-- migration 0009. Run with custom plans only (plan_with_values).
select id, code, title, capacity, waitlist_capacity, enrolled, waitlisted, created_at
from courses
where (fold_case(code) like fold_case($2) or fold_case(title) like fold_case($2)) and id > $1
order by id
limit $3;

-- name: plan_with_values
-- For the rest of the transaction, plan every statement with its parameters'
-- values, never with a generic plan (see service/repositories/search.py).
select set_config('plan_cache_mode', 'force_custom_plan', true);

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
-- course again (get_course) in the same transaction. $7: the actor.
update courses
set code = coalesce($2, code),
    title = coalesce($3, title),
    capacity = case when $4::boolean then $5::integer else capacity end,
    waitlist_capacity = coalesce($6, waitlist_capacity)
from (select set_config('enrollment.actor', $7, true)) as actor
where id = $1
returning courses.id, code, title, capacity, waitlist_capacity, enrolled, waitlisted, created_at;

-- name: delete_course
-- Delete a course; its enrollments and waitlist go with it (ON DELETE CASCADE).
-- $2: the actor.
delete from courses
using (select set_config('enrollment.actor', $2, true)) as actor
where id = $1
returning id;
