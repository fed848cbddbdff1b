-- Courses.

-- name: get_course
-- One course by id.
select id, code, title, capacity, created_at
from courses
where id = $1;

-- name: list_courses
-- A page of courses after the cursor id ($1), in id order; $2 is the page size.
select id, code, title, capacity, created_at
from courses
where id > $1
order by id
limit $2;

-- name: create_course
-- A new course; a taken code raises a unique violation on courses_code_key.
insert into courses (code, title, capacity)
values ($1, $2, $3)
returning id, code, title, capacity, created_at;

-- name: update_course
-- Change the given fields. Capacity may be set to null (no limit), so $4 says
-- whether $5 is to be applied. Lowering capacity below the enrollments raises
-- a check violation from the courses_capacity trigger.
update courses
set code = coalesce($2, code),
    title = coalesce($3, title),
    capacity = case when $4::boolean then $5::integer else capacity end
where id = $1
returning id, code, title, capacity, created_at;

-- name: delete_course
-- Delete a course; its enrollments go with it (ON DELETE CASCADE).
delete from courses
where id = $1
returning id;
