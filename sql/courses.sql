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

-- name: create_course
-- A new course; a taken code raises a unique violation on courses_code_key.
insert into courses (code, title, capacity, waitlist_capacity)
values ($1, $2, $3, $4)
returning id, code, title, capacity, waitlist_capacity, enrolled, waitlisted, created_at;

-- name: update_course
-- Change the given fields. Capacity may be set to null (no limit), so $4 says
-- whether $5 is to be applied; a null $6 keeps waitlist_capacity. Lowering
-- capacity below the enrollments, or waitlist_capacity below the students
-- waiting, violates courses_enrolled_within_capacity or
-- courses_waitlisted_within_capacity. Raising capacity promotes from the
-- waitlist in an AFTER trigger, which RETURNING does not see: read the
-- course again (get_course) in the same transaction.
update courses
set code = coalesce($2, code),
    title = coalesce($3, title),
    capacity = case when $4::boolean then $5::integer else capacity end,
    waitlist_capacity = coalesce($6, waitlist_capacity)
where id = $1
returning id, code, title, capacity, waitlist_capacity, enrolled, waitlisted, created_at;

-- name: delete_course
-- Delete a course; its enrollments and waitlist go with it (ON DELETE CASCADE).
delete from courses
where id = $1
returning id;
